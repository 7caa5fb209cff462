"""The built-in rest skeleton: used for fitting and for the armature when the user has no SMPL file.

What it is: the SMPL joint tree in SMPL's T-pose (y up, facing +z, arms out along +-x), with
- bone *directions* from the SMPL-neutral T-pose facts (smplify_facts.md section 4.5: the public
  MoMask template offsets), made left/right symmetric and rounded to two decimals: a hand-written
  description of "the SMPL T-pose", not data copied from a licensed file;
- bone *lengths* of the HumanML3D target skeleton (``HML_TARGET_BONE_LENGTHS``, MIT), which every
  HumanML3D clip and therefore every MDM output is retargeted to;
- hands (22, 23), which MDM does not produce, continuing the forearm by a third of its length.
Why: with MDM's own bone lengths the fit is exact up to MDM's small bone-length noise (an SMPL-
neutral body with beta = 0 has legs ~5 cm shorter, so its feet float or its knees bend), and with
SMPL's T-pose directions the local rotations mean the same as SMPL pose parameters, so they key
onto any SMPL-T-posed rig. The skeleton stands on y = 0 (lowest rest joint) with the pelvis at
x = z = 0, so the armature's rest pose stands on the floor.
"""
from __future__ import annotations

import numpy as np

from ..motion.skeleton import HML_TARGET_BONE_LENGTHS, SMPL_PARENTS

HAND_LENGTH_RATIO = 1.0 / 3.0  # hand joint = wrist + this x forearm, along the forearm

# Unit direction of each bone, indexed by its child joint, left side; the right side mirrors x.
_LEFT_DIRECTIONS = {
    1: (0.60, -0.80, -0.05),   # left_hip       (from pelvis)
    3: (0.00, 0.97, -0.24),    # spine1
    4: (0.10, -0.99, -0.02),   # left_knee
    6: (0.00, 1.00, 0.01),     # spine2
    7: (-0.04, -0.99, -0.11),  # left_ankle
    9: (0.00, 0.90, 0.43),     # spine3
    10: (0.19, -0.39, 0.90),   # left_foot (toes forward)
    12: (0.00, 0.98, -0.20),   # neck
    13: (0.54, 0.81, -0.24),   # left_collar
    15: (0.00, 0.78, 0.62),    # head
    16: (0.94, 0.32, -0.09),   # left_shoulder
    18: (0.99, -0.05, -0.09),  # left_elbow
    20: (1.00, 0.03, -0.01),   # left_wrist
}
_MIRROR = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21}


def builtin_bone_directions() -> np.ndarray:
    """[24, 3] unit rest direction of the bone ending at each joint (row 0 unused, zero)."""
    dirs = np.zeros((24, 3))
    for j, d in _LEFT_DIRECTIONS.items():
        dirs[j] = d
        if j in _MIRROR:
            dirs[_MIRROR[j]] = (-d[0], d[1], d[2])
    dirs[22], dirs[23] = dirs[20], dirs[21]  # hands continue the forearm
    dirs[1:] /= np.linalg.norm(dirs[1:], axis=-1, keepdims=True)
    return dirs


def rest_joints_from_bones(directions: np.ndarray, lengths: np.ndarray,
                           parents: np.ndarray = SMPL_PARENTS) -> np.ndarray:
    """Chain bones (unit directions [J, 3] x lengths [J]) into rest joints [J, 3], lowest on y = 0."""
    joints = np.zeros((len(parents), 3))
    for j in range(1, len(parents)):
        joints[j] = joints[parents[j]] + directions[j] * lengths[j]
    joints[:, 1] -= joints[:, 1].min()
    return joints


def builtin_bone_lengths() -> np.ndarray:
    """[24] bone lengths (m): HumanML3D's target skeleton, hands a third of the forearm."""
    lengths = np.zeros(24)
    lengths[:22] = HML_TARGET_BONE_LENGTHS
    lengths[22:] = HAND_LENGTH_RATIO * lengths[20:22]
    return lengths


def builtin_rest_joints() -> np.ndarray:
    """[24, 3] rest joints of the built-in skeleton (metres, y up, T-pose, feet on y = 0)."""
    return rest_joints_from_bones(builtin_bone_directions(), builtin_bone_lengths())
