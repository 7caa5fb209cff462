"""Noise schedules of the official MDM diffusion (numpy float64, no torch).

The official code always builds a *spaced* diffusion: it takes the cumulative alphas of the raw
schedule, keeps a subset of the steps (all of them unless respaced), rebuilds the betas from the kept
cumulative alphas, and derives every other array from those rebuilt betas. ``timestep_map`` holds the
original step index of each kept step: that is the ``t`` the network receives.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def _cosine_alpha_bar(s: float) -> float:
    return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


def raw_betas(schedule: str, n: int) -> np.ndarray:
    """[n] float64 betas of the named schedule (``get_named_beta_schedule``)."""
    if schedule == "cosine":
        return np.array([min(1 - _cosine_alpha_bar((i + 1) / n) / _cosine_alpha_bar(i / n), 0.999)
                         for i in range(n)], dtype=np.float64)
    if schedule == "linear":
        scale = 1000 / n
        return np.linspace(scale * 0.0001, scale * 0.02, n, dtype=np.float64)
    raise ValueError(f"unknown noise schedule {schedule!r}")


def space_timesteps(n: int, sections: int | str | list[int]) -> list[int]:
    """Original step indices kept when sampling an n-step model with fewer steps (sorted).

    ``sections``: an int (one evenly strided section), a list of per-section counts (the n steps are
    split into equal sections), a comma-separated string of counts, or "ddimK" (the integer stride
    that yields exactly K steps starting at 0).
    """
    if isinstance(sections, str):
        if sections.startswith("ddim"):
            wanted = int(sections[4:])
            for stride in range(1, n):
                if len(range(0, n, stride)) == wanted:
                    return list(range(0, n, stride))
            if wanted == n:
                return list(range(n))
            raise ValueError(f"cannot take exactly {wanted} steps out of {n} with an integer stride")
        sections = [int(s) for s in sections.split(",")]
    if isinstance(sections, int):
        sections = [sections]
    base, extra = divmod(n, len(sections))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(sections):
        size = base + (1 if i < extra else 0)
        if not 1 <= count <= size:
            raise ValueError(f"cannot take {count} steps out of a section of {size}")
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        position = 0.0
        for _ in range(count):  # accumulated (not k * stride): same float rounding as the official code
            kept.append(start + round(position))
            position += stride
        start += size
    return sorted(set(kept))


@dataclass(frozen=True)
class Schedule:
    """All arrays [N] float64, indexed by the (respaced) step i = 0..N-1."""
    betas: np.ndarray
    alphas_cumprod: np.ndarray
    alphas_cumprod_prev: np.ndarray
    sqrt_alphas_cumprod: np.ndarray
    sqrt_one_minus_alphas_cumprod: np.ndarray
    sqrt_recip_alphas_cumprod: np.ndarray
    sqrt_recipm1_alphas_cumprod: np.ndarray
    posterior_variance: np.ndarray
    posterior_log_variance_clipped: np.ndarray
    posterior_mean_coef1: np.ndarray
    posterior_mean_coef2: np.ndarray
    sampling_log_variance: np.ndarray   # FIXED_SMALL: the clipped posterior one; FIXED_LARGE: log(betas)
    timestep_map: np.ndarray            # [N] int64: original step index fed to the network

    @property
    def num_steps(self) -> int:
        return len(self.betas)


def schedule_from_betas(betas: np.ndarray, timestep_map: np.ndarray | None = None,
                        sigma_small: bool = True) -> Schedule:
    """Derived DDPM arrays of ``GaussianDiffusion`` for the given betas (float64)."""
    betas = np.asarray(betas, dtype=np.float64)
    if len(betas) < 2:
        raise ValueError("a diffusion schedule needs at least 2 steps")
    alphas = 1.0 - betas
    ac = np.cumprod(alphas)
    ac_prev = np.append(1.0, ac[:-1])
    post_var = betas * (1.0 - ac_prev) / (1.0 - ac)
    post_log_var = np.log(np.append(post_var[1], post_var[1:]))
    large_log_var = np.log(np.append(post_var[1], betas[1:]))
    return Schedule(
        betas=betas, alphas_cumprod=ac, alphas_cumprod_prev=ac_prev,
        sqrt_alphas_cumprod=np.sqrt(ac), sqrt_one_minus_alphas_cumprod=np.sqrt(1.0 - ac),
        sqrt_recip_alphas_cumprod=np.sqrt(1.0 / ac), sqrt_recipm1_alphas_cumprod=np.sqrt(1.0 / ac - 1),
        posterior_variance=post_var, posterior_log_variance_clipped=post_log_var,
        posterior_mean_coef1=betas * np.sqrt(ac_prev) / (1.0 - ac),
        posterior_mean_coef2=(1.0 - ac_prev) * np.sqrt(alphas) / (1.0 - ac),
        sampling_log_variance=post_log_var if sigma_small else large_log_var,
        timestep_map=np.arange(len(betas), dtype=np.int64) if timestep_map is None
        else np.asarray(timestep_map, dtype=np.int64),
    )


def build_schedule(noise_schedule: str, diffusion_steps: int, steps: int | str | list[int] | None = None,
                   sigma_small: bool = True) -> Schedule:
    """The schedule a model trained with ``diffusion_steps`` samples with, optionally respaced to
    ``steps`` (see ``space_timesteps``); None keeps every step (what the official scripts do)."""
    ac = np.cumprod(1.0 - raw_betas(noise_schedule, diffusion_steps))
    kept = space_timesteps(diffusion_steps, diffusion_steps if steps is None else steps)
    betas, last = [], 1.0
    for i in kept:
        betas.append(1.0 - ac[i] / last)
        last = ac[i]
    return schedule_from_betas(np.array(betas), np.array(kept), sigma_small)
