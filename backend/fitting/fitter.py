"""Joints -> SMPL parameters: analytic IK, Gauss-Newton refinement, floor fix, quaternion continuity.

``fit_joints`` takes HumanML3D-frame joints [T, 22, 3] (or a batch [K, T, 22, 3]) and returns a
``FitResult``: ``ik.solve_ik`` (closed form), then ``refine.refine`` (Gauss-Newton on the skeleton
only: one iteration when the rest skeleton has the targets' bone lengths - a near-zero-residual
problem that Gauss-Newton solves in one step - two when they differ, e.g. SMPL with beta = 0),
then the floor fix and quaternion continuity. 196 frames take ~20 ms (built-in skeleton) or
~30 ms (SMPL, beta = 0) on one core of the dev machine at its least loaded (bench/fitting.py).
numpy, not torch: the work is tiny 3x3 algebra on <= 196 frames, where per-operation overhead
dominates; numpy with the frame axis last beat torch's batched matmul in our measurements, needs
no GPU, and keeps the CLI and the fitter free of torch's ~1 s import.
The rest skeleton is, in order of preference, the one of the user's SMPL file (beta = 0, or betas
fitted to the bone lengths - one beta vector for the whole batch: MDM outputs share one skeleton),
an explicit ``rest_joints`` array, or the built-in skeleton (``rest_skeleton.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..motion import quaternion as Q
from ..motion.skeleton import HML_NUM_JOINTS, HML_TARGET_BONE_LENGTHS, SMPL_PARENTS
from ..motion.smpl_skeleton import forward_kinematics
from .betas import fit_betas_to_bone_lengths, target_bone_lengths
from .ik import solve_ik
from .refine import RefineWeights, refine
from .rest_skeleton import builtin_rest_joints
from .smpl_file import SMPLModel

FOOT_JOINTS = np.array([7, 8, 10, 11])  # ankles and toes: the joints that touch the floor


@dataclass(frozen=True)
class FitConfig:
    iterations: int | None = None  # Gauss-Newton iterations after the analytic solution (0 = IK
    #                                only); None: 1 if the bone lengths match within 3 %, else 2
    pos_weight: float = 1.0       # per squared metre of joint position error
    foot_weight: float = 2.0      # ankles and toes, so contacts stay put
    dir_weight: float = 0.003     # per squared unit of bone-direction error (a 5.5 cm lever)
    prior: float = 1e-4           # pull towards the analytic IK rotations, per squared radian
    smooth: float = 2e-3          # temporal second difference of rotations, per squared radian
    hinge: float = 3e-2           # knee/elbow rotation off the hinge axis, per squared radian
    damping: float = 1e-6
    floor_tolerance: float = 0.01  # lowest foot joint may sit this far off the target's (m)

    def refine_weights(self) -> RefineWeights:
        pos = np.full(HML_NUM_JOINTS, self.pos_weight)
        pos[FOOT_JOINTS] = self.foot_weight
        direction = np.full(HML_NUM_JOINTS, self.dir_weight)
        direction[0] = 0.0
        return RefineWeights(pos=pos, dir=direction, prior=self.prior, smooth=self.smooth,
                             hinge=self.hinge, damping=self.damping)


@dataclass
class FitResult:
    poses: np.ndarray            # [..., T, 24, 3] axis-angle, parent-relative; their quaternions
    #                              (axis_angle_to_quat) are hemisphere-continuous along T
    trans: np.ndarray            # [..., T, 3]  posed pelvis = rest_joints[0] + trans
    betas: np.ndarray            # [B] (zeros when no SMPL file / not fitted; B = 0 without a file)
    joints_fitted: np.ndarray    # [..., T, 24, 3] FK of poses/trans on rest_joints
    per_frame_error: np.ndarray  # [..., T] mean distance over the 22 observed joints (m)
    rest_joints: np.ndarray      # [24, 3] the rest skeleton used (betas applied)


def _check_joints(joints) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim not in (3, 4) or arr.shape[-2:] != (HML_NUM_JOINTS, 3) or arr.shape[-3] < 1:
        raise InputError(f"joints must have shape [T, 22, 3] or [K, T, 22, 3] (HumanML3D joints in "
                         f"metres), got {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise InputError("joints contain NaN or infinite values")
    bones = np.linalg.norm(arr[..., 1:, :] - arr[..., SMPL_PARENTS[1:HML_NUM_JOINTS], :], axis=-1)
    scale = np.median(bones) / np.median(HML_TARGET_BONE_LENGTHS[1:])
    if not 0.2 < scale < 5.0:
        raise InputError(f"joints do not look like a human skeleton in metres: bones are {scale:.3g} times "
                         f"HumanML3D's (convert centimetres to metres; joint order must be HumanML3D's)")
    return arr


def _neighbours(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """prev/next frame index within each clip and the interior mask, for flattened clips."""
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    ends = starts + np.repeat(lengths, lengths) - 1
    idx = np.arange(lengths.sum())
    prev_idx, next_idx = np.maximum(idx - 1, starts), np.minimum(idx + 1, ends)
    return prev_idx, next_idx, (idx > starts) & (idx < ends)


def fix_floor(joints: np.ndarray, targets: np.ndarray, tolerance: float) -> np.ndarray:
    """[N] vertical shift putting the lowest fitted foot joint within ``tolerance`` of the target's."""
    gap = joints[:, FOOT_JOINTS, 1].min(1) - targets[:, FOOT_JOINTS, 1].min(1)
    return -np.sign(gap) * np.maximum(np.abs(gap) - tolerance, 0.0)


