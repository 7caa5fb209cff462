"""SMPL skeleton forward kinematics without the mesh (numpy only).

Posed joints are rigid transforms of the rest joints: pose blend shapes never move joints, so a
24 x 3 rest-joint array and the parent table are all that fitting and keying need.
"""
from __future__ import annotations

import numpy as np

from . import quaternion as Q
from .skeleton import SMPL_PARENTS


def forward_kinematics(local_rot: np.ndarray, trans: np.ndarray, rest_joints: np.ndarray,
                       parents: np.ndarray = SMPL_PARENTS) -> tuple[np.ndarray, np.ndarray]:
    """Pose the skeleton.

    local_rot: [..., J, 3, 3] parent-relative rotations (joint 0 = global orientation).
    trans: [..., 3] smplx translation (posed pelvis = rest_joints[0] + trans).
    Returns (joints [..., J, 3], global_rot [..., J, 3, 3]).
    """
    num = len(parents)
    offsets = rest_joints - np.where(parents[:, None] >= 0, rest_joints[np.maximum(parents, 0)], 0.0)
    global_rot = np.empty_like(local_rot)
    joints = np.empty(local_rot.shape[:-2] + (3,), dtype=np.result_type(local_rot, rest_joints))
    global_rot[..., 0, :, :] = local_rot[..., 0, :, :]
    joints[..., 0, :] = rest_joints[0] + trans
    for j in range(1, num):
        p = parents[j]
        global_rot[..., j, :, :] = global_rot[..., p, :, :] @ local_rot[..., j, :, :]
        joints[..., j, :] = joints[..., p, :] + np.einsum("...ij,j->...i", global_rot[..., p, :, :], offsets[j])
    return joints, global_rot


def posed_joints(poses: np.ndarray, trans: np.ndarray, rest_joints: np.ndarray,
                 parents: np.ndarray = SMPL_PARENTS) -> np.ndarray:
    """Axis-angle poses [..., J, 3] + trans [..., 3] -> posed joints [..., J, 3]."""
    return forward_kinematics(Q.axis_angle_to_matrix(poses), trans, rest_joints, parents)[0]
