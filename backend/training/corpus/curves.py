"""Smooth 1-D time curves used by every motion family (numpy; times in seconds)."""
from __future__ import annotations

import numpy as np


def minjerk(x: np.ndarray | float) -> np.ndarray:
    """Minimum-jerk ease 0 -> 1 on x in [0, 1] (zero velocity and acceleration at both ends)."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)


def smoothstep(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """0 before t0, 1 after t1, minimum-jerk in between."""
    if t1 <= t0:
        return (np.asarray(t) >= t0).astype(np.float64)
    return minjerk((np.asarray(t) - t0) / (t1 - t0))


def envelope(t: np.ndarray, t_on: float, rise: float, t_off: float, fall: float) -> np.ndarray:
    """0 -> 1 over [t_on, t_on + rise], held, 1 -> 0 over [t_off, t_off + fall]."""
    return ramp(t, t_on, t_on + rise) * (1.0 - ramp(t, t_off, t_off + fall))


def keyframes(t: np.ndarray, times, values) -> np.ndarray:
    """Piecewise minimum-jerk interpolation through (times[i], values[i]); values may be arrays.

    Every key is reached at rest (zero velocity), which gives the hold-and-move look of deliberate
    actions (squat, bow, raise arms). Before the first / after the last key the value is held.
    """
    t = np.asarray(t, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
    nxt = np.minimum(idx + 1, len(times) - 1)
    span = np.maximum(times[nxt] - times[idx], 1e-9)
    w = minjerk((t - times[idx]) / span)
    w = w.reshape(w.shape + (1,) * (values.ndim - 1))
    return values[idx] * (1.0 - w) + values[nxt] * w


def smooth_noise(rng: np.random.Generator, t: np.ndarray, amplitude: float,
                 freq=(0.15, 0.6), terms: int = 3) -> np.ndarray:
    """Low-frequency wobble (sum of sinusoids with random phase), peak about ``amplitude``."""
    t = np.asarray(t, dtype=np.float64)
    out = np.zeros_like(t)
    for _ in range(terms):
        f = rng.uniform(*freq)
        out += np.sin(2.0 * np.pi * f * t + rng.uniform(0.0, 2.0 * np.pi))
    return out * (amplitude / np.sqrt(terms))


def wrap_angle(a: np.ndarray | float) -> np.ndarray:
    """Map angles to (-pi, pi]."""
    return np.pi - np.mod(np.pi - np.asarray(a, dtype=np.float64), 2.0 * np.pi)


def integrate(rate: np.ndarray, fps: float) -> np.ndarray:
    """Cumulative integral of a per-frame rate (trapezoid), starting at 0 on frame 0."""
    out = np.zeros_like(rate, dtype=np.float64)
    out[1:] = np.cumsum(0.5 * (rate[1:] + rate[:-1]), axis=0) / fps
    return out
