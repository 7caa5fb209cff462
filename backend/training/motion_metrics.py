"""Geometric measures of a motion, for checking that generated clips do what their prompt says.

Input everywhere: joints [T, 22, 3] (HumanML3D order, y up, metres, 20 fps). "Standing height" and
other reference values are medians over the first ``reference_frames`` frames, so a clip is
measured against how it starts. Headings are yaw angles about +y, positive = turning left.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..motion.skeleton import FOOT_CONTACT_JOINTS, facing_direction, heading_yaw

FPS = 20.0
PELVIS, HEAD = 0, 15
ANKLE = {"left": 7, "right": 8}
SHOULDER = {"left": 16, "right": 17}
WRIST = {"left": 20, "right": 21}


def _check(joints) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (22, 3) or len(joints) < 2:
        raise InputError(f"motion metrics need joints of shape [T>=2, 22, 3], got {joints.shape}")
    if not np.isfinite(joints).all():
        raise InputError("motion metrics got joints with NaN or infinite values")
    return joints


def _side(side: str) -> str:
    if side not in ("left", "right"):
        raise InputError(f"side must be 'left' or 'right', got {side!r}")
    return side


def standing_height(joints, reference_frames: int = 5) -> float:
    """Pelvis height at the start of the clip (median of the first frames)."""
    joints = _check(joints)
    return float(np.median(joints[:reference_frames, PELVIS, 1]))


def forward_displacement(joints, seconds: float | None = None, fps: float = FPS) -> float:
    """Pelvis travel (m) along the initial facing direction, from frame 0 to ``seconds`` (or the end)."""
    joints = _check(joints)
    end = len(joints) - 1 if seconds is None else min(len(joints) - 1, int(round(seconds * fps)))
    facing = facing_direction(joints[0])
    return float((joints[end, PELVIS] - joints[0, PELVIS])[[0, 2]] @ facing[[0, 2]])


def pelvis_rise(joints, reference_frames: int = 5) -> float:
    """Highest pelvis height above the standing height (m): jumps."""
    joints = _check(joints)
    return float(joints[:, PELVIS, 1].max() - standing_height(joints, reference_frames))


def pelvis_lowering(joints, reference_frames: int = 5) -> float:
    """How far the pelvis gets below the standing height (m): sitting, squatting."""
    joints = _check(joints)
    return float(standing_height(joints, reference_frames) - joints[:, PELVIS, 1].min())


def wrist_above_head_fraction(joints, hand: str = "right") -> float:
    """Fraction of frames with ``hand``'s wrist above the head while the other wrist is below its
    shoulder (a one-handed overhead wave)."""
    joints = _check(joints)
    other = "left" if _side(hand) == "right" else "right"
    up = joints[:, WRIST[hand], 1] > joints[:, HEAD, 1]
    down = joints[:, WRIST[other], 1] < joints[:, SHOULDER[other], 1]
    return float(np.mean(up & down))


def heading_angles(joints) -> np.ndarray:
    """[T] unwrapped yaw (rad) of the facing direction from hips and shoulders; + = left turn."""
    joints = _check(joints)
    return np.unwrap(heading_yaw(facing_direction(joints)))


def heading_change(joints, average_frames: int = 3) -> float:
    """Signed heading change (rad) from the start to the end of the clip (ends averaged)."""
    yaw = heading_angles(joints)
    k = max(1, min(average_frames, len(yaw) // 2))
    return float(yaw[-k:].mean() - yaw[:k].mean())


def ankle_raise(joints, side: str = "left", reference_frames: int = 5) -> float:
    """Highest rise (m) of one ankle above its height at the start: kicks, knee raises."""
    joints = _check(joints)
    ankle = joints[:, ANKLE[_side(side)], 1]
    return float(ankle.max() - np.median(ankle[:reference_frames]))


def mean_horizontal_speed(joints, fps: float = FPS) -> float:
    """Average horizontal pelvis speed (m/s) over the clip."""
    joints = _check(joints)
    step = np.linalg.norm(np.diff(joints[:, PELVIS][:, [0, 2]], axis=0), axis=-1)
    return float(step.mean() * fps)



def foot_skate(joints, grounded_by=None, tolerance: float = 0.025) -> float:
    """Foot skating: the mean horizontal step (metres per frame) of the ankles and toes over the
    frames where the joint is on the ground at both ends of the step, judged by height alone (within
    ``tolerance`` of its 10th-percentile height in ``grounded_by``, default ``joints``; pass the raw
    motion to compare a corrected one on the same frames). 0.0 when no step is grounded."""
    joints = _check(joints)
    reference = joints if grounded_by is None else _check(grounded_by)
    if reference.shape != joints.shape:
        raise InputError(f"grounded_by has shape {reference.shape}, joints {joints.shape}")
    feet = list(FOOT_CONTACT_JOINTS)                          # ankles and toes
    heights = reference[:, feet, 1]
    grounded = heights < np.percentile(heights, 10, axis=0) + tolerance
    both = grounded[1:] & grounded[:-1]
    steps = np.linalg.norm(np.diff(joints[:, feet][..., [0, 2]], axis=0), axis=-1)
    return float(steps[both].mean()) if both.any() else 0.0


def foot_acceleration(joints, reference=None) -> float:
    """The largest acceleration of an ankle or toe (metres per frame², second difference of its
    position): a pop the eye catches even where the mean skating is low. With ``reference`` (the
    same motion before a correction): the largest increase over the reference's acceleration at the
    same frame and joint, i.e. what the correction added. 0.0 below 3 frames."""
    joints = _check(joints)
    if len(joints) < 3:
        return 0.0

    def per_frame(motion: np.ndarray) -> np.ndarray:            # [T-2, 4]
        return np.linalg.norm(np.diff(motion[:, list(FOOT_CONTACT_JOINTS)], n=2, axis=0), axis=-1)
    acceleration = per_frame(joints)
    if reference is not None:
        reference = _check(reference)
        if reference.shape != joints.shape:
            raise InputError(f"reference has shape {reference.shape}, joints {joints.shape}")
        acceleration = acceleration - per_frame(reference)
    return float(max(acceleration.max(), 0.0))
