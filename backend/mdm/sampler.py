"""The diffusion sampling loop, free of torch: it runs on torch tensors and numpy arrays alike.

The loop only needs a ``denoise_x0(x_t, t) -> x0`` callable (the network, with guidance applied)
and plain arithmetic; noise comes from a ``NoiseSource`` as float32 numpy arrays and is converted
with ``to_array`` (identity for numpy, ``torch.from_numpy(..).to(device)`` for torch). A seeded
numpy generator is the default, so torch and ONNX Runtime runs give the same motion for a seed.

Arrays use the official layout [B, 263, 1, T] (normalised features, frames last), so recorded
noise from the official code replays as is. Public helpers build inpainting masks in the
user-facing layout [K, T, 263] (True = known: taken from the given motion).

DDPM semantics of the official ``p_sample_loop`` (per step t = N-1 ... 0):
    x0 = denoise_x0(x, timestep_map[t]); x0 = x0 * ~known + motion * known   (editing only)
    mean = coef1[t] * x0 + coef2[t] * x                 (float32 coefficients)
    x = mean + (t != 0) * exp(0.5 * log_var[t]) * z      (z drawn every step, also at t = 0)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import Cancelled, InputError
from ..motion.skeleton import FEATURE_DIM, lower_body_feature_mask
from .diffusion import Schedule

Array = Any  # torch.Tensor or np.ndarray


# ---------------------------------------------------------------------------------------------
# noise
# ---------------------------------------------------------------------------------------------
class NoiseSource(Protocol):
    def draw(self, shape: tuple[int, ...]) -> np.ndarray:
        """Standard-normal float32 array of ``shape``."""


class SeededNoise:
    """The default source: numpy's PCG64 generator seeded with the user's seed."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def draw(self, shape):
        return self.rng.standard_normal(shape, dtype=np.float32)


class RecordedNoise:
    """Replays recorded draws in order, e.g. the ``noise`` array [N+1, B, 263, 1, T] of a golden file."""

    def __init__(self, draws: Sequence[np.ndarray] | np.ndarray):
        self.draws = [np.asarray(d, dtype=np.float32) for d in draws]
        self.used = 0

    def draw(self, shape):
        if self.used >= len(self.draws):
            raise InputError(f"the recorded noise holds {len(self.draws)} draws but the sampler needs more "
                             "(one for x_T plus one per step)")
        out = self.draws[self.used]
        if tuple(out.shape) != tuple(shape):
            raise InputError(f"recorded noise draw {self.used} has shape {out.shape}, the sampler needs {tuple(shape)}")
        self.used += 1
        return out


class NoiseRecorder:
    """Wraps a source and keeps every draw (for replay through another runtime)."""

    def __init__(self, source: NoiseSource):
        self.source, self.draws = source, []

    def draw(self, shape):
        out = self.source.draw(shape)
        self.draws.append(out.copy())
        return out


# ---------------------------------------------------------------------------------------------
# loop
# ---------------------------------------------------------------------------------------------
def guided(cond: Array, uncond: Array, scale: float) -> Array:
    """Classifier-free guidance exactly as the official wrapper: uncond + scale * (cond - uncond)."""
    return uncond + float(np.float32(scale)) * (cond - uncond)


@dataclass(frozen=True)
class GuidancePlan:
    """The network passes of one guided denoiser call (the same in every runtime).

    Shortcuts that give the official numbers: scale 1 runs only the conditional pass (the official
    scripts skip the wrapper then), scale 0 or an empty prompt only the unconditional one
    (``uncond + 0 * (...) == uncond``). Transformers run both passes as one batch of 2B; the GRU
    cannot (its official recurrence runs across the batch, so batching would change the result).
    """
    scale: float                  # float32-rounded, as the official y['scale'] tensor
    passes: tuple[str, ...]       # ("cond", "uncond"), ("cond",) or ("uncond",)
    batched: bool                 # both passes in one call of batch 2B: [cond rows, uncond rows]


def plan_guidance(scale: float, conditional: bool, arch: str) -> GuidancePlan:
    scale = float(np.float32(scale))
    passes = ("uncond",) if (not conditional or scale == 0.0) else ("cond",) if scale == 1.0 else ("cond", "uncond")
    return GuidancePlan(scale, passes, len(passes) == 2 and arch != "gru")


def _f32(values) -> list[float]:
    """float64 schedule values rounded to float32, as Python floats (exact in either runtime)."""
    return [float(v) for v in np.asarray(values, dtype=np.float32)]


