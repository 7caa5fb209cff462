"""The synthetic body: HumanML3D's 22-joint skeleton at the target bone lengths, posed per frame
from a few intuitive channels (a ``Pose``) by forward kinematics for the trunk and analytic
two-bone IK for legs (to pinned ankle targets) and arms (to wrist targets).

Frame: y up, metres, rest facing +z, the body's left at +x. Yaw rotates about +y, so the heading
of yaw a is (sin a, 0, cos a) and a positive yaw change is a turn to the left.
Every bone keeps its target length exactly: FK bones by construction, IK bones by the law of
cosines, the foot bone as a unit direction times its length.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ...motion import quaternion as Q
from ...motion.skeleton import HML_NUM_JOINTS, HML_PARENTS, HML_TARGET_BONE_LENGTHS

FPS = 20.0
GRAVITY = 9.81

# Anatomical rest directions of each bone (parent -> joint), left side; the right side mirrors x.
# Only the trunk, collar and foot directions matter (limbs are placed by IK).
_LEFT_REST_DIRECTIONS = {
    1: (0.55, -0.82, -0.12),   # pelvis -> left hip
    3: (0.0, 0.98, -0.20),     # pelvis -> spine1
    4: (0.05, -1.0, 0.01),     # hip -> knee
    6: (0.0, 0.985, 0.17),     # spine1 -> spine2
    7: (0.0, -1.0, -0.05),     # knee -> ankle
    9: (0.0, 1.0, 0.05),       # spine2 -> spine3
    10: (0.10, -0.45, 0.88),   # ankle -> foot (ball of the foot)
    12: (0.0, 0.995, -0.10),   # spine3 -> neck
    13: (0.50, 0.84, -0.17),   # spine3 -> left collar
    15: (0.0, 0.90, 0.43),     # neck -> head
    16: (0.93, 0.33, -0.15),   # collar -> shoulder
    18: (0.15, -0.99, -0.02),  # shoulder -> elbow
    20: (0.05, -0.99, 0.10),   # elbow -> wrist
}
_MIRROR = {2: 1, 5: 4, 8: 7, 11: 10, 14: 13, 17: 16, 19: 18, 21: 20}


def _rest_offsets() -> np.ndarray:
    dirs = np.zeros((HML_NUM_JOINTS, 3))
    for j, d in _LEFT_REST_DIRECTIONS.items():
        dirs[j] = d
    for j, src in _MIRROR.items():
        dirs[j] = dirs[src] * (-1.0, 1.0, 1.0)
    dirs[1:] /= np.linalg.norm(dirs[1:], axis=-1, keepdims=True)
    return dirs * HML_TARGET_BONE_LENGTHS[:, None]


REST_OFFSETS = _rest_offsets()  # [22, 3]

# Per-side joint indices (index 0 = left, 1 = right) and the x sign of "outward".
HIP, KNEE, ANKLE, FOOT = (1, 2), (4, 5), (7, 8), (10, 11)
COLLAR, SHOULDER, ELBOW, WRIST = (13, 14), (16, 17), (18, 19), (20, 21)
OUTWARD = np.array([1.0, -1.0])
_L = HML_TARGET_BONE_LENGTHS
THIGH, SHIN, FOOT_LEN = _L[list(KNEE)], _L[list(ANKLE)], _L[list(FOOT)]        # [2] each
UPPER_ARM, FOREARM = _L[list(ELBOW)], _L[list(WRIST)]
LEG_LEN, ARM_LEN = THIGH + SHIN, UPPER_ARM + FOREARM
FLAT_PITCH = np.radians(27.0)            # foot bone below horizontal when the sole is flat
ANKLE_HEIGHT = FOOT_LEN * np.sin(FLAT_PITCH)  # [2] ankle above the floor with a flat foot
STANCE_HALF_WIDTH = 0.10                 # default lateral offset of each ankle from the root


@dataclass
class Pose:
    """Per-frame channels [T, ...] that fully determine the 22 joints (angles in radians).

    Arm targets live in the *torso-yaw frame* (heading yaw + trunk twist, no pitch/roll): arms
    swing, hang and reach relative to gravity and to where the chest points.
    """
    root: np.ndarray          # [T, 3] pelvis position (world)
    yaw: np.ndarray           # [T] pelvis heading
    pelvis_pitch: np.ndarray  # [T] + tilts the pelvis forward
    pelvis_roll: np.ndarray   # [T] + lifts the right hip (leans the pelvis top to the left)
    spine: np.ndarray         # [T, 3] trunk (pitch fwd, roll left, twist left) spread over 3 joints
    neck: np.ndarray          # [T, 2] head (pitch down, yaw left)
    ankle: np.ndarray         # [T, 2, 3] ankle targets (world), left/right
    foot_yaw: np.ndarray      # [T, 2] direction the toes point
    foot_pitch: np.ndarray    # [T, 2] foot bone below horizontal (FLAT_PITCH when flat)
    wrist: np.ndarray         # [T, 2, 3] wrist target minus shoulder, torso-yaw frame
    elbow_pole: np.ndarray    # [T, 2, 3] where the elbow should point, torso-yaw frame
    toe_contact: np.ndarray   # [T, 2] bool: the ball of the foot is planted (labels for tests)
    ankle_contact: np.ndarray  # [T, 2] bool: the ankle is planted
    airborne: np.ndarray      # [T] bool: ballistic flight; the root is not height-limited here
    reach: np.ndarray         # [T] max hip-ankle distance as a fraction of leg length

    @property
    def frames(self) -> int:
        return len(self.root)

    @classmethod
    def empty(cls, n: int) -> "Pose":
        return cls(root=np.zeros((n, 3)), yaw=np.zeros(n), pelvis_pitch=np.zeros(n),
                   pelvis_roll=np.zeros(n), spine=np.zeros((n, 3)), neck=np.zeros((n, 2)),
                   ankle=np.zeros((n, 2, 3)), foot_yaw=np.zeros((n, 2)),
                   foot_pitch=np.full((n, 2), FLAT_PITCH), wrist=np.zeros((n, 2, 3)),
                   elbow_pole=np.zeros((n, 2, 3)), toe_contact=np.zeros((n, 2), bool),
                   ankle_contact=np.zeros((n, 2), bool), airborne=np.zeros(n, bool),
                   reach=np.full(n, 0.985))

    def slice(self, start: int, stop: int) -> "Pose":
        return Pose(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    @staticmethod
    def concat(parts: list["Pose"]) -> "Pose":
        return Pose(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                       for f in fields(Pose)})


# ------------------------------------------------------------------------------------------
# rotations and IK
# ------------------------------------------------------------------------------------------
def axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    """[..., 3, 3] rotation by ``angle`` about coordinate axis 0/1/2 (x/y/z)."""
    angle = np.asarray(angle, dtype=np.float64)
    aa = np.zeros(angle.shape + (3,))
    aa[..., axis] = angle
    return Q.axis_angle_to_matrix(aa)


def heading(yaw: np.ndarray) -> np.ndarray:
    """Unit horizontal direction [..., 3] of a yaw angle."""
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], axis=-1)


def _apply(rot: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("...ij,...j->...i", rot, v)


def two_bone_ik(root: np.ndarray, target: np.ndarray, l1, l2, pole: np.ndarray,
                max_reach: float = 0.9995) -> tuple[np.ndarray, np.ndarray]:
    """Place the middle joint and the end of a two-bone chain. Returns (mid, end) [..., 3].

    ``end`` reaches ``target`` unless it is out of range (then it stops on the line towards it);
    ``mid`` bends towards ``pole`` (a direction). Bone lengths are exact.
    """
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    l1 = np.asarray(l1, dtype=np.float64)[..., None]
    l2 = np.asarray(l2, dtype=np.float64)[..., None]
    dist = np.clip(dist, np.abs(l1 - l2) + 1e-4, (l1 + l2) * max_reach)
    along = (l1 * l1 - l2 * l2 + dist * dist) / (2.0 * dist)
    height = np.sqrt(np.maximum(l1 * l1 - along * along, 0.0))
    p = pole - (pole * u).sum(-1, keepdims=True) * u
    p_norm = np.linalg.norm(p, axis=-1, keepdims=True)
    # Degenerate pole (parallel to the chain): fall back to any perpendicular direction.
    fallback = np.cross(u, np.array([1.0, 0.0, 0.0]))
    fallback /= np.maximum(np.linalg.norm(fallback, axis=-1, keepdims=True), 1e-12)
    p = np.where(p_norm > 1e-6, p / np.maximum(p_norm, 1e-12), fallback)
    return root + along * u + height * p, root + dist * u


def arm_direction(flex, abduct, side: int) -> np.ndarray:
    """Unit arm direction in the torso-yaw frame: hanging (0, 0), flex=pi/2 forward, abduct=pi/2 out."""
    flex, abduct = np.broadcast_arrays(np.asarray(flex, np.float64), np.asarray(abduct, np.float64))
    return np.stack([OUTWARD[side] * np.sin(abduct), -np.cos(abduct) * np.cos(flex),
                     np.cos(abduct) * np.sin(flex)], axis=-1)


# ------------------------------------------------------------------------------------------
# pose -> joints
# ------------------------------------------------------------------------------------------
def pelvis_rotation(pose: Pose) -> np.ndarray:
    return (axis_rotation(1, pose.yaw) @ axis_rotation(0, pose.pelvis_pitch)
            @ axis_rotation(2, -pose.pelvis_roll))


def hip_offsets(pose: Pose) -> np.ndarray:
    """[T, 2, 3] hip joints relative to the pelvis (depends on orientation only)."""
    rot = pelvis_rotation(pose)
    return np.stack([_apply(rot, REST_OFFSETS[HIP[s]]) for s in (0, 1)], axis=1)


LOW_FOOT = 0.15  # a swinging ankle target below this height (m) is about to land or just lifted


def max_root_height(pose: Pose, grounded_only: bool = False) -> np.ndarray:
    """[T] highest root at which the legs reach their ankle targets within ``pose.reach``.

    With ``grounded_only`` only feet that are planted or close to the floor count (inf if none):
    a foot high in the air (a kick) may fall short of its target instead of pulling the body down.
    """
    hips = hip_offsets(pose) + pose.root[:, None, :]
    dxz = np.linalg.norm((pose.ankle - hips)[..., [0, 2]], axis=-1)
    reach = pose.reach[:, None] * LEG_LEN[None, :]
    vertical = np.sqrt(np.maximum(reach ** 2 - dxz ** 2, 1e-6))
    heights = pose.ankle[..., 1] + vertical - (hips[..., 1] - pose.root[:, None, 1])
    if grounded_only:
        grounded = pose.toe_contact | pose.ankle_contact | (pose.ankle[..., 1] < LOW_FOOT)
        heights = np.where(grounded, heights, np.inf)
    return heights.min(axis=1)


def limit_root_height(pose: Pose) -> None:
    """Lower the root wherever a grounded leg could not reach its ankle target (in place).

    Feet high in the air may miss their targets (the IK then stretches towards them). The excess
    over ``max_root_height`` is dilated and then smoothed with a kernel no wider than the
    dilation, so the corrected root never exceeds the limit yet stays smooth. Airborne frames
    (ballistic flight) are left alone.
    """
    excess = np.where(pose.airborne, 0.0, np.maximum(pose.root[:, 1] - max_root_height(pose, grounded_only=True), 0.0))
    if not excess.any():
        return
    radius = 2
    padded = np.pad(excess, radius, mode="edge")
    dilated = np.max(np.stack([padded[k:k + len(excess)] for k in range(2 * radius + 1)]), axis=0)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / 1.0) ** 2)
    taps /= taps.sum()
    padded = np.pad(dilated, radius, mode="edge")
    smooth = sum(w * padded[k:k + len(excess)] for k, w in enumerate(taps))
    pose.root[:, 1] -= np.where(pose.airborne, 0.0, smooth)


def pose_to_joints(pose: Pose) -> np.ndarray:
    """Forward kinematics + IK: Pose -> joints [T, 22, 3] (float64)."""
    n = pose.frames
    joints = np.zeros((n, HML_NUM_JOINTS, 3))
    off = REST_OFFSETS
    r_pelvis = pelvis_rotation(pose)
    joints[:, 0] = pose.root

    # Trunk: pitch/roll/twist spread over spine1..3 (weights sum to 1).
    rot = r_pelvis
    parent_rot = {0: r_pelvis}
    for j, w in ((3, 0.3), (6, 0.35), (9, 0.35)):
        joints[:, j] = joints[:, HML_PARENTS[j]] + _apply(rot, off[j])
        local = (axis_rotation(1, w * pose.spine[:, 2]) @ axis_rotation(0, w * pose.spine[:, 0])
                 @ axis_rotation(2, -w * pose.spine[:, 1]))
        rot = rot @ local
        parent_rot[j] = rot
    r_chest = rot
    joints[:, 12] = joints[:, 9] + _apply(r_chest, off[12])
    r_neck = r_chest @ axis_rotation(1, pose.neck[:, 1]) @ axis_rotation(0, pose.neck[:, 0])
    joints[:, 15] = joints[:, 12] + _apply(r_neck, off[15])

    # Arms: collars shrug up when the wrist target is raised, then two-bone IK to the target.
    r_torso_yaw = axis_rotation(1, pose.yaw + pose.spine[:, 2])
    for s in (0, 1):
        joints[:, COLLAR[s]] = joints[:, 9] + _apply(r_chest, off[COLLAR[s]])
        up = pose.wrist[:, s, 1] / np.maximum(np.linalg.norm(pose.wrist[:, s], axis=-1), 1e-9)
        shrug = 0.3 * np.clip(up + 0.2, 0.0, 1.2)
        r_collar = r_chest @ axis_rotation(2, OUTWARD[s] * shrug)
        joints[:, SHOULDER[s]] = joints[:, COLLAR[s]] + _apply(r_collar, off[SHOULDER[s]])
        target = joints[:, SHOULDER[s]] + _apply(r_torso_yaw, pose.wrist[:, s])
        pole = _apply(r_torso_yaw, pose.elbow_pole[:, s])
        joints[:, ELBOW[s]], joints[:, WRIST[s]] = two_bone_ik(
            joints[:, SHOULDER[s]], target, UPPER_ARM[s], FOREARM[s], pole, max_reach=0.999)

    # Legs: hips from the pelvis, knees bend towards the toes (blended with the pelvis heading).
    for s in (0, 1):
        joints[:, HIP[s]] = pose.root + _apply(r_pelvis, off[HIP[s]])
        pole = (heading(pose.foot_yaw[:, s]) + heading(pose.yaw)
                + 0.15 * OUTWARD[s] * _apply(axis_rotation(1, pose.yaw), np.array([1.0, 0.0, 0.0])))
        joints[:, KNEE[s]], joints[:, ANKLE[s]] = two_bone_ik(
            joints[:, HIP[s]], pose.ankle[:, s], THIGH[s], SHIN[s], pole)
        fp = pose.foot_pitch[:, s, None]
        foot_dir = heading(pose.foot_yaw[:, s]) * np.cos(fp) + np.array([0.0, -1.0, 0.0]) * np.sin(fp)
        joints[:, FOOT[s]] = joints[:, ANKLE[s]] + FOOT_LEN[s] * foot_dir
    return joints


def toe_from_ankle(ankle: np.ndarray, foot_yaw: np.ndarray, foot_pitch: np.ndarray, side: int) -> np.ndarray:
    """Ball-of-foot position for an ankle position and foot orientation."""
    fp = np.asarray(foot_pitch)[..., None]
    return ankle + FOOT_LEN[side] * (heading(foot_yaw) * np.cos(fp) + np.array([0.0, -1.0, 0.0]) * np.sin(fp))


def ankle_from_toe(toe: np.ndarray, foot_yaw: np.ndarray, foot_pitch: np.ndarray, side: int) -> np.ndarray:
    """Inverse of toe_from_ankle: where the ankle is when the foot pivots about a planted toe."""
    fp = np.asarray(foot_pitch)[..., None]
    return toe - FOOT_LEN[side] * (heading(foot_yaw) * np.cos(fp) + np.array([0.0, -1.0, 0.0]) * np.sin(fp))
