"""The procedural motion corpus: parametric motions on HumanML3D's 22-joint skeleton (target bone
lengths, y-up metres, 20 fps) with captions, for training the embedded demo model.

    from backend.training.corpus import FAMILIES, make_clip, sample_family
    clip = make_clip("walk", np.random.default_rng(0))   # clip.joints [T, 22, 3], clip.captions

``write_corpus`` (writer.py) stores clips in the HumanML3D folder layout.
"""
from __future__ import annotations

import numpy as np

from .base import Style
from .captions import HELD_OUT_PARAPHRASES, producible, sample_captions
from .clip import Clip
from .families import FAMILIES, TooLong

GENERATOR_VERSION = "2"
FAMILY_NAMES = tuple(FAMILIES)


def _plain(d: dict) -> dict:
    """numpy scalars -> Python ones (the params go into JSON)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in d.items()}


def sample_family(rng: np.random.Generator) -> str:
    weights = np.array([FAMILIES[name][0] for name in FAMILY_NAMES])
    return FAMILY_NAMES[int(rng.choice(len(FAMILY_NAMES), p=weights / weights.sum()))]


def make_clip(family: str, rng: np.random.Generator, captions: int = 3) -> Clip:
    """One clip of ``family`` (a key of FAMILIES); deterministic for a given rng state."""
    if family not in FAMILIES:
        raise KeyError(f"unknown motion family {family!r}; choose one of {', '.join(FAMILY_NAMES)}")
    builder = FAMILIES[family][1]
    for _ in range(50):
        style = Style.sample(rng)
        try:
            clip = builder(rng, style)
        except TooLong:
            continue  # a sequence whose two parts do not fit in 196 frames: draw again
        clip.captions = sample_captions(clip.phrases, rng, captions)
        clip.params = {"style": _plain(vars(style)),
                       "phrases": [_plain({"action": p.action, **p.slots}) for p in clip.phrases]}
        return clip
    raise RuntimeError(f"could not fit a {family} clip into the frame limit")


__all__ = ["Clip", "FAMILIES", "FAMILY_NAMES", "GENERATOR_VERSION", "HELD_OUT_PARAPHRASES", "make_clip",
           "producible", "sample_family"]
