"""The HumanML3D 263-d motion representation, both directions (numpy only).

- ``recover_joints_from_features``: features [..., T, 263] -> joints [..., T, 22, 3] (the official
  ``recover_from_ric``; this is what turns MDM output into positions).
- ``extract_features_from_joints``: joints [F, 22, 3] -> features [F-1, 263] (HumanML3D's
  ``process_file``), in the ``current`` official variant or the ``pre2025`` one that produced the
  released dataset statistics (see ../shared/mdm_compat/README.md section 8).
- ``MotionNormalizer``: z-scoring with the Mean/Std every official checkpoint was trained with.

Frame rate is 20 fps throughout. Joints are y-up metres with HumanML3D joint order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import quaternion as Q
from .skeleton import (FACE_JOINTS, FEATURE_DIM, HML_KINEMATIC_CHAIN, HML_NUM_JOINTS, HML_PARENTS,
                       HML_RAW_OFFSETS, LEFT_FOOT_JOINTS, RIGHT_FOOT_JOINTS, hml_target_offsets)

FPS = 20.0
MAX_FRAMES = 196
VARIANTS = ("current", "pre2025")
_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "humanml3d"


# --------------------------------------------------------------------------------------------
# features -> joints
# --------------------------------------------------------------------------------------------
def recover_root(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integrate root rotation and position. Returns (root_quat [..., T, 4], root_pos [..., T, 3])."""
    dtype = features.dtype
    rot_vel = features[..., 0]
    angle = np.zeros_like(rot_vel)
    angle[..., 1:] = np.cumsum(rot_vel[..., :-1], axis=-1)
    zeros = np.zeros_like(angle)
    root_quat = np.stack([np.cos(angle), zeros, np.sin(angle), zeros], axis=-1)

    step = np.zeros(features.shape[:-1] + (3,), dtype=dtype)
    step[..., 1:, 0] = features[..., :-1, 1]
    step[..., 1:, 2] = features[..., :-1, 2]
    step = Q.qrot(Q.qinv(root_quat), step)
    root_pos = np.cumsum(step, axis=-2)
    root_pos[..., 1] = features[..., 3]
    return root_quat, root_pos


def recover_joints_from_features(features: np.ndarray) -> np.ndarray:
    """De-normalised features [..., T, 263] -> joint positions [..., T, 22, 3] (same dtype)."""
    features = np.asarray(features)
    if features.shape[-1] != FEATURE_DIM:
        raise ValueError(f"expected HumanML3D features with {FEATURE_DIM} channels, got shape {features.shape}")
    root_quat, root_pos = recover_root(features)
    local = features[..., 4:67].reshape(features.shape[:-1] + (HML_NUM_JOINTS - 1, 3))
    inv = np.broadcast_to(Q.qinv(root_quat)[..., None, :], local.shape[:-1] + (4,))
    body = Q.qrot(inv, local)
    body[..., 0] += root_pos[..., None, 0]
    body[..., 2] += root_pos[..., None, 2]
    return np.concatenate([root_pos[..., None, :], body], axis=-2).astype(features.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# joints -> features
# --------------------------------------------------------------------------------------------
def _gaussian_smooth_nearest(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian filter along axis 0 with edge-replicating padding (scipy's mode='nearest')."""
    radius = int(truncate * sigma + 0.5)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, 0), x, np.repeat(x[-1:], radius, 0)], axis=0)
    out = np.zeros_like(x, dtype=np.float64)
    for k, w in enumerate(kernel):
        out += w * padded[k:k + len(x)]
    return out


