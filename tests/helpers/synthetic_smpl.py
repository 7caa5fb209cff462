"""Synthetic SMPL model files for tests: the official layout and pickle classes, made-up numbers.

``make_smpl_arrays`` builds a 6890-vertex model whose J_regressor @ v_template is a chosen rest
skeleton (each joint regressed from 8 vertices around it). ``write_smpl_pkl`` pickles it the way
the official files are pickled: ``shapedirs`` (and, in the Python 2 style, ``v_template`` and an
extra ``J``) as ``chumpy.ch.Ch`` / ``chumpy.reordering.Select`` objects, ``J_regressor`` as a
``scipy.sparse`` csc matrix (``scipy.sparse.csc.csc_matrix`` in the Python 2 style, scipy's
current ``scipy.sparse._csc.csc_matrix`` otherwise) - without importing chumpy: stand-in classes
are registered under chumpy's module names only while pickling. The Python 2 style also writes
strings/bytes with the BINSTRING opcodes Python 2 used, which is why readers need latin1.
"""
from __future__ import annotations

import pickle
import struct
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from backend.motion.skeleton import SMPL_PARENTS

NUM_VERTICES = 6890
NUM_FACES = 13776

# SMPL-neutral (beta = 0) rest joints as published in smplify_facts.md section 4.5 (MoMask's MIT
# template.bvh), hands extended 8.824 cm along the forearm (CLoSD's convention). Tests only.
_NEUTRAL_22 = np.array([
    [-0.0018, -0.2233, 0.0282], [0.0677, -0.3147, 0.0214], [-0.0695, -0.3139, 0.0239],
    [-0.0043, -0.1144, 0.0015], [0.1020, -0.6899, 0.0169], [-0.1078, -0.6964, 0.0150],
    [0.0012, 0.0208, 0.0026], [0.0884, -1.0879, -0.0268], [-0.0920, -1.0948, -0.0273],
    [0.0026, 0.0737, 0.0280], [0.1148, -1.1437, 0.0925], [-0.1174, -1.1430, 0.0961],
    [-0.0002, 0.2876, -0.0148], [0.0815, 0.1955, -0.0061], [-0.0791, 0.1926, -0.0106],
    [0.0050, 0.3526, 0.0365], [0.1724, 0.2259, -0.0149], [-0.1752, 0.2251, -0.0197],
    [0.4320, 0.2132, -0.0424], [-0.4289, 0.2118, -0.0411], [0.6813, 0.2222, -0.0435],
    [-0.6842, 0.2196, -0.0467]])


def _with_hands(joints22: np.ndarray, hand_length: float = 0.08824) -> np.ndarray:
    fore = joints22[[20, 21]] - joints22[[18, 19]]
    hands = joints22[[20, 21]] + hand_length * fore / np.linalg.norm(fore, axis=-1, keepdims=True)
    return np.concatenate([joints22, hands])


SMPL_NEUTRAL_LIKE_REST = _with_hands(_NEUTRAL_22)


def make_smpl_arrays(rest_joints: np.ndarray = SMPL_NEUTRAL_LIKE_REST, num_betas: int = 10,
                     seed: int = 0) -> dict:
    """Dense arrays of a synthetic SMPL model whose beta = 0 rest joints are ``rest_joints``."""
    rng = np.random.default_rng(seed)
    owner = np.arange(NUM_VERTICES) % 24                       # the joint each vertex belongs to
    child = {int(p): j for j, p in enumerate(SMPL_PARENTS) if p >= 0}
    along = np.array([rest_joints[child.get(j, j)] - rest_joints[j] for j in range(24)])
    verts = rest_joints[owner] + rng.uniform(0, 1, (NUM_VERTICES, 1)) * along[owner] \
        + rng.normal(0, 0.03, (NUM_VERTICES, 3))
    regressor = np.zeros((24, NUM_VERTICES))
    for j in range(24):
        idx = np.flatnonzero(owner == j)[:8]
        spread = rng.normal(0, 0.02, (8, 3))
        verts[idx] = rest_joints[j] + spread - spread.mean(0)  # their mean is exactly the joint
        regressor[j, idx] = 1.0 / 8
    weights = np.zeros((NUM_VERTICES, 24))
    weights[np.arange(NUM_VERTICES), owner] = 0.8
    weights[np.arange(NUM_VERTICES), np.maximum(SMPL_PARENTS[owner], 0)] += 0.2
    centre = rest_joints.mean(0)
    per_joint = rng.normal(0, 0.01, (24, 3, num_betas))        # joint moves ~1 cm per unit beta
    scale = rng.normal(0, 0.03, num_betas)
    shapedirs = per_joint[owner] + (verts - centre)[:, :, None] * scale
    kintree = np.stack([SMPL_PARENTS, np.arange(24)]).astype(np.int64)
    kintree[0, 0] = 4294967295                                 # how the official files store -1
    return {
        "v_template": verts, "f": rng.integers(0, NUM_VERTICES, (NUM_FACES, 3)).astype(np.uint32),
        "J_regressor": regressor, "weights": weights, "shapedirs": shapedirs,
        "posedirs": rng.normal(0, 1e-3, (NUM_VERTICES, 3, 207)).astype(np.float32),  # keeps files small
        "kintree_table": kintree,
        "J": regressor @ verts, "bs_style": "lbs", "bs_type": "lrotmin",
    }


