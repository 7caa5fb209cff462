"""Foot lock: pin the feet where the motion says they touch the ground (numpy only).

Diffusion models let planted feet slide a few centimetres per frame ("foot skating"). MDM predicts
a contact label per frame for each ankle and toe (HumanML3D features 259:263); while a joint is in
contact we pin its horizontal position to its mean over that contact, ramp the correction in and
out over a few frames, move the foot rigidly with it, and re-solve the knee with two-bone IK
(hip fixed, thigh and shin lengths kept, the knee stays on its side of the leg). The result is a
target for the SMPL fit: joints [T, 22, 3], y-up metres, HumanML3D order.

Labels are not trusted blindly: a contact counts only within a few centimetres of the joint's
planted height (its 10th-percentile height in the clip), and a run over which the joint strays far
from its mean is a mislabelled step, not a plant, and is left alone. bench/foot_skate.py measures
the effect on the demo model.
"""
from __future__ import annotations

import numpy as np

from .skeleton import FOOT_CONTACT_JOINTS

# (hip, knee, ankle, toe, contact column of the ankle, of the toe) per leg; contact columns follow
# the HumanML3D feature layout: left ankle, left toe, right ankle, right toe
LEGS = ((1, 4, 7, 10, 0, 1), (2, 5, 8, 11, 2, 3))
STRETCH = 0.99                    # the straightest a pinned leg is made (hip-ankle / thigh + shin)
HORIZONTAL = [0, 2]