def _qbetween(variant: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return Q.qbetween(a, b, z_epsilon=1e-4 if variant == "current" else 0.0)


def _bone_offsets(joints0: np.ndarray) -> np.ndarray:
    """Raw directions scaled by this pose's bone lengths (HumanML3D ``get_offsets_joints``)."""
    lengths = np.linalg.norm(joints0[1:] - joints0[HML_PARENTS[1:]], axis=-1)
    offsets = HML_RAW_OFFSETS.copy()
    offsets[1:] *= lengths[:, None]
    return offsets


def _inverse_kinematics(joints: np.ndarray, variant: str, smooth_forward: bool) -> np.ndarray:
    """Per-joint quaternions [F, 22, 4] of HumanML3D's swing-only IK (root = heading only)."""
    n = len(joints)
    # Upstream quirk kept for compatibility: the first two face indices are unpacked as (l_hip, r_hip).
    l_hip, r_hip, sdr_r, sdr_l = FACE_JOINTS
    across = (joints[:, r_hip] - joints[:, l_hip]) + (joints[:, sdr_r] - joints[:, sdr_l])
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = np.cross(np.array([[0.0, 1.0, 0.0]]), across)
    if smooth_forward:
        forward = _gaussian_smooth_nearest(forward, 20.0)
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    root_quat = _qbetween(variant, forward, np.tile([0.0, 0.0, 1.0], (n, 1)))
    if variant == "pre2025":
        root_quat[0] = (1.0, 0.0, 0.0, 0.0)
    quats = np.zeros((n, HML_NUM_JOINTS, 4))
    quats[:, 0] = root_quat
    for chain in HML_KINEMATIC_CHAIN:
        accumulated = root_quat
        for parent, child in zip(chain[:-1], chain[1:]):
            bone = joints[:, child] - joints[:, parent]
            bone = bone / np.linalg.norm(bone, axis=-1, keepdims=True)
            swing = _qbetween(variant, np.tile(HML_RAW_OFFSETS[child], (n, 1)), bone)
            local = Q.qmul(Q.qinv(accumulated), swing)
            quats[:, child] = local
            accumulated = Q.qmul(accumulated, local)
    return quats


def _forward_kinematics(quats: np.ndarray, root_pos: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    joints = np.zeros(quats.shape[:-1] + (3,))
    joints[:, 0] = root_pos
    for chain in HML_KINEMATIC_CHAIN:
        accumulated = quats[:, 0]
        for parent, child in zip(chain[:-1], chain[1:]):
            accumulated = Q.qmul(accumulated, quats[:, child])
            joints[:, child] = Q.qrot(accumulated, np.broadcast_to(offsets[child], root_pos.shape)) + joints[:, parent]
    return joints


def retarget_root_scale(joints0: np.ndarray, tgt_offsets: np.ndarray | None = None) -> float:
    """Factor ``retarget_to_skeleton`` multiplies root positions by: target over source leg length
    (right thigh + shin), measured on the first frame ``joints0`` [22, 3]."""
    tgt = hml_target_offsets() if tgt_offsets is None else tgt_offsets
    src_offsets = _bone_offsets(np.asarray(joints0, dtype=np.float64))
    src_leg = np.abs(src_offsets[5]).max() + np.abs(src_offsets[8]).max()
    tgt_leg = np.abs(tgt[5]).max() + np.abs(tgt[8]).max()
    return float(tgt_leg / src_leg)


def retarget_to_skeleton(joints: np.ndarray, tgt_offsets: np.ndarray, variant: str) -> np.ndarray:
    """HumanML3D ``uniform_skeleton``: same bone directions, target bone lengths, leg-scaled root."""
    quats = _inverse_kinematics(joints, variant, smooth_forward=False)
    return _forward_kinematics(quats, joints[:, 0] * retarget_root_scale(joints[0], tgt_offsets), tgt_offsets)


@dataclass
class ExtractedFeatures:
    features: np.ndarray          # [F-1, 263] float64
    global_positions: np.ndarray  # [F, 22, 3] retargeted, on the floor, origin, facing +z at frame 0
    local_positions: np.ndarray   # [F, 22, 3] root-XZ removed, per-frame heading aligned
    l_velocity: np.ndarray        # [F-1, 2] root velocity in the root frame (x, z)
    canonical_yaw: float          # rotation about +y (radians) applied to face +z at frame 0
    canonical_offset: np.ndarray  # [3] translation subtracted (floor height and frame-0 root xz)


def extract_features_from_joints(joints: np.ndarray, variant: str = "pre2025",
                                 tgt_offsets: np.ndarray | None = None,
                                 feet_thre: float = 0.002, retarget: bool = True) -> ExtractedFeatures:
    """HumanML3D ``process_file``: joints [F, 22, 3] (y-up, metres, 20 fps) -> features [F-1, 263].

    ``variant="pre2025"`` reproduces the pipeline that made the HumanML3D dataset (use it to feed
    official checkpoints); ``"current"`` the official code after Feb 2025 (golden vectors).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown feature variant {variant!r}; expected one of {VARIANTS}")
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (HML_NUM_JOINTS, 3) or len(joints) < 2:
        raise ValueError(f"expected joints of shape [F>=2, 22, 3], got {joints.shape}")
    if not np.isfinite(joints).all():
        raise ValueError("joint positions contain NaN or infinite values")
    tgt = hml_target_offsets() if tgt_offsets is None else np.asarray(tgt_offsets, dtype=np.float64)

    positions = retarget_to_skeleton(joints, tgt, variant) if retarget else joints.copy()
    floor = positions[:, :, 1].min()
    positions[:, :, 1] -= floor
    origin_xz = positions[0, 0] * np.array([1.0, 0.0, 1.0])
    positions -= origin_xz

    r_hip, l_hip, sdr_r, sdr_l = FACE_JOINTS
    across = (positions[0, r_hip] - positions[0, l_hip]) + (positions[0, sdr_r] - positions[0, sdr_l])
    across /= np.linalg.norm(across)
    forward_init = np.cross([0.0, 1.0, 0.0], across)
    forward_init /= np.linalg.norm(forward_init)
    face_quat = _qbetween(variant, forward_init[None], np.array([[0.0, 0.0, 1.0]]))[0]
    positions = Q.qrot(np.broadcast_to(face_quat, positions.shape[:-1] + (4,)), positions)
    global_positions = positions.copy()
    canonical_yaw = float(np.arctan2(face_quat[2], face_quat[0]) * 2.0)

    def contacts(ids):
        step = positions[1:, list(ids)] - positions[:-1, list(ids)]
        return ((step ** 2).sum(-1) < feet_thre).astype(np.float64)

    feet_l, feet_r = contacts(LEFT_FOOT_JOINTS), contacts(RIGHT_FOOT_JOINTS)

    quats = _inverse_kinematics(positions, variant, smooth_forward=True)
    cont6d = Q.quat_to_cont6d(quats)
    r_rot = quats[:, 0]
    velocity = Q.qrot(r_rot[1:], positions[1:, 0] - positions[:-1, 0])
    r_velocity = Q.qmul(r_rot[1:], Q.qinv(r_rot[:-1]))

    local = positions.copy()
    local[..., 0] -= local[:, 0:1, 0]
    local[..., 2] -= local[:, 0:1, 2]
    local = Q.qrot(np.broadcast_to(r_rot[:, None], local.shape[:-1] + (4,)), local)

    joint_vel = Q.qrot(np.broadcast_to(r_rot[:-1, None], (len(positions) - 1, HML_NUM_JOINTS, 4)),
                       positions[1:] - positions[:-1])
    features = np.concatenate([
        np.arcsin(r_velocity[:, 2:3]),
        velocity[:, [0, 2]],
        positions[:-1, 0, 1:2],
        local[:-1, 1:].reshape(len(positions) - 1, -1),
        cont6d[:-1, 1:].reshape(len(positions) - 1, -1),
        joint_vel.reshape(len(positions) - 1, -1),
        feet_l, feet_r,
    ], axis=-1)
    return ExtractedFeatures(features=features, global_positions=global_positions, local_positions=local,
                             l_velocity=velocity[:, [0, 2]], canonical_yaw=canonical_yaw,
                             canonical_offset=np.array([origin_xz[0], floor, origin_xz[2]]))


# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------
class MotionNormalizer:
    """z-scoring with HumanML3D's Mean/Std ([263] float32): model space <-> feature space."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        if mean.shape != (FEATURE_DIM,) or std.shape != (FEATURE_DIM,):
            raise ValueError(f"Mean/Std must have shape ({FEATURE_DIM},), got {mean.shape} and {std.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError("Mean/Std contain non-finite values or non-positive deviations")
        self.mean, self.std = mean, std

    @classmethod
    def from_dir(cls, folder: str | Path | None = None) -> "MotionNormalizer":
        folder = Path(folder) if folder is not None else _ASSETS
        try:
            return cls(np.load(folder / "Mean.npy"), np.load(folder / "Std.npy"))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"Mean.npy/Std.npy not found in {folder}") from exc

    def normalize(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std

    def denormalize(self, normalized: np.ndarray) -> np.ndarray:
        return normalized * self.std + self.mean
