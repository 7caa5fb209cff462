"""Whole-body actions on planted feet: idle, squat, bow, sit down / stand up, kick.
Each returns (Pose, end State, Phrase)."""
from __future__ import annotations

import numpy as np

from . import body as B
from .arms import blend_arm
from .base import Phrase, State, Style, forward_of, hanging_arms, left_of, stand
from .curves import envelope, keyframes

SIDE_INDEX = {"left": 0, "right": 1}


def idle(rng: np.random.Generator, style: Style, state: State, seconds: float = 3.0, variant: str = "still"):
    """Stand; 'still', 'look' (look around) or 'shift' (shift weight from foot to foot)."""
    n = int(round(seconds * B.FPS))
    t = np.arange(n) / B.FPS
    pose = stand(style, state, n)
    if variant == "look":
        times = np.cumsum(rng.uniform(0.6, 1.4, size=8))
        targets = rng.uniform(0.5, 1.0, size=8) * np.where(np.arange(8) % 2 == 0, 1.0, -1.0) * rng.choice([-1, 1])
        look = keyframes(t, np.concatenate([[0.0], times]), np.concatenate([[0.0], targets]))
        pose.neck[:, 1] += 0.6 * look
        pose.spine[:, 2] += 0.4 * look
        pose.yaw += 0.15 * look
    elif variant == "shift":
        lateral = 0.06 * np.sin(2 * np.pi * rng.uniform(0.3, 0.5) * t + rng.uniform(0, 2 * np.pi))
        pose.root[:, [0, 2]] += lateral[:, None] * left_of(state.yaw)
        pose.pelvis_roll[:] = -2.0 * lateral
    return pose, state, Phrase("idle", {"variant": variant})


def squat(rng: np.random.Generator, style: Style, state: State, reps: int = 1):
    """Squat down and stand back up ``reps`` times (arms forward, on the hips or behind the head)."""
    down, hold, up = rng.uniform(0.7, 1.1), rng.uniform(0.1, 0.6), rng.uniform(0.7, 1.0)
    down, up = down / style.tempo, up / style.tempo
    rest = rng.uniform(0.1, 0.4)
    cycle = down + hold + up + rest
    n = int(round((reps * cycle + 0.2) * B.FPS))
    t = np.arange(n) / B.FPS
    depth = rng.uniform(0.3, 0.46)
    env = sum(envelope(t, k * cycle, down, k * cycle + down + hold, up) for k in range(reps))
    pose = stand(style, state, n)
    pose.root[:, 1] -= depth * env
    pose.root[:, [0, 2]] -= (rng.uniform(0.06, 0.12) * env)[:, None] * forward_of(state.yaw)
    pose.pelvis_pitch[:] += 0.45 * env
    pose.spine[:, 0] += 0.35 * env
    pose.neck[:, 0] -= 0.4 * env
    pose.reach[:] = 0.99
    arms = rng.choice(["forward", "hips", "head"])
    arm_env = np.clip(env * 1.6, 0.0, 1.0) if arms == "forward" else \
        envelope(t, 0.0, 0.5, t[-1] - 0.6, 0.5)
    for s in (0, 1):
        if arms == "forward":
            wrist = B.arm_direction(1.5, 0.05, s) * 0.97 * B.ARM_LEN[s]
            pole = np.array([B.OUTWARD[s] * 0.5, -1.0, 0.0])
        elif arms == "hips":
            wrist, pole = np.array([-B.OUTWARD[s] * 0.03, -0.42, -0.02]), np.array([B.OUTWARD[s], -0.1, -0.3])
        else:
            wrist, pole = np.array([-B.OUTWARD[s] * 0.15, 0.22, -0.08]), np.array([B.OUTWARD[s], 0.3, 0.1])
        blend_arm(pose, s, np.broadcast_to(wrist, (n, 3)), np.broadcast_to(pole, (n, 3)), arm_env)
    return pose, state, Phrase("squat", {"count": reps, "arms": str(arms)})


def bow(rng: np.random.Generator, style: Style, state: State, depth: str = "normal"):
    """Bend forward at the hips, hold, come back up."""
    angle = {"slight": rng.uniform(0.35, 0.55), "normal": rng.uniform(0.6, 0.9), "deep": rng.uniform(1.0, 1.3)}[depth]
    down, hold, up = rng.uniform(0.6, 1.0), rng.uniform(0.3, 1.2), rng.uniform(0.6, 1.0)
    t_end = down + hold + up + 0.2
    n = int(round(t_end * B.FPS))
    t = np.arange(n) / B.FPS
    env = envelope(t, 0.0, down / style.tempo, down / style.tempo + hold, up / style.tempo)
    pose = stand(style, state, n)
    pose.pelvis_pitch[:] += 0.45 * angle * env
    pose.spine[:, 0] += 0.55 * angle * env
    pose.neck[:, 0] += 0.2 * env
    pose.root[:, [0, 2]] -= (0.09 * angle * env)[:, None] * forward_of(state.yaw)
    if rng.random() < 0.35:  # right hand on the chest
        wrist, pole = np.array([0.14, -0.25, 0.22]), np.array([-1.0, -0.6, 0.0])
        blend_arm(pose, 1, np.broadcast_to(wrist, (n, 3)), np.broadcast_to(pole, (n, 3)),
                  envelope(t, 0.0, 0.5, t_end - 0.6, 0.5))
    return pose, state, Phrase("bow", {"depth": depth})