def contact_segments(contact: np.ndarray, min_frames: int = 2) -> list[tuple[int, int]]:
    """[T] bool -> [(first, last)] inclusive runs of at least ``min_frames`` True frames."""
    padded = np.concatenate([[False], np.asarray(contact, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(s), int(e) - 1) for s, e in zip(edges[0::2], edges[1::2]) if e - s >= min_frames]


def _bridged(runs: list[tuple[int, int]], track: np.ndarray, max_gap: int, max_slide: float) -> list[tuple[int, int]]:
    """Runs with gaps of at most ``max_gap`` frames joined (a label that flickers off for a frame or
    two, e.g. a pivoting toe, is one contact, not two pins at different spots) when the joined run
    still stays within ``max_slide`` of its mean."""
    out: list[tuple[int, int]] = []
    for first, last in runs:
        if out and first - out[-1][1] - 1 <= max_gap:
            joined = track[out[-1][0]:last + 1, HORIZONTAL]
            if np.linalg.norm(joined - joined.mean(0), axis=-1).max() <= max_slide:
                out[-1] = (out[-1][0], last)
                continue
        out.append((first, last))
    return out


def pin_offsets(track: np.ndarray, contact: np.ndarray, min_frames: int = 2, blend_frames: int = 3,
                max_slide: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
    """track [T, 3], contact [T] bool -> (offset [T, 3] horizontal, weight [T] in [0, 1]).

    Inside a contact run the offset moves the joint onto the run's mean x/z (weight 1); for
    ``blend_frames`` frames on either side the run's edge offset is kept with a weight fading
    linearly to zero. Runs closer than ``blend_frames`` frames are joined first, so fades never
    reach into another run; where two fades overlap between runs the offset is their weighted mean
    (continuous: no pop from one pin to the other) and the weight the larger one. The correction to
    apply is ``weight * offset``."""
    n = len(track)
    weighted, total, weight = np.zeros((n, 2)), np.zeros(n), np.zeros(n)
    runs = _bridged(contact_segments(contact, min_frames), track, blend_frames - 1, max_slide)
    for first, last in runs:
        anchor = track[first:last + 1, HORIZONTAL].mean(0)
        if np.linalg.norm(track[first:last + 1, HORIZONTAL] - anchor, axis=-1).max() > max_slide:
            continue   # the joint travels too far for a planted foot: a mislabelled step, left alone
        frames = np.arange(max(0, first - blend_frames), min(n - 1, last + blend_frames) + 1)
        outside = np.maximum(first - frames, frames - last).clip(min=0)
        w = 1.0 - outside / (blend_frames + 1)
        edge = anchor - track[np.clip(frames, first, last)][:, HORIZONTAL]          # [F, 2]
        weighted[frames] += w[:, None] * edge
        total[frames] += w
        weight[frames] = np.maximum(weight[frames], w)
    offset = np.zeros((n, 3))
    offset[:, HORIZONTAL] = weighted / np.maximum(total, 1e-12)[:, None]
    return offset, weight


def two_bone_knee(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, thigh: np.ndarray,
                  shin: np.ndarray, max_reach: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Knee for the ankle target (hip fixed, bone lengths ``thigh``/``shin`` [T]) on the side of the
    original ``knee``; an ankle out of reach (further than ``max_reach`` [T], default the fully
    stretched leg) is pulled in towards the hip. All positions [T, 3] -> (knee, reachable ankle)."""
    to_ankle = ankle - hip
    dist = np.linalg.norm(to_ankle, axis=-1)
    longest = (thigh + shin) * 0.9999
    if max_reach is not None:
        longest = np.minimum(longest, max_reach)
    shortest = np.abs(thigh - shin) * 1.0001 + 1e-9
    clamped = np.clip(dist, shortest, longest)
    axis = to_ankle / np.maximum(dist, 1e-9)[:, None]
    ankle = hip + axis * clamped[:, None]
    along = (thigh ** 2 - shin ** 2 + clamped ** 2) / (2 * clamped)
    radius = np.sqrt(np.maximum(thigh ** 2 - along ** 2, 0.0))
    side = knee - hip
    side = side - (side * axis).sum(-1, keepdims=True) * axis
    side /= np.maximum(np.linalg.norm(side, axis=-1, keepdims=True), 1e-9)
    return hip + axis * along[:, None] + side * radius[:, None], ankle


def lock_feet(joints: np.ndarray, contacts: np.ndarray, threshold: float = 0.5, min_frames: int = 2,
              blend_frames: int = 3, height_tolerance: float = 0.05, max_slide: float = 0.2) -> np.ndarray:
    """joints [T, 22, 3] + contacts [T, 4] (probabilities or 0/1: left ankle, left toe, right ankle,
    right toe) -> joints with the feet pinned during contact; only knees, ankles and toes change."""
    joints = np.asarray(joints, dtype=np.float64)
    contacts = np.asarray(contacts) > threshold
    if joints.ndim != 3 or joints.shape[1:] != (22, 3) or contacts.shape != (len(joints), 4):
        raise ValueError(f"expected joints [T, 22, 3] and contacts [T, 4], got {joints.shape} and {contacts.shape}")
    # a label is only trusted near the ground: each joint's planted height is its low percentile
    heights = joints[:, list(FOOT_CONTACT_JOINTS), 1]
    contacts &= heights < np.percentile(heights, 10, axis=0) + height_tolerance
    out = joints.copy()
    for hip, knee, ankle, toe, c_ankle, c_toe in LEGS:
        off_a, w_a = pin_offsets(joints[:, ankle], contacts[:, c_ankle], min_frames, blend_frames, max_slide)
        off_t, w_t = pin_offsets(joints[:, toe], contacts[:, c_toe], min_frames, blend_frames, max_slide)
        if not (w_a.any() or w_t.any()):
            continue
        # the foot moves rigidly by its pinned joint's correction (their blend when both are pinned)
        both = np.maximum(w_a + w_t, 1e-9)[:, None]
        shift = (off_a * w_a[:, None] + off_t * w_t[:, None]) / both * np.maximum(w_a, w_t)[:, None]
        thigh = np.linalg.norm(joints[:, knee] - joints[:, hip], axis=-1)
        shin = np.linalg.norm(joints[:, ankle] - joints[:, knee], axis=-1)
        # a pin the leg cannot reach leaves a little slide rather than a knee snapping straight:
        # at most STRETCH of the leg's length, or as straight as the leg already was
        reach = np.maximum(STRETCH * (thigh + shin), np.linalg.norm(joints[:, ankle] - joints[:, hip], axis=-1))
        new_knee, new_ankle = two_bone_knee(joints[:, hip], joints[:, knee], joints[:, ankle] + shift, thigh, shin,
                                            reach)
        # the toe: pinned while in contact, else carried along with the ankle; the foot keeps its length
        carried = new_ankle - joints[:, ankle]
        toe_goal = joints[:, toe] + w_t[:, None] * off_t + (1.0 - w_t[:, None]) * carried
        direction = toe_goal - new_ankle
        direction /= np.maximum(np.linalg.norm(direction, axis=-1, keepdims=True), 1e-9)
        foot = np.linalg.norm(joints[:, toe] - joints[:, ankle], axis=-1)
        moved = np.maximum(w_a, w_t) > 0                       # elsewhere the leg stays exactly as it was
        out[moved, knee], out[moved, ankle] = new_knee[moved], new_ankle[moved]
        out[moved, toe] = (new_ankle + direction * foot[:, None])[moved]
    return out
