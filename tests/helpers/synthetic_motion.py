"""Random but plausible SMPL motions for fitting tests: smooth, knees and elbows as true hinges."""
from __future__ import annotations

import numpy as np

from backend.motion import quaternion as Q
from backend.motion.resample import sample_linear, sample_slerp

# per-joint spread (radians) of the random key poses; knees/elbows/pelvis are handled apart
_SPREAD = {3: 0.15, 6: 0.15, 9: 0.15, 12: 0.25, 15: 0.2, 13: 0.1, 14: 0.1, 1: 0.5, 2: 0.5,
           16: 0.6, 17: 0.6, 7: 0.25, 8: 0.25, 10: 0.2, 11: 0.2, 20: 0.3, 21: 0.3, 22: 0.2, 23: 0.2}
HINGES = {4: (1.0, 0.0, 0.0), 5: (1.0, 0.0, 0.0), 18: (0.0, -1.0, 0.0), 19: (0.0, 1.0, 0.0)}


def random_motion(rng: np.random.Generator, frames: int = 60, keys: int = 7,
                  min_bend: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(poses [T, 24, 3] axis-angle, trans [T, 3]) slerped between random key poses."""
    key_aa = np.zeros((keys, 24, 3))
    for j, spread in _SPREAD.items():
        key_aa[:, j] = rng.normal(0, spread, (keys, 3))
    for j, axis in HINGES.items():
        key_aa[:, j] = np.outer(rng.uniform(min_bend, 2.0, keys), axis)
    yaw = rng.uniform(-np.pi, np.pi) + np.cumsum(rng.normal(0, 0.6, keys))
    tilt = rng.normal(0, 0.15, (keys, 3))
    key_q = Q.axis_angle_to_quat(key_aa)
    key_q[:, 0] = Q.qmul(Q.rotation_about_y(yaw), Q.axis_angle_to_quat(tilt))
    key_q = Q.quat_continuity(key_q, axis=0)
    pos = np.linspace(0, keys - 1, frames)
    poses = Q.quat_to_axis_angle(sample_slerp(key_q, pos))
    key_trans = np.cumsum(rng.normal(0, 0.3, (keys, 3)), 0) * [1, 0.1, 1] + [0, 0.9, 0]
    return poses, sample_linear(key_trans, pos)
