"""Fitting in the shared result format (docs/DESIGN.md): what ``generate --fit`` and the service add.

``fit_result_arrays(joints [K, T, 22, 3], lengths)`` returns the fitted keys: poses, trans, betas,
joints_fitted, fit_error, rest_joints, parents (and vertices). Without an SMPL file the built-in
skeleton is used and ``betas`` has zero columns ([K, 0]): there is no SMPL shape to speak of.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..motion.foot_lock import lock_feet
from ..motion.skeleton import SMPL_PARENTS
from .fitter import FitConfig, fit_joints
from .smpl_file import load_smpl


def fit_result_arrays(joints, lengths=None, smpl_path: str | Path | None = None, fit_betas: bool = False,
                      vertices: bool = False, config: FitConfig = FitConfig(), rest_joints=None,
                      foot_contacts=None) -> dict:
    """Fit a batch [K, T, 22, 3] (valid frames per clip in ``lengths`` [K]) -> dict of arrays.

    rest_joints [24, 3]: fit on this skeleton (e.g. a user's rig) instead of the SMPL file's or the
    built-in one. foot_contacts [K, T, 4] (MDM's contact features): pin the feet where they touch
    the ground before fitting (``motion.foot_lock``); the fit then follows the pinned feet."""
    joints = np.asarray(joints)
    if joints.ndim != 4:
        raise InputError(f"joints must have shape [K, T, 22, 3], got {list(joints.shape)}")
    if foot_contacts is not None:
        joints = locked_feet(joints, lengths, foot_contacts)
    if (fit_betas or vertices) and smpl_path is None:
        raise InputError("--fit-betas and --vertices need an SMPL model file (--smpl PATH; "
                         "see smpl_assets/README.md)")
    if smpl_path is not None and rest_joints is not None:
        raise InputError("give either an SMPL model file or a rest skeleton to fit on, not both")
    model = load_smpl(smpl_path) if smpl_path is not None else None
    fit = fit_joints(joints, lengths, smpl=model, rest_joints=rest_joints, fit_betas=fit_betas, config=config)
    k = joints.shape[0]
    out = {
        "poses": fit.poses.astype(np.float32),
        "trans": fit.trans.astype(np.float32),
        "betas": np.tile(fit.betas.astype(np.float32), (k, 1)),
        "joints_fitted": fit.joints_fitted.astype(np.float32),
        "fit_error": fit.per_frame_error.astype(np.float32),
        "rest_joints": fit.rest_joints.astype(np.float32),
        "parents": SMPL_PARENTS.copy(),
    }
    if vertices:
        from .lbs import vertices as skin  # noqa: PLC0415 - only needed here
        out["vertices"] = np.stack([skin(model, fit.poses[i], fit.trans[i], fit.betas) for i in range(k)])
    return out


def locked_feet(joints: np.ndarray, lengths, contacts) -> np.ndarray:
    """joints [K, T, 22, 3] with each clip's feet pinned over its valid frames (contacts [K, T, 4])."""
    contacts = np.asarray(contacts)
    if contacts.shape != joints.shape[:2] + (4,):
        raise InputError(f"foot contacts must have shape {list(joints.shape[:2]) + [4]}, got {list(contacts.shape)}")
    lengths = np.full(len(joints), joints.shape[1]) if lengths is None else np.asarray(lengths)
    out = np.array(joints, dtype=np.float64)
    for k, n in enumerate(lengths):
        out[k, :n] = lock_feet(out[k, :n], contacts[k, :n])
    return out


def load_joints_file(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Read joints from .npy ([T, 22, 3] / [K, T, 22, 3]) or .npz (key 'joints', optional 'lengths').

    Returns (joints, lengths or None, the npz's other entries to pass through)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such joints file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                entries = {k: data[k] for k in data.files}
            if "joints" not in entries:
                raise InputError(f"{path}: no 'joints' array (found: {', '.join(sorted(entries)) or 'none'})")
            joints = entries.pop("joints")
            lengths = entries.pop("lengths", None)
            return joints, lengths, entries
        return np.load(path, allow_pickle=False), None, {}
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy/.npz joints file ({exc})") from None
