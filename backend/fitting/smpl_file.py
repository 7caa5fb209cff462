"""Read the user's SMPL model file (.pkl or .npz) safely, with numpy only.

The official files were pickled by Python 2 with chumpy objects (``shapedirs``; more arrays in old
files) and a ``scipy.sparse`` J_regressor. chumpy no longer imports on Python >= 3.11 and unpickling
untrusted data can run code, so ``_SafeUnpickler`` resolves only a short allow-list of globals:
chumpy and scipy.sparse classes become inert stand-ins that just keep their pickled state and are
turned into dense numpy arrays afterwards; numpy's own array reconstruction and the few
copyreg/builtins helpers that pickles of arrays need are allowed; every other global raises
``SMPLFileError`` before anything is called. Neither chumpy nor scipy is imported. The Blender
add-on imports this module to build the skinned mesh.
"""
from __future__ import annotations

import importlib
import io
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SMPLFileError
from ..motion.skeleton import SMPL_PARENTS

NUM_JOINTS = 24
NUM_POSE_BASIS = (NUM_JOINTS - 1) * 9  # 207: (R_j - I) for joints 1..23
REQUIRED_KEYS = ("v_template", "f", "J_regressor", "weights", "shapedirs", "posedirs", "kintree_table")
HELP = "see smpl_assets/README.md for the files blender-mdm accepts"


# --------------------------------------------------------------------------------------------
# restricted unpickling
# --------------------------------------------------------------------------------------------
class _PickledState:
    """Inert stand-in for a pickled object: keeps its state, runs nothing."""

    kind = "object"

    def __setstate__(self, state):
        self.state = state


class _Chumpy(_PickledState):
    kind = "chumpy"


class _Sparse(_PickledState):
    kind = "sparse"
    fmt = ""


def _sparse_class(fmt: str) -> type:
    return type(f"_Sparse_{fmt}", (_Sparse,), {"fmt": fmt})


_SPARSE = {fmt: _sparse_class(fmt) for fmt in ("csc", "csr", "coo")}


def _reconstructor(cls, base, state):
    """copyreg._reconstructor restricted to our stand-ins (Python 2 protocol 0/1 object pickles)."""
    if base is object and isinstance(cls, type) and issubclass(cls, _PickledState) and state is None:
        return cls.__new__(cls)
    raise pickle.UnpicklingError(f"refused object reconstruction of {cls!r} from {base!r}")


