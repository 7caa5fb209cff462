"""Locomotion from a root plan: footstep planning, pinned stance feet, swing arcs, coupled arms.

A locomotion segment is given the root's speed, travel direction (relative to facing) and heading
over time. Steps alternate feet at a fixed step rate while the root moves or turns; each step
lands where the root will be at the middle of that foot's stance (offset sideways by the stance
width), so the same planner does walking, running, backwards, sideways, curves, turning in place,
and smooth starts/stops (after the root comes to rest both feet take a last step under it).

A planted foot never slides: flat (ankle and ball pinned), after a heel strike the toe comes
down about the pinned ankle, and before lift-off the heel rises about the pinned ball of the foot.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import body as B
from .base import NEUTRAL_ARM_FLEX, State, Style, forward_of, hanging_arms, left_of
from .curves import integrate, minjerk, smoothstep, wrap_angle


@dataclass(frozen=True)
class Gait:
    step_rate: float       # steps per second (a cycle is two steps)
    duty: float            # fraction of a cycle each foot is planted (< 0.5: flight phases)
    clearance: float       # ankle lift at mid-swing (m)
    heel_strike: float     # toe-up angle at landing (rad), for full forward steps
    toe_off: float         # heel-rise angle at lift-off (rad), for full forward steps
    arm_swing: float       # shoulder flexion amplitude (rad) at a full stride
    elbow_reach: float     # wrist distance / arm length (bent elbows when running)
    arm_forward: float     # mean shoulder flexion (rad) while moving
    lean: float            # trunk pitch added when moving forward (rad)
    bounce: float          # root dip at mid-stance (m)
    height: float          # nominal root offset from standing height (m)
    reach: float           # leg straightness allowed while stepping
    pelvis_twist: float    # pelvis yaw swing (rad) at a full stride
    width: float = 1.0     # stance width multiplier
    land_phase: float = 0.4  # the foot lands under the root of this fraction into its stance


WALK = Gait(step_rate=1.9, duty=0.62, clearance=0.07, heel_strike=0.25, toe_off=0.55, arm_swing=0.35,
            elbow_reach=0.93, arm_forward=0.05, lean=0.04, bounce=0.0, height=0.02, reach=0.995,
            pelvis_twist=0.08)
JOG = Gait(step_rate=2.6, duty=0.42, clearance=0.17, heel_strike=0.05, toe_off=0.6, arm_swing=0.55,
           elbow_reach=0.62, arm_forward=0.35, lean=0.12, bounce=0.05, height=-0.01, reach=0.99,
           pelvis_twist=0.10)
RUN = Gait(step_rate=3.0, duty=0.34, clearance=0.28, heel_strike=0.0, toe_off=0.7, arm_swing=0.75,
           elbow_reach=0.55, arm_forward=0.45, lean=0.2, bounce=0.06, height=-0.02, reach=0.99,
           pelvis_twist=0.12)
SHUFFLE = Gait(step_rate=1.8, duty=0.68, clearance=0.05, heel_strike=0.0, toe_off=0.2, arm_swing=0.0,
               elbow_reach=0.95, arm_forward=0.0, lean=0.0, bounce=0.0, height=0.0, reach=0.99,
               pelvis_twist=0.0)


@dataclass
class _Step:
    foot: int
    lift: float
    land: float
    xz: np.ndarray     # [2] landing ankle position
    yaw: float
    forward: float     # 0..1: how much of a full forward stride this step is


def _at(t: np.ndarray, values: np.ndarray, when: float) -> np.ndarray:
    """values [n, ...] at time ``when``, linearly interpolated / extrapolated past the end."""
    if when >= t[-1]:
        slope = (values[-1] - values[-2]) * B.FPS if len(t) > 1 else 0.0
        return values[-1] + slope * (when - t[-1])
    i = int(np.clip(np.searchsorted(t, when) - 1, 0, len(t) - 2))
    w = (when - t[i]) * B.FPS
    return values[i] * (1.0 - w) + values[i + 1] * w


def plan_steps(t, xz, yaw, moving, gait: Gait, style: Style, state: State, first_foot: int) -> list[_Step]:
    step_dt = 1.0 / gait.step_rate
    swing = 2.0 * step_dt * (1.0 - gait.duty)
    t_go = t[moving][0]
    t_rest = t[moving][-1] + 1.0 / B.FPS if not moving[-1] else np.inf
    width = style.half_width * gait.width
    last_xz = state.feet_xz.copy()
    steps, settled = [], set()
    k = 0
    while True:
        lift = t_go + k * step_dt
        if lift >= t[-1]:
            break
        foot = (first_foot + k) % 2
        mid = lift + swing + gait.land_phase * (2.0 * step_dt - swing)
        if mid >= t_rest:
            mid = t_rest
            settled.add(foot)
        y = float(_at(t, yaw, mid))
        land_xz = _at(t, xz, mid) + B.OUTWARD[foot] * width * left_of(y)
        advance = float((land_xz - last_xz[foot]) @ forward_of(y))
        steps.append(_Step(foot, lift, lift + swing, land_xz, y + B.OUTWARD[foot] * style.toe_out,
                           float(np.clip(advance / 0.6, 0.0, 1.0))))
        last_xz[foot] = land_xz
        if len(settled) == 2:
            break
        k += 1
    return steps


def _foot_track(pose: B.Pose, t, side: int, start_xz, start_yaw, steps: list[_Step], gait: Gait):
    """Fill one foot's ankle / yaw / pitch / contact channels from its list of steps."""
    planted = [(-np.inf, np.asarray(start_xz, float), float(start_yaw), 0.0)]  # (landed, xz, yaw, forward)
    lifts = []
    for st in steps:
        lifts.append(st)
        planted.append((st.land, st.xz, st.yaw, st.forward))
    flat_h = B.ANKLE_HEIGHT[side]
    for i, (landed, xz, yaw, fwd_in) in enumerate(planted):
        nxt = lifts[i] if i < len(lifts) else None
        lift_t = nxt.lift if nxt else np.inf
        mask = (t >= landed) & (t < lift_t)
        if mask.any():
            tt = t[mask]
            stance = lift_t - landed
            t_hs = min(0.12, 0.35 * stance)
            t_hr = min(0.3, 0.5 * stance)
            # Heel strike: toes come down about the pinned ankle. Heel rise: about the pinned toe.
            toe_up = (gait.heel_strike * fwd_in * (1.0 - minjerk((tt - landed) / t_hs))
                      if np.isfinite(landed) else np.zeros_like(tt))
            rise = (gait.toe_off * nxt.forward * minjerk(1.0 - (lift_t - tt) / t_hr)
                    if nxt else np.zeros_like(tt))
            pitch = B.FLAT_PITCH - toe_up + rise
            ankle_flat = np.array([xz[0], flat_h, xz[1]])
            toe = B.toe_from_ankle(ankle_flat, yaw, B.FLAT_PITCH, side)
            ankle = np.where((rise > 0)[:, None], B.ankle_from_toe(toe, np.full(len(tt), yaw), pitch, side), ankle_flat)
            pose.ankle[mask, side] = ankle
            pose.foot_yaw[mask, side] = yaw
            pose.foot_pitch[mask, side] = pitch
            pose.ankle_contact[mask, side] = rise <= 0.0
            pose.toe_contact[mask, side] = toe_up <= 0.0
        if nxt is None:
            continue
        mask = (t >= nxt.lift) & (t < nxt.land)
        if not mask.any():
            continue
        s = (t[mask] - nxt.lift) / (nxt.land - nxt.lift)
        lift_pitch = B.FLAT_PITCH + gait.toe_off * nxt.forward
        toe = B.toe_from_ankle(np.array([xz[0], flat_h, xz[1]]), yaw, B.FLAT_PITCH, side)
        lift_ankle = B.ankle_from_toe(toe, yaw, lift_pitch, side)
        land_ankle = np.array([nxt.xz[0], flat_h, nxt.xz[1]])
        h = smoothstep(s)[:, None]
        ankle = lift_ankle * (1.0 - h) + land_ankle * h
        dist = np.linalg.norm(nxt.xz - xz)
        lift_height = gait.clearance * np.clip(dist / 0.4, 0.35, 1.0)
        ankle[:, 1] = lift_ankle[1] * (1.0 - s) + flat_h * s + lift_height * np.sin(np.pi * s ** 0.85)
        pose.ankle[mask, side] = ankle
        pose.foot_yaw[mask, side] = yaw + wrap_angle(nxt.yaw - yaw) * h[:, 0]
        land_pitch = B.FLAT_PITCH - gait.heel_strike * nxt.forward
        pose.foot_pitch[mask, side] = lift_pitch * (1.0 - h[:, 0]) + land_pitch * h[:, 0]


