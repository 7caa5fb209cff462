"""Ballistic hops: jumps in place and forward, repeated jumps, jumping jacks.

One engine for all of them: crouch, push off (constant upward acceleration to the take-off speed
while the heels rise about the planted balls of the feet), flight (the root follows the exact
parabola y = y0 + vy t - g t^2 / 2 and the feet hang under it, tucked a little), land on the toes
at the take-off height, then either rebound into the next hop (a C1 cubic dip on the ground) or
absorb (constant deceleration) and stand up again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import body as B
from .base import NEUTRAL_ARM_FLEX, Phrase, State, Style, end_state, forward_of, neutral_feet
from .curves import keyframes, minjerk, smoothstep, wrap_angle

TOE_PITCH = B.FLAT_PITCH + 0.75  # foot bone pitch on the balls of the feet at take-off / landing


@dataclass
class Hop:
    vy: float                   # take-off vertical speed (m/s); flight time is 2 vy / g
    advance: float = 0.0        # horizontal root travel of this hop (m, along the heading)
    half_width: float = 0.10    # lateral ankle offset of the landing stance
    ground: float = 0.3         # time on the ground before this hop (ignored for the first)
    arms_up: float = 1.0        # 0..1 how far the arms go overhead on this hop (jacks: per hop)


def _phases(hops: list[Hop], crouch_time: float, push_time: float, absorb_time: float,
            recover_time: float):
    """Phase list [(name, k, t0, t1)] and the take-off / landing times of each hop."""
    phases = [("crouch", 0, 0.0, crouch_time)]
    t = crouch_time
    takeoffs, landings = [], []
    for k, hop in enumerate(hops):
        if k == 0:
            phases.append(("push", 0, t, t + push_time))
            t += push_time
        else:
            phases.append(("ground", k, t, t + hop.ground))
            t += hop.ground
        takeoffs.append(t)
        flight = 2.0 * hop.vy / B.GRAVITY
        phases.append(("flight", k, t, t + flight))
        t += flight
        landings.append(t)
    phases.append(("absorb", len(hops) - 1, t, t + absorb_time))
    phases.append(("recover", len(hops) - 1, t + absorb_time, t + absorb_time + recover_time))
    return phases, takeoffs, landings


def hop_sequence(rng: np.random.Generator, style: Style, state: State, hops: list[Hop],
                 crouch_depth: float, land_depth: float, arms: str = "swing"):
    """Pose of a series of hops starting and ending in a neutral stance; returns (Pose, State)."""
    h_stand = style.stand_height
    h_crouch = h_stand - crouch_depth
    crouch_time = rng.uniform(0.35, 0.5) / style.tempo
    recover_time = rng.uniform(0.45, 0.7) / style.tempo
    yaw = state.yaw
    fwd = forward_of(yaw)

    # Take-off height: both legs at 0.98 of their length with the heels raised, for every stance
    # width used (the limiter allows 0.995, which covers the root passing ahead of the feet).
    widths = sorted({float(hop.half_width) for hop in hops} | {style.half_width})
    probe = B.Pose.empty(len(widths))
    probe.yaw[:] = yaw
    probe.pelvis_pitch[:] = 0.05
    probe.reach[:] = 0.98
    probe.root[:, [0, 2]] = state.xz
    for i, w in enumerate(widths):
        feet_xz, feet_yaw = neutral_feet(state.xz, yaw, style, w)
        for s in (0, 1):
            toe = B.toe_from_ankle(np.array([feet_xz[s, 0], B.ANKLE_HEIGHT[s], feet_xz[s, 1]]),
                                   feet_yaw[s], B.FLAT_PITCH, s)
            probe.ankle[i, s] = B.ankle_from_toe(toe, feet_yaw[s], TOE_PITCH, s)
    h_takeoff = min(float(B.max_root_height(probe).min()), h_stand + 0.1)
    push_time = 2.0 * (h_takeoff - h_crouch) / hops[0].vy  # constant acceleration from rest to vy
    absorb_time = 2.0 * land_depth / hops[-1].vy
    phases, takeoffs, landings = _phases(hops, crouch_time, push_time, absorb_time, recover_time)
    t_end = phases[-1][3] + 0.25
    n = int(np.ceil(t_end * B.FPS))
    t = np.arange(n) / B.FPS

    # Horizontal root speed along the heading: 0 -> u0 (push), u_k (flight), u_k -> u_k+1 (ground),
    # u_last -> 0 (absorb); positions are the exact integral of this piecewise-linear speed. Hop k
    # is credited with its flight, half of each neighbouring ramp, and travels ``advance``.
    def credited_time(k: int) -> float:
        time = 2.0 * hops[k].vy / B.GRAVITY
        time += 0.5 * push_time if k == 0 else 0.5 * hops[k].ground
        time += 0.5 * absorb_time if k == len(hops) - 1 else 0.5 * hops[k + 1].ground
        return time
    speeds = [hop.advance / credited_time(k) for k, hop in enumerate(hops)]
    height = np.full(n, h_stand)
    along = np.zeros(n)
    pos = 0.0
    for name, k, t0, t1 in phases:
        dur = t1 - t0
        v0, v1 = {"crouch": (0.0, 0.0), "push": (0.0, speeds[0]), "flight": (speeds[k], speeds[k]),
                  "ground": (speeds[k - 1] if name == "ground" else 0.0, speeds[k]),
                  "absorb": (speeds[k], 0.0), "recover": (0.0, 0.0)}[name]
        m = (t >= t0) & (t < t1) if name != "recover" else (t >= t0)
        tau = np.clip(t[m] - t0, 0.0, dur)
        along[m] = pos + v0 * tau + (v1 - v0) * tau ** 2 / (2.0 * dur)
        pos += dur * (v0 + v1) / 2.0
        s = tau / dur
        if name == "crouch":
            height[m] = h_stand + (h_crouch - h_stand) * minjerk(s)
        elif name == "push":
            height[m] = h_crouch + (h_takeoff - h_crouch) * s ** 2
        elif name == "flight":
            height[m] = h_takeoff + hops[k].vy * tau - 0.5 * B.GRAVITY * tau ** 2
        elif name == "ground":
            h10, h11 = s ** 3 - 2 * s ** 2 + s, s ** 3 - s ** 2
            height[m] = h_takeoff + dur * (-hops[k - 1].vy * h10 + hops[k].vy * h11)
        elif name == "absorb":
            height[m] = h_takeoff - hops[k].vy * tau + hops[k].vy * tau ** 2 / (2.0 * dur)
        else:
            height[m] = h_takeoff - land_depth + (h_stand - h_takeoff + land_depth) * minjerk(s)
    along[t >= phases[-1][3]] = pos
    pose = B.Pose.empty(n)
    pose.root[:, [0, 2]] = state.xz + along[:, None] * fwd
    pose.root[:, 1] = height
    pose.yaw[:] = yaw
    pose.reach[:] = 0.995
    pose.airborne[:] = False
    for t0, t1 in zip(takeoffs, landings):
        pose.airborne |= (t > t0 + 1e-9) & (t < t1 - 1e-9)

    # Where each hop lands: a neutral stance around the root when it is next at rest / mid-ground.
    def root_along(time):
        return float(np.interp(time, t, along)) if time <= t[-1] else pos
    stances = [(state.feet_xz, state.feet_yaw)]
    for k, hop in enumerate(hops):
        settle = landings[k] + (hops[k + 1].ground / 2 if k + 1 < len(hops) else absorb_time)
        center = state.xz + root_along(settle) * fwd
        stances.append(neutral_feet(center, yaw, style, hop.half_width))
    _feet(pose, t, phases, stances, h_takeoff)
    _trunk_and_arms(pose, t, phases, hops, style, arms)
    return pose, end_state(pose)


def _feet(pose: B.Pose, t, phases, stances, h_takeoff: float) -> None:
    for s in (0, 1):
        toes = [B.toe_from_ankle(np.array([xz[s, 0], B.ANKLE_HEIGHT[s], xz[s, 1]]), yw[s], B.FLAT_PITCH, s)
                for xz, yw in stances]
        for name, k, t0, t1 in phases:
            m = (t >= t0) & (t < t1) if name != "recover" else (t >= t0)
            if not m.any():
                continue
            s_ = np.clip((t[m] - t0) / (t1 - t0), 0.0, 1.0)
            if name == "flight":
                a_toe, b_toe = toes[k], toes[k + 1]
                a_yaw, b_yaw = stances[k][1][s], stances[k + 1][1][s]
                h = smoothstep(s_)
                yaw = a_yaw + wrap_angle(b_yaw - a_yaw) * h
                start = B.ankle_from_toe(a_toe, a_yaw, TOE_PITCH, s)
                end = B.ankle_from_toe(b_toe, b_yaw, TOE_PITCH, s)
                ankle = start[None] * (1 - h[:, None]) + end[None] * h[:, None]
                tuck = 0.12 * np.sin(np.pi * s_)
                ankle[:, 1] = start[1] + (pose.root[m, 1] - h_takeoff) + tuck
                pose.ankle[m, s], pose.foot_yaw[m, s] = ankle, yaw
                pose.foot_pitch[m, s] = TOE_PITCH - 0.25 * np.sin(np.pi * s_)
                continue
            idx = {"crouch": 0, "push": 0, "ground": k, "absorb": k + 1, "recover": k + 1}[name]
            toe, yaw = toes[idx], stances[idx][1][s]
            if name == "crouch" or name == "recover":
                rise = np.zeros_like(s_)
            elif name == "push":
                rise = minjerk(s_ / 0.8)
            elif name == "absorb":
                rise = 1.0 - minjerk(s_ / 0.7)
            else:  # ground between hops: heels down, then up again
                rise = 1.0 - minjerk(s_ / 0.4) + minjerk((s_ - 0.65) / 0.35)
            pitch = B.FLAT_PITCH + (TOE_PITCH - B.FLAT_PITCH) * rise
            pose.ankle[m, s] = B.ankle_from_toe(toe, np.full(m.sum(), yaw), pitch, s)
            pose.foot_yaw[m, s] = yaw
            pose.foot_pitch[m, s] = pitch
            pose.toe_contact[m, s] = True
            pose.ankle_contact[m, s] = rise <= 0.0


def _trunk_and_arms(pose: B.Pose, t, phases, hops: list[Hop], style: Style, arms: str) -> None:
    times, trunk, flex, abduct = [], [], [], []

    def key(time, pitch, arm_flex, arm_abduct):
        times.append(time), trunk.append(pitch), flex.append(arm_flex), abduct.append(arm_abduct)

    neutral = (style.lean, NEUTRAL_ARM_FLEX, style.arm_abduct)
    key(0.0, *neutral)
    for name, k, t0, t1 in phases:
        up = hops[k].arms_up
        if arms == "jacks":
            if name == "flight":  # arms arrive overhead (or down) as the feet land
                key(t1, style.lean, NEUTRAL_ARM_FLEX, style.arm_abduct + up * (2.75 - style.arm_abduct))
            elif name in ("crouch", "recover"):
                key(t1, *neutral)
            continue
        if arms != "swing":
            continue
        if name == "crouch":
            key(t1, style.lean + 0.4, -0.7, style.arm_abduct)
        elif name == "flight":
            key(t0 + 0.45 * (t1 - t0), style.lean - 0.05, 1.2 + 1.2 * up, style.arm_abduct)
            key(t1, style.lean + 0.1, 0.9, style.arm_abduct)
        elif name == "ground":
            key(t0 + 0.6 * (t1 - t0), style.lean + 0.3, -0.5, style.arm_abduct)
        elif name == "absorb":
            key(t1, style.lean + 0.3, 0.6, style.arm_abduct)
        elif name == "recover":
            key(t1, *neutral)
    order = np.argsort(times, kind="stable")
    times = np.asarray(times)[order]
    values = np.stack([np.asarray(v)[order] for v in (trunk, flex, abduct)], axis=-1)
    curves = keyframes(t, times, values)
    pose.spine[:, 0] = curves[:, 0]
    pose.pelvis_pitch[:] = 0.6 * (curves[:, 0] - style.lean)
    pose.neck[:, 0] = style.head_pitch - 0.5 * (curves[:, 0] - style.lean)
    for s in (0, 1):
        pose.wrist[:, s] = B.arm_direction(curves[:, 1], curves[:, 2], s) * style.arm_reach * B.ARM_LEN[s]
        pose.elbow_pole[:, s] = (0.35 * B.OUTWARD[s], -0.2, -1.0)


def jump(rng: np.random.Generator, style: Style, state: State, count: int = 1, forward: bool = False):
    """Jump up (in place) or forward, ``count`` times in a row; returns (Pose, State, Phrase)."""
    hops = []
    for k in range(count):
        vy = rng.uniform(1.9, 2.6) if not forward else rng.uniform(1.7, 2.3)
        hops.append(Hop(vy=vy, advance=rng.uniform(0.5, 1.1) if forward else rng.normal(0.0, 0.03),
                        half_width=style.half_width + rng.uniform(-0.02, 0.03),
                        ground=rng.uniform(0.3, 0.5) / style.tempo, arms_up=rng.uniform(0.3, 1.0)))
    pose, end = hop_sequence(rng, style, state, hops, crouch_depth=rng.uniform(0.14, 0.24),
                             land_depth=rng.uniform(0.15, 0.25), arms="swing")
    return pose, end, Phrase("jump", {"count": count, "forward": forward})


def jumping_jacks(rng: np.random.Generator, style: Style, state: State, reps: int = 4):
    """Hop feet apart with arms overhead, then together with arms down, ``reps`` times."""
    wide = rng.uniform(0.24, 0.33)
    hops = []
    vy = rng.uniform(0.95, 1.25)
    ground = rng.uniform(0.2, 0.32) / style.tempo
    for k in range(2 * reps):
        apart = k % 2 == 0
        hops.append(Hop(vy=vy, half_width=wide if apart else style.half_width, ground=ground,
                        arms_up=1.0 if apart else 0.0))
    pose, end = hop_sequence(rng, style, state, hops, crouch_depth=rng.uniform(0.05, 0.09),
                             land_depth=rng.uniform(0.06, 0.1), arms="jacks")
    return pose, end, Phrase("jumping_jacks", {"count": reps})