def _numpy_global(submodule: str, name: str):
    """numpy.core.<submodule> (numpy 1) and numpy._core.<submodule> (numpy 2) hold the same helpers."""
    for prefix in ("numpy._core.", "numpy.core."):
        try:
            return getattr(importlib.import_module(prefix + submodule), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no {submodule}.{name}")


_NUMPY_HELPERS = {("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer")}
_BUILTINS = {"object": object, "set": set, "frozenset": frozenset, "bytearray": bytearray}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        top = module.split(".")[0]
        if top == "chumpy":
            return _Chumpy
        if top == "scipy" and module.startswith("scipy.sparse"):
            fmt = name.split("_")[0]
            if fmt in _SPARSE and name.endswith(("_matrix", "_array")):
                return _SPARSE[fmt]
        if top == "numpy":
            if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
                return getattr(np, name)
            parts = module.split(".")
            if len(parts) == 3 and parts[1] in ("core", "_core") and (parts[2], name) in _NUMPY_HELPERS:
                return _numpy_global(parts[2], name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _reconstructor
        if module in ("__builtin__", "builtins") and name in _BUILTINS:
            return _BUILTINS[name]
        if module == "_codecs" and name == "encode":  # how Python 3 writes bytes at protocol 2
            return _latin1_encode
        raise pickle.UnpicklingError(f"refused to load global {module}.{name}")


def _latin1_encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("refused _codecs.encode call")
    return text.encode("latin1")


def safe_unpickle(data: bytes | io.BufferedIOBase, source: str = "<bytes>"):
    """Unpickle with the allow-list above; anything else is an ``SMPLFileError`` naming ``source``."""
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return _SafeUnpickler(stream, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        if "refused" in str(exc):
            raise SMPLFileError(f"{source}: {exc}. blender-mdm only unpickles plain arrays, chumpy "
                                f"and scipy.sparse data; this file is not an SMPL model ({HELP})") from None
        raise SMPLFileError(f"{source}: not a readable pickle ({exc}); the file may be truncated or "
                            f"corrupted, download it again ({HELP})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError,
            UnicodeDecodeError, OverflowError) as exc:
        raise SMPLFileError(f"{source}: cannot unpickle ({type(exc).__name__}: {exc}); the file is "
                            f"truncated or corrupted, download it again ({HELP})") from None


# --------------------------------------------------------------------------------------------
# pickled objects -> numpy
# --------------------------------------------------------------------------------------------
def _state_dict(obj: _PickledState, key: str) -> dict:
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        state = {**(state[0] or {}), **state[1]}  # (dict, slots) form
    if not isinstance(state, dict):
        raise SMPLFileError(f"'{key}' holds a {obj.kind} object without readable state")
    return state


def _chumpy_to_numpy(obj: _Chumpy, key: str) -> np.ndarray:
    state = _state_dict(obj, key)
    if "x" in state:  # chumpy.ch.Ch: the value itself
        return np.asarray(to_numpy(state["x"], key), dtype=np.float64)
    if "a" in state and "idxs" in state:  # chumpy.reordering.Select: a.ravel()[idxs]
        out = to_numpy(state["a"], key).ravel()[np.asarray(to_numpy(state["idxs"], key), np.int64)]
        shape = state.get("preferred_shape")
        return out.reshape(tuple(shape)) if shape is not None else out
    raise SMPLFileError(f"'{key}' holds an unsupported chumpy object (state keys {sorted(state)[:6]})")


def _sparse_to_numpy(obj: _Sparse, key: str) -> np.ndarray:
    state = _state_dict(obj, key)

    def need(name: str, dtype) -> np.ndarray:
        if not isinstance(state.get(name), np.ndarray):
            raise SMPLFileError(f"'{key}' is a damaged {obj.fmt} sparse matrix (no '{name}' array)")
        return state[name].astype(dtype).ravel()

    shape = state.get("_shape", state.get("shape"))
    data = need("data", np.float64)
    if obj.fmt == "coo":
        if isinstance(state.get("coords"), tuple) and len(state["coords"]) == 2:  # scipy >= 1.13
            state = {**state, "row": state["coords"][0], "col": state["coords"][1]}
        row, col = need("row", np.int64), need("col", np.int64)
        shape = tuple(int(s) for s in (shape or (row.max(initial=-1) + 1, col.max(initial=-1) + 1)))
        _check_sparse(key, shape, row, col, data)
        out = np.zeros(shape)
        np.add.at(out, (row, col), data)
        return out
    indices, indptr = need("indices", np.int64), need("indptr", np.int64)
    n_major = len(indptr) - 1
    if shape is None:
        n_minor = int(indices.max()) + 1 if len(indices) else 0
        shape = (n_minor, n_major) if obj.fmt == "csc" else (n_major, n_minor)
    shape = tuple(int(s) for s in shape)
    if len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0) \
            or n_major != (shape[1] if obj.fmt == "csc" else shape[0]):
        raise SMPLFileError(f"'{key}' is a damaged sparse matrix (indptr does not match the shape)")
    major = np.repeat(np.arange(n_major), np.diff(indptr))
    rows, cols = (indices, major) if obj.fmt == "csc" else (major, indices)
    _check_sparse(key, shape, rows, cols, data)
    out = np.zeros(shape)
    np.add.at(out, (rows, cols), data)  # duplicates sum, as in scipy
    return out


def _check_sparse(key: str, shape: tuple, rows: np.ndarray, cols: np.ndarray, data: np.ndarray) -> None:
    sane_shape = len(shape) == 2 and min(shape) >= 0 and shape[0] * shape[1] <= 10 ** 8
    inside = sane_shape and len(rows) == len(cols) == len(data) and rows.min(initial=0) >= 0 \
        and cols.min(initial=0) >= 0 and rows.max(initial=-1) < shape[0] and cols.max(initial=-1) < shape[1]
    if not inside:
        raise SMPLFileError(f"'{key}' is a damaged sparse matrix (indices outside its shape {shape})")


def to_numpy(value, key: str = "?"):
    """Turn stand-ins into dense arrays; everything else passes through unchanged."""
    if isinstance(value, _Chumpy):
        return _chumpy_to_numpy(value, key)
    if isinstance(value, _Sparse):
        return _sparse_to_numpy(value, key)
    if isinstance(value, _PickledState):
        raise SMPLFileError(f"'{key}' holds an unsupported pickled object")
    return value


# --------------------------------------------------------------------------------------------
# reading .pkl / .npz
# --------------------------------------------------------------------------------------------
def _read_npz(path: Path) -> dict:
    """Members of an .npz; object members (e.g. a sparse J_regressor) go through safe_unpickle."""
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    continue
                with zf.open(name) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read_header(fh)
                    if dtype.hasobject:
                        out[name[:-4]] = safe_unpickle(fh.read(), f"{path} [{name}]")
                        continue
                raw = zf.read(name)
                out[name[:-4]] = np.load(io.BytesIO(raw), allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise SMPLFileError(f"{path}: not a readable .npz archive ({exc}); the file may be truncated, "
                            f"export or download it again ({HELP})") from None
    return out


def read_smpl_arrays(path: str | Path) -> dict:
    """All entries of an SMPL .pkl/.npz as numpy arrays (chumpy/sparse converted), unvalidated."""
    path = Path(path)
    if not path.is_file():
        raise SMPLFileError(f"{path}: no such file ({HELP})")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):
        raw = _read_npz(path)
    else:
        with open(path, "rb") as fh:
            raw = safe_unpickle(fh, str(path))
        if isinstance(raw, np.ndarray) and raw.dtype.hasobject and raw.shape == ():
            raw = raw.item()
    if not isinstance(raw, dict):
        raise SMPLFileError(f"{path}: holds a {type(raw).__name__}, not the dict of arrays an SMPL "
                            f"model file contains ({HELP})")
    out = {}
    for key, value in raw.items():
        key = str(key)
        try:
            value = to_numpy(value, key)
            if isinstance(value, np.ndarray) and value.dtype.hasobject and value.shape == ():
                value = to_numpy(value.item(), key)
        except (SMPLFileError, ValueError, TypeError, AttributeError, IndexError, RecursionError) as exc:
            if key in REQUIRED_KEYS:
                reason = exc.message if isinstance(exc, SMPLFileError) else f"'{key}' is damaged ({exc})"
                raise SMPLFileError(f"{path}: {reason} ({HELP})") from None
            value = None  # an extra entry we do not need (e.g. a chumpy expression): skip it
        out[key] = value
    return out


# --------------------------------------------------------------------------------------------
# validated model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SMPLModel:
    """A validated SMPL body model, float64 numpy arrays."""

    path: str
    gender: str                # "neutral" | "female" | "male" | "unknown"
    v_template: np.ndarray     # [V, 3]
    faces: np.ndarray          # [F, 3] int64
    J_regressor: np.ndarray    # [24, V] dense
    weights: np.ndarray        # [V, 24] skinning weights
    shapedirs: np.ndarray      # [V, 3, B] (B = the betas used, at most what the file has)
    posedirs: np.ndarray       # [V, 3, 207]
    parents: np.ndarray        # [24] int64, root -1
    betas_in_file: int         # shape components stored in the file (10, 300, ...)

    @property
    def num_vertices(self) -> int:
        return self.v_template.shape[0]

    @property
    def num_betas(self) -> int:
        return self.shapedirs.shape[-1]

    def joint_shapedirs(self) -> np.ndarray:
        """[24, 3, B]: how each rest joint moves per unit beta (J_regressor @ shapedirs)."""
        return np.einsum("jv,vcb->jcb", self.J_regressor, self.shapedirs)

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """[24, 3] rest (T-pose) joints: J_regressor @ (v_template + shapedirs . betas)."""
        joints = self.J_regressor @ self.v_template
        if betas is not None and np.any(betas):
            betas = np.asarray(betas, np.float64)
            joints = joints + self.joint_shapedirs()[..., : len(betas)] @ betas
        return joints

    def describe(self) -> str:
        return (f"SMPL model {self.path}\n  gender: {self.gender}\n  vertices: {self.num_vertices}, "
                f"faces: {len(self.faces)}, joints: {NUM_JOINTS}\n  shape dims: {self.betas_in_file} in the "
                f"file (using {self.num_betas})\n  pose blend shapes: {self.posedirs.shape[-1]}")


def _gender(path: Path, arrays: dict) -> str:
    value = arrays.get("gender")
    if value is not None:
        text = str(np.asarray(value).reshape(-1)[0] if np.size(value) else "").lower()
        for g in ("neutral", "female", "male"):
            if g in text:
                return g
    name = path.name.lower()
    if "neutral" in name:
        return "neutral"
    if "female" in name or re.search(r"(^|[_\-.])f([_\-.]|$)", name):
        return "female"
    if "male" in name or re.search(r"(^|[_\-.])m([_\-.]|$)", name):
        return "male"
    return "unknown"


def _array(arrays: dict, key: str, path: Path, ndim: int, dtype=np.float64) -> np.ndarray:
    try:
        arr = np.asarray(arrays[key], dtype=dtype)
    except (TypeError, ValueError):
        raise SMPLFileError(f"{path}: '{key}' is not a numeric array ({HELP})") from None
    if arr.ndim != ndim:
        raise SMPLFileError(f"{path}: '{key}' has shape {arr.shape}, expected {ndim} dimensions ({HELP})")
    if dtype == np.float64 and not np.all(np.isfinite(arr)):
        raise SMPLFileError(f"{path}: '{key}' contains NaN or infinite values; the file is damaged")
    return arr


def validate_smpl_arrays(arrays: dict, path: str | Path, num_betas: int | None = 10) -> SMPLModel:
    """Check keys/shapes and build an ``SMPLModel``; every problem is an ``SMPLFileError``."""
    path = Path(path)
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise SMPLFileError(f"{path}: not an SMPL model file: missing {', '.join(missing)} "
                            f"(found keys: {', '.join(sorted(arrays)[:12]) or 'none'}; {HELP})")
    v_template = _array(arrays, "v_template", path, 2)
    num_v = v_template.shape[0]
    if v_template.shape[1] != 3 or num_v < NUM_JOINTS:
        raise SMPLFileError(f"{path}: 'v_template' has shape {v_template.shape}, expected [V, 3]")
    regressor = _array(arrays, "J_regressor", path, 2)
    if regressor.shape[1] != num_v:
        raise SMPLFileError(f"{path}: 'J_regressor' has shape {regressor.shape}, expected [24, {num_v}]")
    if regressor.shape[0] != NUM_JOINTS:
        raise SMPLFileError(f"{path}: the model has {regressor.shape[0]} joints; blender-mdm needs the "
                            f"24-joint SMPL body (SMPL-H / SMPL-X files are not supported; {HELP})")
    weights = _array(arrays, "weights", path, 2)
    if weights.shape != (num_v, NUM_JOINTS):
        raise SMPLFileError(f"{path}: 'weights' has shape {weights.shape}, expected [{num_v}, 24]")
    shapedirs = _array(arrays, "shapedirs", path, 3)
    if shapedirs.shape[:2] != (num_v, 3) or shapedirs.shape[2] < 1:
        raise SMPLFileError(f"{path}: 'shapedirs' has shape {shapedirs.shape}, expected [{num_v}, 3, B]")
    posedirs = _array(arrays, "posedirs", path, np.ndim(arrays["posedirs"]))
    if posedirs.shape == (num_v * 3, NUM_POSE_BASIS):
        posedirs = posedirs.reshape(num_v, 3, NUM_POSE_BASIS)
    if posedirs.shape != (num_v, 3, NUM_POSE_BASIS):
        raise SMPLFileError(f"{path}: 'posedirs' has shape {posedirs.shape}, expected [{num_v}, 3, 207]")
    faces = _array(arrays, "f", path, 2, dtype=np.int64)
    if faces.shape[1] != 3 or faces.min(initial=0) < 0 or faces.max(initial=0) >= num_v:
        raise SMPLFileError(f"{path}: 'f' is not a triangle list over {num_v} vertices (shape {faces.shape})")
    kintree = np.asarray(arrays["kintree_table"]).astype(np.int64)
    if kintree.shape != (2, NUM_JOINTS):
        raise SMPLFileError(f"{path}: 'kintree_table' has shape {kintree.shape}, expected [2, 24]")
    parents = kintree[0].copy()
    parents[0] = -1  # stored as uint32 4294967295
    if not np.array_equal(parents, SMPL_PARENTS):
        raise SMPLFileError(f"{path}: the joint tree {parents.tolist()} is not SMPL's "
                            f"{SMPL_PARENTS.tolist()}")
    betas_in_file = shapedirs.shape[2]
    if num_betas is not None:
        shapedirs = shapedirs[..., :num_betas]
    return SMPLModel(path=str(path), gender=_gender(path, arrays), v_template=v_template, faces=faces,
                     J_regressor=regressor, weights=weights, shapedirs=np.ascontiguousarray(shapedirs),
                     posedirs=posedirs, parents=parents, betas_in_file=betas_in_file)


def load_smpl(path: str | Path, num_betas: int | None = 10) -> SMPLModel:
    """Read and validate an SMPL model file (.pkl or .npz). ``num_betas`` keeps the first B shape PCs."""
    return validate_smpl_arrays(read_smpl_arrays(path), path, num_betas)
