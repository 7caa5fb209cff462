"""Locomotion segments: walk / jog / run forward, backward or sideways, along curves, with a turn
while walking, and turning in place. Each returns (Pose, end State, Phrase)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import body as B
from .base import Phrase, State, Style, end_state
from .curves import integrate, ramp
from .gait import JOG, RUN, SHUFFLE, WALK, Gait, locomote

# Speed ranges (m/s) per gait and pace; the captions name the pace ("slowly", "quickly", ...).
SPEEDS = {
    ("walk", "slow"): (0.6, 0.85), ("walk", "normal"): (0.95, 1.3), ("walk", "fast"): (1.45, 1.7),
    ("jog", "normal"): (1.9, 2.6),
    ("run", "normal"): (3.0, 3.6), ("run", "fast"): (3.7, 4.3),
}
SIDEWAYS_SPEED = (0.35, 0.7)
BACKWARD_SPEED = (0.45, 0.85)
DIRECTIONS = {"forward": 0.0, "backward": np.pi, "left": 0.5 * np.pi, "right": -0.5 * np.pi}
TURNS = {"left": 0.5 * np.pi, "right": -0.5 * np.pi, "around": np.pi}


def gait_for(kind: str, direction: str, speed: float) -> Gait:
    """Gait parameters for a gait kind at a speed (cadence rises with speed, as in people)."""
    if direction in ("left", "right"):
        return replace(WALK, step_rate=1.5 + 0.4 * speed, width=1.3, heel_strike=0.0, toe_off=0.12,
                       clearance=0.05, land_phase=0.5)
    if direction == "backward":
        return replace(WALK, step_rate=1.5 + 0.5 * speed, heel_strike=0.0, toe_off=0.1, land_phase=0.5)
    if kind == "walk":
        return replace(WALK, step_rate=max(1.5, 1.0 + 0.75 * speed))
    if kind == "jog":
        return replace(JOG, step_rate=2.35 + 0.12 * speed)
    return replace(RUN, step_rate=2.5 + 0.15 * speed)


def travel(rng: np.random.Generator, style: Style, state: State, kind: str = "walk",
           direction: str = "forward", pace: str = "normal", seconds: float = 3.0, stop: bool = True,
           turn: str | None = None, curve: float = 0.0):
    """Move for ``seconds`` (then decelerate and settle if ``stop``).

    turn: "left"/"right"/"around" = change heading by 90/90/180 degrees midway while walking on.
    curve: total heading change (rad, + = left) spread evenly over the distance walked.
    """
    if direction == "forward":
        v = rng.uniform(*SPEEDS[(kind, pace)])
    else:
        v = rng.uniform(*(SIDEWAYS_SPEED if direction in ("left", "right") else BACKWARD_SPEED))
    gait = gait_for(kind, direction, v)
    accel = rng.uniform(0.4, 0.7) * (1.0 + 0.25 * (kind != "walk"))
    decel = rng.uniform(0.6, 0.9) * (1.0 + 0.4 * (kind != "walk"))
    settle = 2.2 / (gait.step_rate * style.tempo) if stop else 0.0
    n = int(round((seconds + settle) * B.FPS))
    t = np.arange(n) / B.FPS
    speed = v * ramp(t, 0.0, accel)
    if stop:
        speed = speed * (1.0 - ramp(t, seconds - decel, seconds))
    yaw = np.full(n, state.yaw)
    slots = {"kind": kind, "direction": direction, "pace": pace, "stop": stop}
    if turn is not None:
        angle = TURNS[turn] * rng.uniform(0.93, 1.07)
        t_turn = rng.uniform(0.35, 0.5) * seconds
        duration = abs(angle) / rng.uniform(1.3, 2.0)
        yaw = yaw + angle * ramp(t, t_turn, t_turn + duration)
        slots["turn"] = turn
    if curve:
        dist = integrate(speed, B.FPS)
        yaw = yaw + curve * dist / max(dist[-1], 1e-6)
        slots["curve"] = "left" if curve > 0 else "right"
        slots["circle"] = abs(curve) > 1.8 * np.pi
    pose = locomote(rng, style, state, speed, yaw, gait, move_dir=DIRECTIONS[direction])
    return pose, end_state(pose), Phrase("locomotion", slots)


def turn_in_place(rng: np.random.Generator, style: Style, state: State, turn: str = "left"):
    """Step around on the spot by 90 degrees (left/right) or 180 (around)."""
    angle = TURNS[turn] * rng.uniform(0.93, 1.07)
    if turn == "around" and rng.random() < 0.5:
        angle = -angle  # turning around clockwise or counter-clockwise
    duration = 0.4 + abs(angle) / rng.uniform(1.5, 2.4)
    gait = replace(SHUFFLE, step_rate=rng.uniform(1.7, 2.2))
    n = int(round((duration + 2.2 / (gait.step_rate * style.tempo)) * B.FPS))
    t = np.arange(n) / B.FPS
    yaw = state.yaw + angle * ramp(t, 0.1, duration)
    pose = locomote(rng, style, state, np.zeros(n), yaw, gait)
    return pose, end_state(pose), Phrase("turn", {"turn": turn})
