"""The action families of the corpus: each samples its parameters, chains segments between short
standing (or seated) holds, and returns a Clip. ``FAMILIES`` maps name -> (weight, builder)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from . import body as B
from .arms import clap, punch, raise_arms, wave
from .base import State, Style, stand
from .clip import Clip, assemble
from .jumps import jump, jumping_jacks
from .locomotion import travel, turn_in_place
from .postures import bow, idle, kick, seated, sit_down, squat, stand_up

MIN_FRAMES, MAX_FRAMES = 41, 197  # joints; the 263-d features have one frame less (40..196)


class TooLong(Exception):
    """The segments do not fit into MAX_FRAMES and cropping would cut an action short."""


def _hold(rng, style: Style, state: State, lo: float, hi: float) -> B.Pose:
    n = int(round(rng.uniform(lo, hi) * B.FPS))
    return seated(style, state, n) if state.seated else stand(style, state, n)


def _chain(family: str, rng: np.random.Generator, style: Style, steps: list[Callable], lead=(0.2, 0.8),
           tail=(0.3, 1.0), state: State | None = None, crop_ok: bool = False) -> Clip:
    """Run segment makers ``step(rng, style, state) -> (Pose, State, Phrase)`` between holds.

    Too long a result raises TooLong, unless ``crop_ok`` (an ongoing motion whose caption stays
    true when its end is cut off, like walking on).
    """
    if state is None:
        state = State.standing(rng.uniform(-2.0, 2.0, size=2), rng.uniform(-np.pi, np.pi), style)
    parts, phrases = [_hold(rng, style, state, *lead)], []
    for step in steps:
        pose, state, phrase = step(rng, style, state)
        parts.append(pose)
        phrases.append(phrase)
    used = sum(p.frames for p in parts)
    tail_n = int(round(rng.uniform(*tail) * B.FPS))
    tail_n = int(np.clip(tail_n, MIN_FRAMES - used, MAX_FRAMES - used))
    if tail_n > 0:
        parts.append(seated(style, state, tail_n) if state.seated else stand(style, state, tail_n))
    if used > MAX_FRAMES and not crop_ok:
        raise TooLong(f"{family}: {used} frames")
    pose, joints = assemble(rng, style, parts)
    if len(joints) > MAX_FRAMES:  # keep the beginning, as HumanML3D crops do
        pose, joints = pose.slice(0, MAX_FRAMES), joints[:MAX_FRAMES]
    return Clip(family=family, joints=joints, pose=pose, phrases=phrases)


def _seg(fn, **kwargs):
    return lambda rng, style, state: fn(rng, style, state, **kwargs)


def _pick(rng, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


# ---------------------------------------------------------------------------------------------
# single-action families
# ---------------------------------------------------------------------------------------------
def fam_stand(rng, style):
    variant = _pick(rng, ["still", "look", "shift"], p=[0.6, 0.2, 0.2])
    return _chain("stand", rng, style, [_seg(idle, seconds=rng.uniform(2.0, 6.0), variant=variant)])


def fam_walk(rng, style):
    pace = _pick(rng, ["slow", "normal", "fast"], p=[0.25, 0.5, 0.25])
    stop = rng.random() < 0.4
    seconds = rng.uniform(3.5, 7.0) if stop else rng.uniform(4.0, 9.0)
    return _chain("walk", rng, style, [_seg(travel, kind="walk", pace=pace, seconds=seconds, stop=stop)],
                  tail=(0.3, 1.0) if stop else (0.0, 0.0), crop_ok=not stop)


def fam_walk_backward(rng, style):
    stop = rng.random() < 0.5
    return _chain("walk_backward", rng, style, [_seg(travel, direction="backward", seconds=rng.uniform(2.5, 6.0), stop=stop)],
                  tail=(0.3, 1.0) if stop else (0.0, 0.0), crop_ok=not stop)


def fam_walk_sideways(rng, style):
    direction = _pick(rng, ["left", "right"])
    return _chain("walk_sideways", rng, style, [_seg(travel, direction=direction, seconds=rng.uniform(2.0, 5.0), stop=True)])


def fam_walk_curve(rng, style):
    sign = _pick(rng, [1.0, -1.0])
    circle = rng.random() < 0.35
    curve = sign * (rng.uniform(1.95, 2.1) * np.pi if circle else rng.uniform(0.35, 0.6) * np.pi)
    seconds = rng.uniform(6.5, 8.5) if circle else rng.uniform(4.0, 7.0)
    return _chain("walk_curve", rng, style, [_seg(travel, seconds=seconds, curve=curve, stop=rng.random() < 0.5)],
                  tail=(0.0, 0.5))


def fam_walk_turn(rng, style):
    turn = _pick(rng, ["left", "right", "around"])
    return _chain("walk_turn", rng, style, [_seg(travel, seconds=rng.uniform(4.5, 8.0), turn=turn, stop=rng.random() < 0.5)],
                  tail=(0.0, 0.6))


def fam_jog(rng, style):
    stop = rng.random() < 0.4
    return _chain("jog", rng, style, [_seg(travel, kind="jog", seconds=rng.uniform(3.0, 7.0), stop=stop)],
                  tail=(0.3, 0.8) if stop else (0.0, 0.0), crop_ok=not stop)


def fam_run(rng, style):
    stop = rng.random() < 0.4
    pace = _pick(rng, ["normal", "fast"], p=[0.65, 0.35])
    return _chain("run", rng, style, [_seg(travel, kind="run", pace=pace, seconds=rng.uniform(3.0, 6.5), stop=stop)],
                  tail=(0.3, 0.8) if stop else (0.0, 0.0), crop_ok=not stop)


def fam_turn(rng, style):
    turn = _pick(rng, ["left", "right", "around"], p=[0.3, 0.3, 0.4])
    return _chain("turn", rng, style, [_seg(turn_in_place, turn=turn)])


def fam_jump(rng, style):
    count = int(_pick(rng, [1, 2, 3], p=[0.6, 0.25, 0.15]))
    return _chain("jump", rng, style, [_seg(jump, count=count)])


def fam_jump_forward(rng, style):
    count = int(_pick(rng, [1, 2], p=[0.75, 0.25]))
    return _chain("jump_forward", rng, style, [_seg(jump, count=count, forward=True)])


def fam_jumping_jacks(rng, style):
    return _chain("jumping_jacks", rng, style, [_seg(jumping_jacks, reps=int(rng.integers(2, 7)))])


def fam_squat(rng, style):
    return _chain("squat", rng, style, [_seg(squat, reps=int(_pick(rng, [1, 2, 3, 4], p=[0.4, 0.25, 0.2, 0.15])))])


def fam_sit_down(rng, style):
    return _chain("sit_down", rng, style, [_seg(sit_down, seated_for=rng.uniform(0.5, 2.5))], tail=(0.0, 0.5))


def fam_stand_up(rng, style):
    state = State.standing(rng.uniform(-2.0, 2.0, size=2), rng.uniform(-np.pi, np.pi), style)
    # Start seated: take the end state of a sit-down that is not part of the clip.
    _, seated_state, _ = sit_down(rng, style, state, seated_for=0.0)
    return _chain("stand_up", rng, style, [_seg(stand_up)], lead=(0.5, 2.0), state=seated_state)


def fam_wave(rng, style):
    hand = _pick(rng, ["right", "left", "both"], p=[0.45, 0.35, 0.2])
    return _chain("wave", rng, style, [_seg(wave, hand=hand)], lead=(0.2, 0.5), tail=(0.2, 0.5))


def fam_raise_arms(rng, style):
    which = _pick(rng, ["both", "left", "right"], p=[0.6, 0.2, 0.2])
    direction = "up" if which != "both" else _pick(rng, ["up", "forward", "sides"], p=[0.5, 0.25, 0.25])
    times = int(_pick(rng, [1, 2], p=[0.75, 0.25]))
    return _chain("raise_arms", rng, style, [_seg(raise_arms, which=which, direction=direction, times=times)])


def fam_clap(rng, style):
    return _chain("clap", rng, style, [_seg(clap, count=int(rng.integers(3, 9)), overhead=rng.random() < 0.2)])


def fam_kick(rng, style):
    leg = _pick(rng, ["left", "right"])
    return _chain("kick", rng, style, [_seg(kick, leg=leg, count=int(_pick(rng, [1, 2, 3], p=[0.6, 0.3, 0.1])))])


def fam_punch(rng, style):
    hand = _pick(rng, ["right", "left", "alternate"], p=[0.35, 0.25, 0.4])
    return _chain("punch", rng, style, [_seg(punch, hand=hand, count=int(rng.integers(1, 6)))])


def fam_bow(rng, style):
    return _chain("bow", rng, style, [_seg(bow, depth=_pick(rng, ["slight", "normal", "deep"], p=[0.25, 0.5, 0.25]))])


# ---------------------------------------------------------------------------------------------
# two-part sequences
# ---------------------------------------------------------------------------------------------
def _short_action(rng) -> Callable:
    """A standing -> standing segment short enough to share a clip with another one."""
    kind = _pick(rng, ["walk", "run", "backward", "turn", "jump", "jump_forward", "squat", "wave",
                       "raise", "clap", "kick", "punch", "bow", "jacks"])
    if kind == "walk":
        return _seg(travel, pace=_pick(rng, ["slow", "normal", "fast"]), seconds=rng.uniform(2.5, 4.0))
    if kind == "run":
        return _seg(travel, kind=_pick(rng, ["jog", "run"]), seconds=rng.uniform(2.5, 3.5))
    if kind == "backward":
        return _seg(travel, direction="backward", seconds=rng.uniform(2.0, 3.0))
    if kind == "turn":
        return _seg(turn_in_place, turn=_pick(rng, ["left", "right", "around"]))
    if kind == "jump":
        return _seg(jump, count=int(_pick(rng, [1, 2], p=[0.7, 0.3])))
    if kind == "jump_forward":
        return _seg(jump, forward=True)
    if kind == "squat":
        return _seg(squat, reps=int(_pick(rng, [1, 2], p=[0.7, 0.3])))
    if kind == "wave":
        return _seg(wave, hand=_pick(rng, ["right", "left", "both"]))
    if kind == "raise":
        return _seg(raise_arms, which=_pick(rng, ["both", "left", "right"]))
    if kind == "clap":
        return _seg(clap, count=int(rng.integers(3, 6)))
    if kind == "kick":
        return _seg(kick, leg=_pick(rng, ["left", "right"]))
    if kind == "punch":
        return _seg(punch, hand=_pick(rng, ["right", "left", "alternate"]), count=int(rng.integers(1, 4)))
    if kind == "bow":
        return _seg(bow, depth=_pick(rng, ["slight", "normal", "deep"]))
    return _seg(jumping_jacks, reps=int(rng.integers(2, 4)))


def fam_sequence(rng, style):
    """Two actions in a row ('walks forward then turns left', 'jumps then sits down', ...)."""
    pattern = _pick(rng, ["any", "then_sit", "sit_stand", "walk_turn"], p=[0.55, 0.15, 0.12, 0.18])
    if pattern == "sit_stand":
        steps = [_seg(sit_down, seated_for=rng.uniform(0.5, 1.5)), _seg(stand_up)]
    elif pattern == "then_sit":
        steps = [_short_action(rng), _seg(sit_down, seated_for=rng.uniform(0.5, 1.5))]
    elif pattern == "walk_turn":  # walk, stop, turn on the spot
        steps = [_seg(travel, seconds=rng.uniform(2.5, 4.0)), _seg(turn_in_place, turn=_pick(rng, ["left", "right", "around"]))]
    else:
        steps = [_short_action(rng), _short_action(rng)]
    return _chain("sequence", rng, style, steps, lead=(0.2, 0.5), tail=(0.2, 0.6))


FAMILIES: dict[str, tuple[float, Callable]] = {
    "stand": (0.6, fam_stand),
    "walk": (3.0, fam_walk),
    "walk_backward": (1.0, fam_walk_backward),
    "walk_sideways": (1.0, fam_walk_sideways),
    "walk_curve": (1.0, fam_walk_curve),
    "walk_turn": (1.5, fam_walk_turn),
    "jog": (1.2, fam_jog),
    "run": (2.0, fam_run),
    "turn": (2.0, fam_turn),
    "jump": (2.0, fam_jump),
    "jump_forward": (1.2, fam_jump_forward),
    "jumping_jacks": (1.0, fam_jumping_jacks),
    "squat": (1.0, fam_squat),
    "sit_down": (2.0, fam_sit_down),
    "stand_up": (1.0, fam_stand_up),
    "wave": (2.0, fam_wave),
    "raise_arms": (1.2, fam_raise_arms),
    "clap": (1.0, fam_clap),
    "kick": (2.0, fam_kick),
    "punch": (1.0, fam_punch),
    "bow": (1.0, fam_bow),
    "sequence": (4.0, fam_sequence),
}