SEAT_DROP = (0.38, 0.46)   # how far the root goes down when sitting (m)


def _sit_curves(rng, style: Style, state: State, n_move: int):
    """Keyframed root offset (back, down), trunk lean and pelvis tilt from standing to seated."""
    back, drop = rng.uniform(0.16, 0.26), rng.uniform(*SEAT_DROP)
    lean = rng.uniform(0.45, 0.7)
    t = np.arange(n_move) / B.FPS
    T = t[-1]
    keys = [0.0, 0.45 * T, T]
    offset = keyframes(t, keys, [[0.0, 0.0], [0.45 * back, 0.35 * drop], [back, drop]])
    trunk = keyframes(t, [0.0, 0.4 * T, 0.75 * T, T], [0.0, lean, 0.4 * lean, rng.uniform(-0.05, 0.1)])
    tilt = keyframes(t, [0.0, 0.4 * T, T], [0.0, 0.5 * lean, -0.15])
    return offset, trunk, tilt


def _seated_arms(pose: B.Pose, weight: np.ndarray) -> None:
    """Hands come to rest on the thighs."""
    for s in (0, 1):
        wrist = np.array([-B.OUTWARD[s] * 0.05, -0.42, 0.3])
        blend_arm(pose, s, np.broadcast_to(wrist, (pose.frames, 3)),
                  np.broadcast_to(np.array([B.OUTWARD[s] * 0.6, -0.3, -1.0]), (pose.frames, 3)), weight)


def sit_down(rng: np.random.Generator, style: Style, state: State, seated_for: float = 1.5):
    """Lower onto an (invisible) chair behind, feet planted; stays seated ``seated_for`` seconds."""
    n_move = int(round(rng.uniform(1.3, 2.0) / style.tempo * B.FPS))
    n = n_move + int(round(seated_for * B.FPS))
    offset, trunk, tilt = _sit_curves(rng, style, state, n_move)
    pose = stand(style, state, n)
    back = np.concatenate([offset[:, 0], np.full(n - n_move, offset[-1, 0])])
    drop = np.concatenate([offset[:, 1], np.full(n - n_move, offset[-1, 1])])
    pose.root[:, [0, 2]] -= back[:, None] * forward_of(state.yaw)
    pose.root[:, 1] -= drop
    pose.spine[:, 0] += np.concatenate([trunk, np.full(n - n_move, trunk[-1])])
    pose.pelvis_pitch[:] += np.concatenate([tilt, np.full(n - n_move, tilt[-1])])
    pose.reach[:] = 0.99
    _seated_arms(pose, np.clip(drop / drop[-1] * 1.3 - 0.3, 0.0, 1.0))
    end = State(xz=state.xz, yaw=state.yaw, feet_xz=state.feet_xz, feet_yaw=state.feet_yaw, seated=True,
                seat=dict(back=float(back[-1]), drop=float(drop[-1]), trunk=float(trunk[-1]), tilt=float(tilt[-1])))
    return pose, end, Phrase("sit_down", {})


def seated(style: Style, state: State, n: int) -> B.Pose:
    """Hold the seated posture of ``state`` (which must come from sit_down) for n frames."""
    pose = stand(style, state, n)
    pose.root[:, [0, 2]] -= state.seat["back"] * forward_of(state.yaw)
    pose.root[:, 1] -= state.seat["drop"]
    pose.spine[:, 0] += state.seat["trunk"]
    pose.pelvis_pitch[:] += state.seat["tilt"]
    pose.reach[:] = 0.99
    _seated_arms(pose, np.ones(n))
    return pose