def locomote(rng: np.random.Generator, style: Style, state: State, speed: np.ndarray, yaw: np.ndarray,
             gait: Gait, move_dir: float = 0.0, first_foot: int | None = None) -> B.Pose:
    """Pose [n] for a root plan: speed [n] (m/s along yaw + move_dir) and heading yaw [n]."""
    n = len(speed)
    t = np.arange(n) / B.FPS
    gait = replace(gait, step_rate=gait.step_rate * style.tempo)
    vel = speed[:, None] * forward_of(yaw + move_dir)
    xz = state.xz + integrate(vel, B.FPS)
    yaw_rate = np.gradient(yaw) * B.FPS if n > 1 else np.zeros(n)
    moving = (speed > 0.03) | (np.abs(yaw_rate) > 0.15)

    pose = B.Pose.empty(n)
    pose.root[:, [0, 2]] = xz
    pose.yaw[:] = yaw
    pose.reach[:] = gait.reach
    pose.wrist[:], pose.elbow_pole[:] = hanging_arms(style, n)
    for s in (0, 1):  # standing until the first lift
        pose.ankle[:, s] = (state.feet_xz[s, 0], B.ANKLE_HEIGHT[s], state.feet_xz[s, 1])
        pose.foot_yaw[:, s] = state.feet_yaw[s]
    if moving.any():
        if first_foot is None:
            lateral = np.sin(move_dir)
            turn = yaw[-1] - yaw[0]
            first_foot = (0 if lateral > 0.3 or turn > 0.3 else 1 if lateral < -0.3 or turn < -0.3
                          else int(rng.integers(2)))
        steps = plan_steps(t, xz, yaw, moving, gait, style, state, first_foot)
        for s in (0, 1):
            _foot_track(pose, t, s, state.feet_xz[s], state.feet_yaw[s], [st for st in steps if st.foot == s], gait)
    else:
        pose.toe_contact[:] = True
        pose.ankle_contact[:] = True

    # Root height: nominal (with a dip at each mid-stance when running); the reach limit adds the
    # double-support dip of walking later (body.limit_root_height).
    effort = np.clip(speed / 1.3, 0.0, 1.5)
    planted = pose.toe_contact | pose.ankle_contact
    stance_phase = _stance_progress(planted)
    dip = (np.sin(np.pi * stance_phase) * planted).max(axis=1)
    pose.root[:, 1] = style.stand_height + gait.height * np.minimum(effort, 1.0) - gait.bounce * dip

    # Arms and pelvis follow the legs: stride = how far the left ankle is ahead of the right.
    fwd3 = B.heading(yaw)
    stride = ((pose.ankle[:, 0] - pose.ankle[:, 1]) * fwd3).sum(-1) / 2.0
    swing = np.clip(stride / 0.35, -1.3, 1.3)
    forwardness = np.cos(move_dir)
    pose.yaw[:] = yaw - gait.pelvis_twist * swing * forwardness
    pose.spine[:, 2] = 2.0 * gait.pelvis_twist * swing * forwardness
    move = np.clip(speed / 1.0, 0.0, 1.0)
    pose.spine[:, 0] = style.lean + gait.lean * move * forwardness
    pose.pelvis_pitch[:] = 0.5 * gait.lean * move * max(forwardness, 0.0)
    pose.neck[:, 0] = style.head_pitch - 0.5 * gait.lean * move * max(forwardness, 0.0)
    reach = style.arm_reach + (gait.elbow_reach - style.arm_reach) * move
    for s, sign in ((0, -1.0), (1, 1.0)):
        flex = sign * gait.arm_swing * swing * abs(forwardness) + gait.arm_forward * move + NEUTRAL_ARM_FLEX
        direction = B.arm_direction(flex, style.arm_abduct * (1.0 - 0.4 * move), s)
        pose.wrist[:, s] = direction * (reach * B.ARM_LEN[s])[:, None]
    return pose


def _stance_progress(planted: np.ndarray) -> np.ndarray:
    """[n, 2] fraction of the current planted interval elapsed (0 outside finite stances)."""
    n = len(planted)
    out = np.zeros(planted.shape)
    for s in (0, 1):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], planted[:, s].astype(int), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            if a > 0 and b < n:  # only stances that both start and end inside the clip
                out[a:b, s] = (np.arange(a, b) - a + 0.5) / (b - a)
    return out
