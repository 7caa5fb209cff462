"""How good is a fit: error, floor contact, jitter, quaternion continuity, hinge fidelity (numpy).

Used by the tests and by bench/fitting.py so both report the same numbers. Joints are [T, J, 3]
(HumanML3D frame, metres; only the first 22 are compared), rotations [T, J, 3, 3].

Jitter is defined on bone *directions* so that a fit and its target (positions only) are measured
the same way: for every HumanML3D bone (parent -> child, 21 bones) let d_t be its unit direction
at frame t and w_t the rotation vector of the shortest arc taking d_t onto d_{t+1} (world frame,
radians per frame). The jitter of the motion is mean_{t, bone} |w_{t+1} - w_t|: the mean angular
acceleration of the bones, in radians per frame^2 (deg/frame^2 in reports). Twist about a bone is
invisible to it; ``rotation_jitter`` measures full rotations (twist included) of a fit.
"""
from __future__ import annotations

import numpy as np

from ..motion import quaternion as Q
from ..motion.skeleton import HML_NUM_JOINTS, SMPL_PARENTS

FOOT_JOINTS = (7, 8, 10, 11)  # ankles and toes


def joint_errors(fitted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[T, 22] distance (m) of each fitted joint from its target."""
    return np.linalg.norm(fitted[..., :HML_NUM_JOINTS, :] - target[..., :HML_NUM_JOINTS, :], axis=-1)


def mpjpe(fitted: np.ndarray, target: np.ndarray) -> float:
    """Mean per-joint position error (m) over all frames and the 22 observed joints."""
    return float(joint_errors(fitted, target).mean())


def foot_height_error(fitted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[T] |height of the lowest fitted foot joint - that of the target| (m): floating/sinking."""
    feet = list(FOOT_JOINTS)
    return np.abs(fitted[..., feet, 1].min(-1) - target[..., feet, 1].min(-1))


def _arc_vectors(directions: np.ndarray) -> np.ndarray:
    """Unit directions [T, B, 3] -> [T-1, B, 3] rotation vectors of the arcs d_t -> d_{t+1}."""
    a, b = directions[:-1], directions[1:]
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = np.arctan2(sin, (a * b).sum(-1, keepdims=True))
    return axis / np.maximum(sin, 1e-12) * angle


def bone_jitter(joints: np.ndarray) -> float:
    """Mean angular acceleration (rad/frame^2) of the 21 HumanML3D bone directions (see module doc)."""
    children = np.arange(1, HML_NUM_JOINTS)
    bones = joints[:, children] - joints[:, SMPL_PARENTS[children]]
    w = _arc_vectors(bones / np.linalg.norm(bones, axis=-1, keepdims=True))
    return float(np.linalg.norm(w[1:] - w[:-1], axis=-1).mean())


def rotation_jitter(rotations: np.ndarray) -> float:
    """Mean angular acceleration (rad/frame^2) of rotations [T, J, 3, 3]: |w_{t+1} - w_t| with
    w_t = log(R_{t+1} R_t^T), the angular velocity in the world frame - twist included."""
    rel = rotations[1:] @ np.swapaxes(rotations[:-1], -1, -2)
    w = Q.matrix_to_axis_angle(rel)
    return float(np.linalg.norm(w[1:] - w[:-1], axis=-1).mean())


def quaternion_sign_flips(poses: np.ndarray) -> int:
    """Number of (frame, joint) where axis_angle_to_quat(poses) jumps hemisphere (q_t . q_t-1 < 0)."""
    q = Q.axis_angle_to_quat(poses)
    return int(((q[1:] * q[:-1]).sum(-1) < 0).sum())


def off_hinge_angle(local_rot: np.ndarray, axis) -> np.ndarray:
    """Angle (rad) of the part of a rotation that is NOT about ``axis`` (swing of a swing-twist
    decomposition about the hinge axis): 0 for a perfect hinge."""
    q = Q.matrix_to_quat(local_rot)
    twist_half = np.arctan2(q[..., 1:] @ np.asarray(axis, np.float64), q[..., 0])
    # |swing| = angle of q * twist^-1; its scalar part is cos(half swing angle)
    w = q[..., 0] * np.cos(twist_half) + (q[..., 1:] @ np.asarray(axis, np.float64)) * np.sin(twist_half)
    return 2.0 * np.arccos(np.clip(np.abs(w), 0.0, 1.0))
