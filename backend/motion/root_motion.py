"""Root motion: keep the body's travel through the scene (``WORLD``) or hold it on the spot
(``IN_PLACE``, what game engines expect of locomotion cycles; the engine moves the character).

In place keeps everything but the horizontal travel: the pelvis height (jumps, sitting), the
turning and the limbs are unchanged. Pure numpy, y-up metres, shared by the add-on and the backend.
"""
from __future__ import annotations

import numpy as np

ROOT_MOTIONS = ("WORLD", "IN_PLACE")


def horizontal_travel(trans: np.ndarray) -> np.ndarray:
    """trans [..., T, 3] (y-up) -> [..., T, 3] its x/z displacement from frame 0 (y = 0)."""
    travel = np.asarray(trans, dtype=np.float64) - np.asarray(trans, dtype=np.float64)[..., :1, :]
    travel[..., 1] = 0.0
    return travel


def hold_in_place(trans: np.ndarray, *points: np.ndarray) -> tuple[np.ndarray, ...]:
    """Remove the horizontal travel: trans [..., T, 3] stays over frame 0's x/z; each of ``points``
    [..., T, N, 3] (joints, vertices) moves with it. Returns (trans, *points) in the input dtypes."""
    travel = horizontal_travel(trans)
    held = (np.asarray(trans) - travel).astype(np.asarray(trans).dtype)
    return (held, *((np.asarray(p) - travel[..., None, :]).astype(np.asarray(p).dtype) for p in points))
