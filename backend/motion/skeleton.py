"""Skeleton tables: the HumanML3D 22-joint skeleton and the SMPL 24-joint tree (no torch, no bpy).

HumanML3D joint i is SMPL body joint i for i = 0..21; SMPL adds the two hands (22, 23).
Coordinates are y-up, metres, the body facing +z at rest, its left side at +x.
"""
from __future__ import annotations

import numpy as np

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21], dtype=np.int64)

HML_NUM_JOINTS = 22
HML_JOINT_NAMES = SMPL_JOINT_NAMES[:HML_NUM_JOINTS]
HML_PARENTS = SMPL_PARENTS[:HML_NUM_JOINTS]
# Chains walked by HumanML3D's inverse/forward kinematics (right leg, left leg, spine, right arm, left arm).
HML_KINEMATIC_CHAIN = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15),
                       (9, 14, 17, 19, 21), (9, 13, 16, 18, 20))
# Unit rest directions of each bone (child joint index), HumanML3D's ``t2m_raw_offsets``.
HML_RAW_OFFSETS = np.array([
    [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, -1, 0],
    [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1],
    [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0]], dtype=np.float64)
# Bone lengths (metres) of HumanML3D's target skeleton for joints 1..21, measured on the dataset
# sample 012314 (constant to 1e-6 across its frames; every HumanML3D clip is retargeted to them).
HML_TARGET_BONE_LENGTHS = np.array([
    0.0, 0.10307, 0.10988, 0.13157, 0.39362, 0.39019, 0.14319, 0.43243, 0.42564, 0.05736, 0.14338,
    0.14942, 0.21936, 0.13749, 0.14338, 0.10304, 0.13161, 0.12298, 0.25684, 0.26309, 0.26601,
    0.26988])

# Joint index groups used by feature extraction and editing.
LEFT_FOOT_JOINTS = (7, 10)
RIGHT_FOOT_JOINTS = (8, 11)
FACE_JOINTS = (2, 1, 17, 16)  # r_hip, l_hip, r_shoulder, l_shoulder (HumanML3D's face_joint_indx)
LOWER_BODY_JOINTS = (0, 1, 2, 4, 5, 7, 8, 10, 11)
UPPER_BODY_JOINTS = tuple(j for j in range(HML_NUM_JOINTS) if j not in LOWER_BODY_JOINTS)

# Layout of the 263-d HumanML3D feature vector.
FEATURE_DIM = 263
ROOT_ROT_VEL = slice(0, 1)
ROOT_LIN_VEL = slice(1, 3)
ROOT_HEIGHT = slice(3, 4)
RIC = slice(4, 67)          # joints 1..21 positions in the root frame, 3 each
ROT6D = slice(67, 193)      # joints 1..21 local rotations, 6 each
LOCAL_VEL = slice(193, 259)  # joints 0..21 velocities in the root frame, 3 each
FOOT_CONTACT = slice(259, 263)
FOOT_CONTACT_JOINTS = LEFT_FOOT_JOINTS + RIGHT_FOOT_JOINTS   # the joint of each FOOT_CONTACT column


def hml_target_offsets() -> np.ndarray:
    """[22, 3] rest offsets of the HumanML3D target skeleton (raw directions x bone lengths)."""
    return HML_RAW_OFFSETS * HML_TARGET_BONE_LENGTHS[:, None]


def hml_rest_pose(root_height: float | None = None) -> np.ndarray:
    """[22, 3] joint positions of the target skeleton in its (arms-down) rest pose, feet on y = 0."""
    offsets = hml_target_offsets()
    joints = np.zeros((HML_NUM_JOINTS, 3))
    for j in range(1, HML_NUM_JOINTS):
        joints[j] = joints[HML_PARENTS[j]] + offsets[j]
    joints[:, 1] -= joints[:, 1].min() if root_height is None else (joints[0, 1] - root_height)
    return joints


def feature_mask_for_joints(joints: tuple[int, ...], include_root: bool) -> np.ndarray:
    """Boolean [263] mask of the feature entries that describe ``joints``.

    With include_root, the 4 root entries and the 4 foot contacts count as part of the group:
    this is exactly HumanML3D/MDM's lower-body mask for LOWER_BODY_JOINTS (107 entries).
    """
    mask = np.zeros(FEATURE_DIM, dtype=bool)
    if include_root:
        mask[0:4] = True
        mask[FOOT_CONTACT] = True
    for j in joints:
        if j >= 1:
            mask[RIC.start + 3 * (j - 1): RIC.start + 3 * j] = True
            mask[ROT6D.start + 6 * (j - 1): ROT6D.start + 6 * j] = True
        mask[LOCAL_VEL.start + 3 * j: LOCAL_VEL.start + 3 * (j + 1)] = True
    return mask


def lower_body_feature_mask() -> np.ndarray:
    """MDM's ``HML_LOWER_BODY_MASK``: True on the 107 entries that upper-body editing keeps."""
    return feature_mask_for_joints(LOWER_BODY_JOINTS, include_root=True)


def facing_direction(joints: np.ndarray) -> np.ndarray:
    """Horizontal unit direction [..., 3] the body faces, from hips and shoulders.

    joints: [..., 22, 3] y-up. Uses the across vector (right minus left hip + right minus left
    shoulder) and up x across, the same construction HumanML3D uses to canonicalise clips.
    """
    joints = np.asarray(joints, dtype=np.float64)
    across = (joints[..., 2, :] - joints[..., 1, :]) + (joints[..., 17, :] - joints[..., 16, :])
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    forward[..., 1] = 0.0
    return forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-12)


def heading_yaw(direction: np.ndarray) -> np.ndarray:
    """Yaw (rad, about +y) of horizontal directions [..., 3]: 0 facing +z, + towards +x (a left turn)."""
    direction = np.asarray(direction, dtype=np.float64)
    return np.arctan2(direction[..., 0], direction[..., 2])
