"""Reading a result ``.npz`` (the format in docs/DESIGN.md) into checked numpy arrays.

Everything the scene writer needs is validated here, so a truncated or foreign file gives one clear
message naming the file and the key instead of an IndexError deep inside the keying code.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import backend_link

NUM_SMPL_JOINTS = 24


@dataclass
class MotionResult:
    path: Path
    poses: np.ndarray        # [K, T, 24, 3] parent-relative axis-angle, y-up canonical frame
    trans: np.ndarray        # [K, T, 3] smplx translation (posed pelvis = rest_joints[0] + trans)
    lengths: np.ndarray      # [K] valid frames per sample
    rest_joints: np.ndarray  # [24, 3] rest skeleton the poses were fitted on
    parents: np.ndarray      # [24]
    fps: float               # 20.0 for MDM
    betas: np.ndarray | None = None          # [K, B] body shape the fit used
    joints_fitted: np.ndarray | None = None  # [K, T, 24, 3] FK of the fit (tests compare against it)
    vertices: np.ndarray | None = None       # [K, T, V, 3] optional SMPL mesh animation
    recipe: dict = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return len(self.poses)


def load_result(path: str | Path) -> MotionResult:
    errors = backend_link.load("errors")
    path = Path(path)

    def bad(what: str) -> Exception:
        return errors.InputError(f"{path}: {what}. Expected a result from "
                                 f"'python -m backend generate --fit' (docs/DESIGN.md, result format).")

    if not path.is_file():
        raise errors.InputError(f"result file {path} does not exist; check the path")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise bad(f"not a readable .npz file ({exc})") from None
    missing = [k for k in ("poses", "trans", "rest_joints") if k not in arrays]
    if missing:
        hint = " (it has 'joints' only: generate with --fit)" if "joints" in arrays else ""
        raise bad(f"missing {', '.join(missing)}{hint}")

    poses = np.asarray(arrays["poses"], np.float64)
    if poses.ndim == 3:  # a single sample saved without the K axis
        poses = poses[None]
    if poses.ndim != 4 or poses.shape[2:] != (NUM_SMPL_JOINTS, 3) or poses.shape[1] < 1:
        raise bad(f"'poses' has shape {poses.shape}, expected [K, T, 24, 3]")
    k, t = poses.shape[:2]
    trans = np.asarray(arrays["trans"], np.float64).reshape((-1, t, 3)) if arrays["trans"].size == k * t * 3 else None
    if trans is None:
        raise bad(f"'trans' has shape {arrays['trans'].shape}, expected [{k}, {t}, 3]")
    rest = np.asarray(arrays["rest_joints"], np.float64)
    if rest.shape != (NUM_SMPL_JOINTS, 3):
        raise bad(f"'rest_joints' has shape {rest.shape}, expected [24, 3]")
    lengths = np.asarray(arrays.get("lengths", np.full(k, t)), np.int64).reshape(-1)
    if lengths.shape != (k,) or (lengths < 1).any() or (lengths > t).any():
        raise bad(f"'lengths' {lengths.tolist()} does not fit {k} samples of {t} frames")
    fps = float(arrays.get("fps", 20.0))
    if not fps > 0:
        raise bad(f"'fps' is {fps}")
    parents = np.asarray(arrays.get("parents", backend_link.load("motion.skeleton").SMPL_PARENTS), np.int64)
    for name, value in (("poses", poses), ("trans", trans), ("rest_joints", rest)):
        if not np.isfinite(value).all():
            raise bad(f"'{name}' contains NaN or infinite values")

    def optional(key: str) -> np.ndarray | None:  # [K, T, N, 3] arrays
        value = arrays.get(key)
        if value is None:
            return None
        if value.ndim != 4 or value.shape[:2] != (k, t) or value.shape[3] != 3:
            raise bad(f"'{key}' has shape {value.shape}, expected [{k}, {t}, N, 3]")
        return value

    recipe = {}
    if "recipe" in arrays:
        try:
            recipe = json.loads(str(arrays["recipe"]))
        except json.JSONDecodeError:
            raise bad("'recipe' is not JSON") from None
    return MotionResult(path=path, poses=poses, trans=trans, lengths=lengths, rest_joints=rest,
                        parents=parents, fps=fps, joints_fitted=optional("joints_fitted"),
                        betas=np.asarray(arrays["betas"], np.float64).reshape(k, -1) if "betas" in arrays else None,
                        vertices=optional("vertices"), recipe=recipe if isinstance(recipe, dict) else {})
