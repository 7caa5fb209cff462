"""Standing upper-body actions: wave, raise arms, clap, punch. Each returns (Pose, State, Phrase).

Arm poses are written as wrist targets relative to the shoulder (torso-yaw frame); the helper
``arm_from_dirs`` builds a target and elbow pole from upper-arm / forearm directions, so the IK
reproduces exactly that elbow.
"""
from __future__ import annotations

import numpy as np

from . import body as B
from .base import Phrase, State, Style, stand
from .curves import envelope, keyframes

SIDE_INDEX = {"left": 0, "right": 1}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def arm_from_dirs(upper: np.ndarray, fore: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Wrist target and elbow pole [..., 3] for given upper-arm / forearm directions."""
    upper, fore = _unit(upper), _unit(fore)
    return upper * B.UPPER_ARM[side] + fore * B.FOREARM[side], upper


def blend_arm(pose: B.Pose, side: int, wrist: np.ndarray, pole: np.ndarray, weight: np.ndarray) -> None:
    """Move one arm from its current channels towards (wrist, pole) by weight [T] in 0..1."""
    w = weight[:, None]
    pose.wrist[:, side] = pose.wrist[:, side] * (1.0 - w) + wrist * w
    pose.elbow_pole[:, side] = pose.elbow_pole[:, side] * (1.0 - w) + pole * w


def _timeline(rng, style: Style, active: float, rise=(0.35, 0.6), fall=(0.4, 0.7)):
    """Frame times and the 0-1-0 envelope of an action lasting ``active`` seconds at full pose."""
    t_up, t_down = rng.uniform(*rise) / style.tempo, rng.uniform(*fall) / style.tempo
    n = int(round((t_up + active + t_down + 0.1) * B.FPS))
    t = np.arange(n) / B.FPS
    return t, envelope(t, 0.0, t_up, t_up + active, t_down), t_up


def wave(rng: np.random.Generator, style: Style, state: State, hand: str = "right"):
    """Raise one hand (or both) above the head and wave the forearm side to side."""
    sides = (0, 1) if hand == "both" else (SIDE_INDEX[hand],)
    t, env, t_up = _timeline(rng, style, rng.uniform(1.6, 4.2))
    pose = stand(style, state, len(t))
    freq, amp = rng.uniform(1.4, 2.4) * style.tempo, rng.uniform(0.3, 0.55)
    abduct, flex = rng.uniform(1.45, 2.1), rng.uniform(0.15, 0.6)
    for s in sides:
        phase = 0.0 if s == sides[0] else rng.uniform(0.0, np.pi)
        swing = amp * np.sin(2 * np.pi * freq * (t - t_up) + phase) * np.clip((t - t_up) / 0.3 + 1, 0, 1)
        upper = np.broadcast_to(B.arm_direction(flex, abduct, s), (len(t), 3))
        fore = np.stack([B.OUTWARD[s] * np.sin(swing), np.cos(swing), np.full(len(t), 0.25)], axis=-1)
        wrist, pole = arm_from_dirs(upper, fore, s)
        blend_arm(pose, s, wrist, pole, env)
    pose.spine[:, 1] += 0.05 * env * (len(sides) == 1) * (1 if sides[0] == 1 else -1)
    return pose, state, Phrase("wave", {"hand": hand})


ARM_RAISES = {  # (flex, abduct) of the straight arm at full raise
    "up": (2.95, 0.25), "forward": (1.55, 0.1), "sides": (0.0, 1.55),
}


def raise_arms(rng: np.random.Generator, style: Style, state: State, which: str = "both",
               direction: str = "up", times: int = 1):
    """Raise one or both straight arms up / forward / to the sides, hold, lower (``times`` times)."""
    sides = (0, 1) if which == "both" else (SIDE_INDEX[which],)
    rise, hold, fall = rng.uniform(0.5, 0.9), rng.uniform(0.6, 2.0), rng.uniform(0.5, 0.9)
    rise, fall = rise / style.tempo, fall / style.tempo
    cycle = rise + hold + fall + rng.uniform(0.2, 0.5)
    n = int(round((times * cycle + 0.2) * B.FPS))
    t = np.arange(n) / B.FPS
    env = sum(envelope(t, k * cycle, rise, k * cycle + rise + hold, fall) for k in range(times))
    pose = stand(style, state, n)
    flex, abduct = ARM_RAISES[direction]
    flex, abduct = flex + rng.uniform(-0.15, 0.1), abduct + rng.uniform(-0.1, 0.15)
    for s in sides:
        # Interpolate the arm's angles (not its target point) so the hand sweeps along an arc.
        f = env * flex + (1.0 - env) * 0.06
        a = env * abduct + (1.0 - env) * style.arm_abduct
        reach = style.arm_reach + (0.985 - style.arm_reach) * env
        pose.wrist[:, s] = B.arm_direction(f, a, s) * (reach * B.ARM_LEN[s])[:, None]
        pose.elbow_pole[:, s] = (B.OUTWARD[s] * 0.5, -0.3, -1.0)
    return pose, state, Phrase("raise_arms", {"which": which, "direction": direction, "times": times})


def clap(rng: np.random.Generator, style: Style, state: State, count: int = 4, overhead: bool = False):
    """Clap the hands together ``count`` times, in front of the chest (or above the head)."""
    freq = rng.uniform(1.8, 3.0) * style.tempo
    t, env, t_up = _timeline(rng, style, count / freq)
    pose = stand(style, state, len(t))
    height, reach_fwd = (rng.uniform(0.25, 0.4), rng.uniform(0.1, 0.2)) if overhead else \
        (rng.uniform(-0.3, -0.12), rng.uniform(0.28, 0.38))
    # Gap between the wrists: wide apart, closing to ~8 cm (palms touching) once per beat.
    beat = 0.5 * (1.0 + np.cos(2 * np.pi * freq * (t - t_up)))
    gap = 0.09 + (rng.uniform(0.2, 0.35) if not overhead else 0.2) * (1.0 - beat)
    gap = np.where(t < t_up, 0.4, gap)
    for s in (0, 1):
        shoulder_x = B.OUTWARD[s] * 0.19
        wrist = np.stack([B.OUTWARD[s] * gap / 2 - shoulder_x, np.full(len(t), height),
                          np.full(len(t), reach_fwd)], axis=-1)
        pole = np.broadcast_to(np.array([B.OUTWARD[s] * 0.7, -1.0 if not overhead else 0.2, -0.1]), wrist.shape)
        blend_arm(pose, s, wrist, pole, env)
    return pose, state, Phrase("clap", {"count": count, "overhead": overhead})


def punch(rng: np.random.Generator, style: Style, state: State, hand: str = "right", count: int = 3):
    """Guard up, then punch straight forward ``count`` times (hand 'alternate' switches fists)."""
    sides = [(SIDE_INDEX[hand] if hand != "alternate" else (k + (rng.random() < 0.5)) % 2) for k in range(count)]
    interval = rng.uniform(0.45, 0.8) / style.tempo
    t_guard = rng.uniform(0.4, 0.6)
    n = int(round((t_guard + count * interval + 0.7) * B.FPS))
    t = np.arange(n) / B.FPS
    guard_env = envelope(t, 0.0, t_guard, t_guard + count * interval, 0.5)
    pose = stand(style, state, n)
    guard_pos = {s: np.array([-B.OUTWARD[s] * 0.1, 0.0, 0.28]) for s in (0, 1)}
    extend = {s: np.zeros(n) for s in (0, 1)}
    for k, s in enumerate(sides):
        t0 = t_guard + k * interval
        extend[s] = np.maximum(extend[s], keyframes(t, [t0, t0 + 0.14, t0 + 0.22, t0 + 0.45], [0.0, 1.0, 1.0, 0.0]))
    height = rng.uniform(-0.05, 0.08)
    for s in (0, 1):
        strike = np.array([-B.OUTWARD[s] * 0.14, height, 0.97 * B.ARM_LEN[s]])
        e = extend[s][:, None]
        wrist = guard_pos[s] * (1 - e) + strike * e
        pole = np.broadcast_to(np.array([B.OUTWARD[s] * 0.6, -1.0, -0.2]), wrist.shape)
        blend_arm(pose, s, wrist, pole, guard_env)
        # The punching shoulder drives forward: twist the trunk away from the punching side.
        pose.spine[:, 2] += -B.OUTWARD[s] * 0.3 * extend[s]
        pose.yaw += -B.OUTWARD[s] * 0.08 * extend[s]
    pose.root[:, 1] -= 0.03 * guard_env  # knees a little bent in a fighting stance
    pose.spine[:, 0] += 0.08 * guard_env
    return pose, state, Phrase("punch", {"hand": hand, "count": count})