def sample_loop(denoise_x0: Callable[[Array, int], Array], shape: tuple[int, ...], schedule: Schedule,
                noise: NoiseSource, to_array: Callable[[np.ndarray], Array] = lambda a: a,
                known: np.ndarray | None = None, known_mask: np.ndarray | None = None,
                progress: Callable[[int, int], None] | None = None,
                cancel: Callable[[], bool] | None = None, method: str = "ddpm") -> Array:
    """Run the reverse diffusion from x_T = noise to x_0; returns the final sample in ``shape``.

    known / known_mask: [B, 263, 1, T] float32 motion and bool mask (True = keep the known motion),
    the official in_between / upper_body editing (the x0 prediction is overwritten, x_t is not).
    method: "ddpm" (official p_sample_loop) or "ddim" (eta = 0; deterministic after x_T).
    """
    if method not in ("ddpm", "ddim"):
        raise InputError(f"unknown sampling method {method!r}; use 'ddpm' or 'ddim'")
    if (known is None) != (known_mask is None):
        raise InputError("inpainting needs both the known motion and its mask")
    n = schedule.num_steps
    coef1, coef2 = _f32(schedule.posterior_mean_coef1), _f32(schedule.posterior_mean_coef2)
    log_var = np.asarray(schedule.sampling_log_variance, dtype=np.float32)
    sigma = [float(s) if i != 0 else 0.0 for i, s in enumerate(np.exp(np.float32(0.5) * log_var))]
    recip, recipm1 = _f32(schedule.sqrt_recip_alphas_cumprod), _f32(schedule.sqrt_recipm1_alphas_cumprod)
    sqrt_ac_prev = _f32(np.sqrt(np.float32(schedule.alphas_cumprod_prev)))
    sqrt_1m_ac_prev = _f32(np.sqrt(np.float32(1.0) - np.float32(schedule.alphas_cumprod_prev)))

    if known is not None:
        keep = np.asarray(known_mask, dtype=bool)
        if keep.shape != tuple(shape) or np.shape(known) != tuple(shape):
            raise InputError(f"known motion {np.shape(known)} and mask {keep.shape} must both have shape {tuple(shape)}")
        known_part = to_array(np.where(keep, np.asarray(known, dtype=np.float32), np.float32(0)))
        keep_f, free_f = to_array(keep.astype(np.float32)), to_array((~keep).astype(np.float32))

    x = to_array(noise.draw(shape))
    for k, i in enumerate(reversed(range(n))):
        if cancel is not None and cancel():
            raise Cancelled()
        x0 = denoise_x0(x, int(schedule.timestep_map[i]))
        if known is not None:
            x0 = x0 * free_f + known_part * keep_f
        z = to_array(noise.draw(shape))
        if method == "ddpm":
            x = coef1[i] * x0 + coef2[i] * x + sigma[i] * z
        else:
            eps = (recip[i] * x - x0) / recipm1[i]
            x = x0 * sqrt_ac_prev[i] + sqrt_1m_ac_prev[i] * eps + 0.0 * z
        if progress is not None:
            progress(k + 1, n)
    return x


# ---------------------------------------------------------------------------------------------
# inpainting masks (user layout [K, T, 263], True = known)
# ---------------------------------------------------------------------------------------------
def inbetween_mask(lengths: Sequence[int], n_frames: int, prefix_end: float = 0.25,
                   suffix_start: float = 0.75) -> np.ndarray:
    """Official in_between edit: per sample of length L, frames [int(prefix_end*L), int(suffix_start*L))
    are generated, everything else (including the padding after L) is known. -> [K, T, 263] bool."""
    if not 0.0 <= prefix_end <= suffix_start <= 1.0:
        raise InputError(f"need 0 <= prefix_end <= suffix_start <= 1, got {prefix_end} and {suffix_start}")
    mask = np.ones((len(lengths), n_frames, FEATURE_DIM), dtype=bool)
    for k, length in enumerate(lengths):
        mask[k, int(prefix_end * int(length)):int(suffix_start * int(length))] = False
    return mask


def frame_ranges_mask(n_frames: int, generate: Sequence[tuple[int, int]], num_samples: int = 1) -> np.ndarray:
    """Known everywhere except the half-open frame ranges [start, end) in ``generate``. -> [K, T, 263]."""
    mask = np.ones((num_samples, n_frames, FEATURE_DIM), dtype=bool)
    for start, end in generate:
        if not 0 <= start < end <= n_frames:
            raise InputError(f"frame range [{start}, {end}) is empty or outside the {n_frames}-frame window")
        mask[:, start:end] = False
    return mask


def upper_body_mask(n_frames: int, num_samples: int = 1) -> np.ndarray:
    """Official upper_body edit: root, legs and foot contacts known, the upper body generated."""
    return np.broadcast_to(lower_body_feature_mask(), (num_samples, n_frames, FEATURE_DIM)).copy()


def to_model_layout(a: np.ndarray) -> np.ndarray:
    """[K, T, 263] -> [K, 263, 1, T] (numpy)."""
    return np.ascontiguousarray(np.swapaxes(a, 1, 2)[:, :, None, :])


def from_model_layout(a: np.ndarray) -> np.ndarray:
    """[K, 263, 1, T] -> [K, T, 263] (numpy)."""
    return np.ascontiguousarray(np.swapaxes(a[:, :, 0, :], 1, 2))
