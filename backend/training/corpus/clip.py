"""A finished corpus clip: segments concatenated, wobbled, height-limited and posed."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import body as B
from .base import Phrase, Style, posture_noise


@dataclass
class Clip:
    family: str
    joints: np.ndarray             # [T, 22, 3] float64, y-up metres, 20 fps
    pose: B.Pose                   # the channels it was posed from (contacts, airborne flags)
    phrases: list[Phrase]          # what happened, in order (drives the captions)
    captions: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)


def assemble(rng: np.random.Generator, style: Style, parts: list[B.Pose]) -> tuple[B.Pose, np.ndarray]:
    """Concatenate segment poses, add posture noise, keep legs within reach, run FK + IK."""
    pose = B.Pose.concat(parts)
    posture_noise(rng, style, pose)
    B.limit_root_height(pose)
    return pose, B.pose_to_joints(pose)