# ----------------------------------------------------------------------------------------------
# pickling with the official class references
# ----------------------------------------------------------------------------------------------
class _Ch:
    """Pickles as chumpy.ch.Ch with chumpy's state layout ('x' + bookkeeping)."""

    def __init__(self, x):
        self.x = x

    def __getstate__(self):
        return {"x": self.x, "_dirty_vars": set(), "_depends_on_deps": {}}


class _Select:
    """Pickles as chumpy.reordering.Select: a.ravel()[idxs] reshaped to preferred_shape."""

    def __init__(self, a, idxs, preferred_shape):
        self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape

    def __getstate__(self):
        return {"a": self.a, "idxs": self.idxs, "preferred_shape": self.preferred_shape,
                "_dirty_vars": set()}


class _OldCsc:
    """Pickles as scipy.sparse.csc.csc_matrix with old scipy's state layout."""

    def __init__(self, dense):
        cols = [np.flatnonzero(dense[:, c]) for c in range(dense.shape[1])]
        self.indptr = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int32)
        self.indices = np.concatenate(cols).astype(np.int32)
        self.data = np.concatenate([dense[c, i] for i, c in enumerate(cols)])
        self.shape = dense.shape

    def __getstate__(self):
        return {"_shape": self.shape, "data": self.data, "indices": self.indices,
                "indptr": self.indptr, "maxprint": 50}


@contextmanager
def _fake_classes(classes: dict):
    """Register classes under foreign module names ({'chumpy.ch': {'Ch': cls}}) while pickling."""
    saved = {}
    for module, members in classes.items():
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            saved.setdefault(name, sys.modules.get(name))
            if name not in sys.modules or i == len(parts):
                sys.modules[name] = types.ModuleType(name)
        for attr, cls in members.items():
            cls.__module__, cls.__qualname__ = module, attr
            setattr(sys.modules[module], attr, cls)
    try:
        yield
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


class _Py2Pickler(pickle._Pickler):
    """Protocol 2, strings and bytes as Python 2 'str' (SHORT_BINSTRING / BINSTRING)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def write_smpl_pkl(path: str | Path, arrays: dict, style: str = "py2", protocol: int = 2) -> Path:
    """Pickle ``arrays`` like an official SMPL file. style 'py2': Python 2 opcodes, old scipy class
    path, chumpy v_template/J; 'py3': Python 3 pickle at ``protocol``, scipy's current csc class."""
    path = Path(path)
    obj = dict(arrays)
    obj["shapedirs"] = _Ch(arrays["shapedirs"])
    if style == "py2":
        obj["v_template"] = _Ch(arrays["v_template"])
        obj["J"] = _Select(_Ch(arrays["J"].ravel()), np.arange(arrays["J"].size), arrays["J"].shape)
        obj["J_regressor"] = _OldCsc(arrays["J_regressor"])
        with _fake_classes({"chumpy.ch": {"Ch": _Ch}, "chumpy.reordering": {"Select": _Select},
                            "scipy.sparse.csc": {"csc_matrix": _OldCsc}}), open(path, "wb") as fh:
            _Py2Pickler(fh, protocol=2).dump(obj)
    else:
        import scipy.sparse  # the real class: scipy.sparse._csc.csc_matrix
        obj["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
        with _fake_classes({"chumpy.ch": {"Ch": _Ch}}), open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=protocol)
    return path


def write_smpl_npz(path: str | Path, arrays: dict) -> Path:
    np.savez(path, **{k: v for k, v in arrays.items() if isinstance(v, np.ndarray)})
    return Path(path)
