"""Loop: cut a generated motion into a cycle that repeats without a seam (pure numpy, y-up).

``find_loop`` picks the frames (start, end) where the body's pose and velocity, seen from its own
heading, come back closest: frames start..end-1 are one cycle and ``end`` is where the next one
begins. ``close_loop`` then returns frames start..end with the little mismatch left spread evenly
over the cycle, so that its last frame equals its first (shifted by one cycle's horizontal travel):
each joint rotation gets a growing share of the residual rotation (slerp from none at ``start`` to
all of it at ``end``), the height a growing share of the residual height. The cycle keeps its
travel (a walk cycle moves on; the rig repeats it with a Cycles modifier, offset on the root's
location) and loses its net turn: a cycle that turned could not repeat along a straight line, so
its path is turned back step by step with the heading.

Used by the add-on's Loop option on SMPL parameters: poses [T, 24, 3] axis-angle, trans [T, 3].
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from . import quaternion as Q
from .skeleton import facing_direction, heading_yaw

MIN_CYCLE_SECONDS = 1.0
VELOCITY_WEIGHT = 5.0      # a frame's step is ~5x smaller than a pose difference that shows
TIE = 1e-6                 # metres: seams this close count as equally good
MIN_ACTIVITY = 0.5         # a cycle moves at least this share of the clip's average per frame
# a seam mismatch above this shows; the add-on then says the motion does not repeat (demo model,
# fitted motions, bench/loop_seams.py: walks 1.8-4.1 cm, runs 2.8-4.9, jog in a circle 2.2-3.3,
# jumping jacks and waves 0.3-1.4; "walks forward then sits down" 16-36)
NOTICEABLE_SEAM = 0.08


def _in_own_heading(joints: np.ndarray) -> np.ndarray:
    """[T, 22, 3] joints relative to the pelvis's ground point, turned so the body faces +z."""
    yaw = heading_yaw(facing_direction(joints))                           # [T]
    relative = joints - joints[:, :1] * np.array([1.0, 0.0, 1.0])
    turn = np.broadcast_to(Q.rotation_about_y(-yaw)[:, None], relative.shape[:-1] + (4,))
    return Q.qrot(turn, relative)


def find_loop(joints, fps: float = 20.0, min_seconds: float = MIN_CYCLE_SECONDS,
              start_fraction: float = 0.25) -> tuple[int, int, float]:
    """joints [T, 22, 3] -> (start, end, mismatch): the cycle start..end-1 whose seam differs least.

    The seam's mismatch (metres) is the mean joint distance between the poses at ``start`` and
    ``end`` plus VELOCITY_WEIGHT x that of their velocities, both in the body's own heading; the
    start lies in the first ``start_fraction`` of the clip, the cycle lasts at least
    ``min_seconds`` and moves at least MIN_ACTIVITY of the clip's average; ties go to the longer
    cycle. A motion that does not repeat still gets its best seam, with a large mismatch."""
    joints = np.asarray(joints, dtype=np.float64)
    min_frames = max(2, int(round(min_seconds * fps)))
    if joints.ndim != 3 or joints.shape[1:] != (22, 3):
        raise InputError(f"find_loop needs joints [T, 22, 3], got {joints.shape}")
    if len(joints) < min_frames + 2:
        raise InputError(f"a loop needs a motion longer than {min_seconds + 2 / fps:.2f} s "
                         f"({len(joints) / fps:.2f} s given); generate a longer one")
    own = _in_own_heading(joints)
    pose, velocity = own[:-1], np.diff(own, axis=0)                       # [T-1, 22, 3] each
    # how much the body moves per frame (limbs + travel): a cycle must hold at least half the clip's
    # average, or a still stretch (seated at the end of "sits down") would always loop best
    activity = np.linalg.norm(velocity, axis=-1).mean(-1) + np.linalg.norm(np.diff(joints[:, 0], axis=0), axis=-1)
    moved = np.concatenate([[0.0], np.cumsum(activity)])
    n = len(pose)
    starts = np.arange(max(1, int(n * start_fraction)))
    best = (np.inf, 0, 0)
    for s in starts:
        ends = np.arange(s + min_frames, n)
        ends = ends[(moved[ends] - moved[s]) / (ends - s) >= MIN_ACTIVITY * activity.mean()]
        if not len(ends):
            continue
        cost = (np.linalg.norm(pose[ends] - pose[s], axis=-1).mean(-1)
                + VELOCITY_WEIGHT * np.linalg.norm(velocity[ends] - velocity[s], axis=-1).mean(-1))
        k = int(np.flatnonzero(cost <= cost.min() + TIE)[-1])              # the longest among equals
        if cost[k] < best[0] - TIE or (cost[k] <= best[0] + TIE and ends[k] - s > best[2] - best[1]):
            best = (float(cost[k]), int(s), int(ends[k]))
    return best[1], best[2], best[0]


def close_loop(poses, trans, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SMPL poses [T, J, 3] (axis-angle; joint 0 the global orientation) and trans [T, 3] ->
    (poses [L + 1, J, 3], trans [L + 1, 3], travel [3]) for frames start..end (L = end - start):
    the last frame's pose equals the first's and its trans the first's plus ``travel`` (one
    cycle's horizontal displacement, y = 0)."""
    poses, trans = np.asarray(poses, np.float64), np.asarray(trans, np.float64)
    if not 0 <= start < end < len(poses) or len(trans) != len(poses):
        raise InputError(f"loop frames {start}..{end} must lie inside the {len(poses)} frames given")
    share = np.linspace(0.0, 1.0, end - start + 1)                       # [L+1]: 0 at start, 1 at end
    quats = Q.quat_continuity(Q.axis_angle_to_quat(poses[start:end + 1]))  # [L+1, J, 4]
    residual = Q.qmul(quats[0], Q.qinv(quats[-1]))                       # [J, 4]: end -> start
    identity = np.broadcast_to(np.array([1.0, 0.0, 0.0, 0.0]), residual.shape)
    correction = Q.slerp(identity[None], residual[None], share[:, None, None])   # [L+1, J, 4]
    closed = Q.qmul(correction, quats)
    closed[-1] = quats[0]                                                 # exactly, not to rounding
    # the path turns with the heading correction: each step rotated about y by the root's share
    forward = Q.qrot(correction[:, 0], np.broadcast_to(np.array([0.0, 0.0, 1.0]), (len(share), 3)))
    yaw = heading_yaw(forward)                                            # [L+1] heading correction
    steps = np.diff(trans[start:end + 1], axis=0)                         # [L, 3]
    turned = Q.qrot(Q.rotation_about_y(yaw[:-1]), steps)
    path = trans[start] + np.concatenate([np.zeros((1, 3)), np.cumsum(turned, axis=0)])
    travel = path[-1] - path[0]
    travel[1] = 0.0
    path[:, 1] -= share * (path[-1, 1] - path[0, 1])                      # the height comes back
    path[-1] = path[0] + travel
    return Q.quat_to_axis_angle(closed).astype(poses.dtype), path, travel