def stand_up(rng: np.random.Generator, style: Style, state: State):
    """Rise from the seated posture of ``state`` back to standing (the reverse path, leaning forward)."""
    n_move = int(round(rng.uniform(1.2, 1.8) / style.tempo * B.FPS))
    pose = seated(style, state, n_move)
    t = np.arange(n_move) / B.FPS
    T = t[-1]
    up = keyframes(t, [0.0, 0.35 * T, T], [0.0, 0.25, 1.0])                 # 0 = seated, 1 = standing
    lean = keyframes(t, [0.0, 0.35 * T, 0.7 * T, T], [0.0, 0.6, 0.25, 0.0])
    seat = state.seat
    pose.root[:, [0, 2]] += (seat["back"] * up)[:, None] * forward_of(state.yaw)
    pose.root[:, 1] += seat["drop"] * up
    pose.spine[:, 0] += -seat["trunk"] * up + lean
    pose.pelvis_pitch[:] += -seat["tilt"] * up + 0.5 * lean
    hands = np.clip(1.0 - up * 1.4, 0.0, 1.0)
    wrist, pole = hanging_arms(style, n_move)
    for s in (0, 1):  # arms go from the thighs back to hanging
        blend_arm(pose, s, wrist[:, s], pole[:, s], 1.0 - hands)
    end = State(xz=state.xz, yaw=state.yaw, feet_xz=state.feet_xz, feet_yaw=state.feet_yaw, seated=False)
    return pose, end, Phrase("stand_up", {})


def kick(rng: np.random.Generator, style: Style, state: State, leg: str = "right", count: int = 1):
    """Front kick(s): shift weight onto the other foot, chamber the knee, snap the foot out high."""
    k = SIDE_INDEX[leg]
    support = 1 - k
    shift, chamber, extend, retract, put = (rng.uniform(0.35, 0.5), rng.uniform(0.2, 0.3), rng.uniform(0.15, 0.22),
                                            rng.uniform(0.2, 0.3), rng.uniform(0.25, 0.35))
    kick_time = (chamber + extend + 0.1 + retract) / style.tempo
    between = rng.uniform(0.1, 0.3)
    t_kicks = [shift + i * (kick_time + between) for i in range(count)]
    t_down = t_kicks[-1] + kick_time
    t_end = t_down + put + shift + 0.15
    n = int(round(t_end * B.FPS))
    t = np.arange(n) / B.FPS
    pose = stand(style, state, n)
    yaw = state.yaw
    fwd = np.array([np.sin(yaw), 0.0, np.cos(yaw)])

    # Weight over the support foot while the kicking foot is off the ground.
    weight = envelope(t, 0.0, shift, t_down + put, shift)
    toward = state.feet_xz[support] - state.xz
    pose.root[:, [0, 2]] += (0.7 * weight)[:, None] * toward
    pose.root[:, 1] -= 0.03 * weight
    pose.pelvis_roll[:] += B.OUTWARD[k] * 0.06 * weight

    # Kicking ankle: planted -> chamber (knee up) -> out (high, forward) -> chamber -> planted.
    start = np.array([state.feet_xz[k, 0], B.ANKLE_HEIGHT[k], state.feet_xz[k, 1]])
    height = rng.uniform(np.radians(72), np.radians(100))  # leg elevation from vertical at full kick
    hip_h = style.stand_height - 0.03 - 0.085
    times, points, lift = [0.0, t_kicks[0] - 0.02], [start, start], [0.0, 0.0]
    for tk in t_kicks:
        knee_up = start + np.array([0, 0.3, 0]) + 0.12 * fwd
        out = np.array([start[0], 0.0, start[2]]) + fwd * (0.05 + 0.96 * B.LEG_LEN[k] * np.sin(height))
        out[1] = hip_h - 0.96 * B.LEG_LEN[k] * np.cos(height)
        times += [tk + chamber / style.tempo, tk + (chamber + extend) / style.tempo,
                  tk + (chamber + extend + 0.1) / style.tempo, tk + kick_time]
        points += [knee_up, out, out, knee_up]
        lift += [0.5, 1.0, 1.0, 0.5]
    times += [t_down + put]
    points += [start]
    lift += [0.0]
    pose.ankle[:, k] = keyframes(t, times, points)
    lifted = keyframes(t, times, lift)
    pose.foot_pitch[:, k] = B.FLAT_PITCH - 0.9 * lifted
    airborne_foot = (t > times[1]) & (t < times[-1])
    pose.toe_contact[:, k] = ~airborne_foot
    pose.ankle_contact[:, k] = ~airborne_foot
    pose.pelvis_pitch[:] -= 0.25 * lifted
    pose.spine[:, 0] -= 0.15 * lifted
    pose.reach[:] = 0.99

    # Arms out a little for balance.
    balance = envelope(t, 0.0, shift, t_down + put, shift)
    for s in (0, 1):
        wrist = B.arm_direction(0.5, 0.6, s) * 0.9 * B.ARM_LEN[s]
        blend_arm(pose, s, np.broadcast_to(wrist, (n, 3)),
                  np.broadcast_to(np.array([B.OUTWARD[s] * 0.5, -1.0, -0.3]), (n, 3)), balance)
    return pose, state, Phrase("kick", {"leg": leg, "count": count})
