"""Frame-rate conversion (numpy only): MDM works at 20 fps, Blender scenes at whatever they are.

A clip of ``n`` frames at ``fps`` spans ``(n - 1) / fps`` seconds from its first to its last frame;
resampling keeps that span, so first and last frames coincide exactly.
"""
from __future__ import annotations

import numpy as np

from . import quaternion as Q


def resampled_length(n_src: int, src_fps: float, dst_fps: float) -> int:
    """Frames needed at ``dst_fps`` to cover the span of ``n_src`` frames at ``src_fps``."""
    if n_src < 1:
        raise ValueError("cannot resample an empty clip")
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be positive, got {src_fps} and {dst_fps}")
    return int(np.floor((n_src - 1) * dst_fps / src_fps + 1e-6)) + 1


def source_positions(n_dst: int, src_fps: float, dst_fps: float) -> np.ndarray:
    """Fractional source-frame index of every destination frame."""
    return np.arange(n_dst, dtype=np.float64) * (src_fps / dst_fps)


def _bracket(pos: np.ndarray, n_src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pos = np.clip(pos, 0.0, n_src - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_src - 1)
    return lo, hi, pos - lo


def sample_linear(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Linear interpolation of x [T, ...] at fractional frame positions ``pos`` [N]."""
    lo, hi, frac = _bracket(np.asarray(pos, np.float64), len(x))
    frac = frac.reshape((-1,) + (1,) * (x.ndim - 1))
    return (x[lo] * (1.0 - frac) + x[hi] * frac).astype(x.dtype, copy=False)


def sample_slerp(q: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions q [T, ..., 4] at fractional frame positions."""
    lo, hi, frac = _bracket(np.asarray(pos, np.float64), len(q))
    frac = frac.reshape((-1,) + (1,) * (q.ndim - 1))
    return Q.slerp(q[lo], q[hi], frac).astype(q.dtype, copy=False)


def resample_linear(x: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    n = resampled_length(len(x), src_fps, dst_fps)
    return sample_linear(x, source_positions(n, src_fps, dst_fps))


def resample_quaternions(q: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    n = resampled_length(len(q), src_fps, dst_fps)
    return sample_slerp(q, source_positions(n, src_fps, dst_fps))