def bone_length_mismatch(targets: np.ndarray, rest_joints: np.ndarray) -> float:
    """Largest relative difference between the targets' median bone lengths and the skeleton's."""
    bones = np.arange(1, HML_NUM_JOINTS)
    rest = np.linalg.norm(rest_joints[bones] - rest_joints[SMPL_PARENTS[bones]], axis=-1)
    return float(np.max(np.abs(target_bone_lengths(targets) / rest - 1.0)))


def fit_frames(targets: np.ndarray, lengths: np.ndarray, rest_joints: np.ndarray,
               config: FitConfig = FitConfig()):
    """Fit flattened clips: targets [N, 22, 3] with N = sum(lengths).

    Returns (local rotations [N, 24, 3, 3], quaternions [N, 24, 4] continuous within each clip,
    trans [N, 3], joints [N, 24, 3]).
    """
    local, trans = solve_ik(targets, rest_joints)
    iterations = config.iterations
    if iterations is None:
        iterations = 1 if bone_length_mismatch(targets, rest_joints) < 0.03 else 2
    if iterations > 0:
        prev_idx, next_idx, interior = _neighbours(lengths)
        local, trans, joints = refine(local, trans, targets, rest_joints, config.refine_weights(),
                                      iterations, prev_idx, next_idx, interior)
    else:
        joints, _ = forward_kinematics(local, trans, rest_joints)
    shift = fix_floor(joints, targets, config.floor_tolerance)
    trans[:, 1] += shift
    joints[..., 1] += shift[:, None]
    quats = Q.matrix_to_quat(local)
    start = 0
    for n in lengths:
        quats[start:start + n] = Q.quat_continuity(quats[start:start + n], axis=0)
        start += n
    return local, quats, trans, joints


def fit_joints(joints, lengths=None, *, smpl: SMPLModel | None = None, rest_joints=None,
               fit_betas: bool = False, config: FitConfig = FitConfig()) -> FitResult:
    """Fit SMPL poses to HumanML3D joints [T, 22, 3] or [K, T, 22, 3].

    lengths [K]: valid frames per clip (default all); frames past a clip's end repeat its last fit.
    smpl: the user's model (its rest joints, and betas with ``fit_betas``); rest_joints [24, 3]:
    an explicit skeleton instead; neither: the built-in skeleton.
    """
    arr = _check_joints(joints)
    batched = arr.ndim == 4
    clips = arr if batched else arr[None]
    k, t = clips.shape[:2]
    lengths = np.full(k, t, np.int64) if lengths is None else np.asarray(lengths, np.int64).reshape(-1)
    if lengths.shape != (k,) or lengths.min() < 1 or lengths.max() > t:
        raise InputError(f"lengths must hold {k} frame counts between 1 and {t}, got {lengths.tolist()}")
    valid = np.arange(t)[None, :] < lengths[:, None]                      # [K, T]
    targets = clips[valid]                                                 # [N, 22, 3]

    betas = np.zeros(0)
    if smpl is not None:
        betas = fit_betas_to_bone_lengths(smpl, targets) if fit_betas else np.zeros(smpl.num_betas)
        rest = smpl.rest_joints(betas)
    elif fit_betas:
        raise InputError("fitting betas needs an SMPL model file (--smpl PATH)")
    else:
        rest = builtin_rest_joints() if rest_joints is None else np.asarray(rest_joints, np.float64)
    if rest.shape != (len(SMPL_PARENTS), 3):
        raise InputError(f"rest_joints must have shape [24, 3], got {list(rest.shape)}")

    _, quats, trans, fitted = fit_frames(targets, lengths, rest, config)
    error = np.linalg.norm(fitted[:, :HML_NUM_JOINTS] - targets, axis=-1).mean(-1)
    # scatter back to [K, T, ...], padding frames repeat the clip's last fitted frame
    src = np.minimum(np.arange(t)[None, :], lengths[:, None] - 1) + (np.cumsum(lengths) - lengths)[:, None]
    poses = Q.quat_to_axis_angle(quats, shortest=False)[src]
    out = FitResult(poses=poses, trans=trans[src], betas=betas, joints_fitted=fitted[src],
                    per_frame_error=error[src], rest_joints=rest)
    if not batched:
        out.poses, out.trans, out.joints_fitted, out.per_frame_error = (
            out.poses[0], out.trans[0], out.joints_fitted[0], out.per_frame_error[0])
    return out
