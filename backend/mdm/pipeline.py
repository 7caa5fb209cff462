"""Text -> motion with an MDM model folder: the API the CLI, the service and editing call.

    gen = MotionGenerator.load(model_dir, device="auto", text_encoder_dir=None)
    result = gen.generate("a person walks forward", seconds=6.0, seed=0)   # GenerationResult
    result.features [K, T, 263] (de-normalised), result.joints [K, T, 22, 3], result.lengths [K]

Frame-count rule: MDM runs at 20 fps, T = int(seconds * 20) frames, at most 196 (9.8 s). Models
trained without ``mask_frames`` (all pre-2025 checkpoints) only ever saw 196-frame inputs, so they
sample 196 frames and the result is cropped to T (official fix for issue #104); ``mask_frames``
models sample exactly T frames.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import CheckpointError, DeviceError, InputError
from ..motion.hml_codec import FPS, MAX_FRAMES, MotionNormalizer, recover_joints_from_features
from ..motion.skeleton import FEATURE_DIM
from . import DEMO_MODEL_DIR
from .checkpoint import load_model
from .denoiser import GuidedDenoiser
from .diffusion import build_schedule
from .sampler import NoiseSource, SeededNoise, from_model_layout, sample_loop, to_model_layout
from .text_encoders import TextEncoder, empty_condition, load_text_encoder

log = logging.getLogger(__name__)

MAX_SECONDS = MAX_FRAMES / FPS  # 9.8
MAX_SAMPLES = 64
MAX_GUIDANCE = 50.0
MAX_PROMPT_CHARS = 10_000


@dataclass
class GenerationResult:
    features: np.ndarray          # [K, T, 263] float32, de-normalised HumanML3D features
    joints: np.ndarray            # [K, T, 22, 3] float32, metres, y up, 20 fps
    lengths: np.ndarray           # [K] int64 valid frames per sample
    recipe: dict = field(default_factory=dict)
    fps: float = FPS

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The shared result format of docs/DESIGN.md (without fitting outputs)."""
        import json
        return {"joints": self.joints.astype(np.float32), "features": self.features.astype(np.float32),
                "lengths": self.lengths.astype(np.int64), "fps": np.float32(self.fps),
                "recipe": np.array(json.dumps(self.recipe, sort_keys=True))}


def resolve_device(device: str | None) -> torch.device:
    """"auto" -> cuda if available else cpu; "cpu"; "cuda" / "cuda:N" (DeviceError if unavailable)."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} was requested but CUDA is not available here "
                              "(no NVIDIA GPU or a CPU-only torch build); use 'cpu' or 'auto'")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    return torch.device(device)


def frames_for_seconds(seconds) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise InputError(f"seconds must be a finite number, got {seconds!r}")
    if seconds <= 0 or seconds > MAX_SECONDS + 1e-9:
        raise InputError(f"seconds must be in (0, {MAX_SECONDS}] (MDM makes at most {MAX_FRAMES} frames at "
                         f"{FPS:g} fps), got {seconds}")
    n = int(seconds * FPS + 1e-6)
    if n < 1:
        raise InputError(f"{seconds} s is shorter than one frame at {FPS:g} fps")
    return min(n, MAX_FRAMES)


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise InputError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def _check_guidance(guidance) -> float:
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance) \
            or not 0 <= guidance <= MAX_GUIDANCE:
        raise InputError(f"guidance must be a finite number in [0, {MAX_GUIDANCE:g}] (2.5 is the usual value), "
                         f"got {guidance!r}")
    return float(guidance)


def _check_prompt(prompt) -> str:
    if prompt is None:
        return ""
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be a string, got {type(prompt).__name__}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"prompt is {len(prompt)} characters long; keep it under {MAX_PROMPT_CHARS}")
    return prompt.strip()


def check_generate_request(prompt, seconds, seed, num_samples, guidance) -> tuple[str, int, int, int, float]:
    """Validate a generate request before any model work -> (prompt, n_frames, seed, num_samples, guidance)."""
    return (_check_prompt(prompt), frames_for_seconds(seconds), _check_int("seed", seed, 0, 2**63 - 1),
            _check_int("num_samples", num_samples, 1, MAX_SAMPLES), _check_guidance(guidance))


class MotionGenerator:
    def __init__(self, loaded, device: torch.device, normalizer: MotionNormalizer,
                 text_encoder: TextEncoder):
        self.model, self.args = loaded.model, loaded.args
        self.model_dir, self.checkpoint_path, self.model_id = loaded.model_dir, loaded.checkpoint_path, loaded.model_id
        self.device, self.normalizer, self.text_encoder = device, normalizer, text_encoder
        self.max_frames = min(MAX_FRAMES, self.model.max_frames)

    @classmethod
    def load(cls, model_dir: str | Path | None = None, device: str = "auto",
             text_encoder_dir: str | Path | None = None) -> "MotionGenerator":
        """Model folder (args.json + model*.pt; None = the embedded demo model) -> ready generator."""
        dev = resolve_device(device)
        if model_dir is None:
            if not (DEMO_MODEL_DIR / "args.json").is_file():
                raise CheckpointError(f"the embedded demo model is not installed ({DEMO_MODEL_DIR} is missing); "
                                      "pass the folder of an MDM model (args.json + model*.pt) instead")
            model_dir = DEMO_MODEL_DIR
        loaded = load_model(model_dir, dev)
        stats_dir = loaded.model_dir if (loaded.model_dir / "Mean.npy").is_file() else None
        try:
            normalizer = MotionNormalizer.from_dir(stats_dir)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot use the Mean.npy/Std.npy of {stats_dir or 'backend/assets/humanml3d'}: "
                                  f"{exc}") from exc
        encoder = load_text_encoder(loaded.args.text_encoder_type, text_encoder_dir, dev)
        return cls(loaded, dev, normalizer, encoder)

    # ------------------------------------------------------------------------------------------
    def _condition(self, prompt: str, batch: int) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        """-> text [K, L, D], pad [K, L] or None, conditional (False for an empty prompt)."""
        if prompt:
            text, pad = self.text_encoder.encode(prompt)
        else:
            text, pad = empty_condition(self.args.text_encoder_type, self.device)
        text = text.expand(batch, -1, -1)
        return text, (None if pad is None else pad.expand(batch, -1)), bool(prompt)

    def _guidance_used(self, guidance: float, conditional: bool) -> float:
        if conditional and self.args.cond_mask_prob == 0 and guidance != 1.0:
            log.warning("%s was trained without condition dropout (cond_mask_prob 0): guidance %.3g is "
                        "replaced by 1 (no classifier-free guidance), as in the official code", self.model_id, guidance)
            return 1.0
        return guidance

    def _schedule(self, steps):
        if steps is not None:
            steps = _check_int("steps", steps, 2, self.args.diffusion_steps)
        return build_schedule(self.args.noise_schedule, self.args.diffusion_steps, steps, self.args.sigma_small)

    def _run(self, shape, schedule, denoiser, noise, known=None, known_mask=None, progress=None,
             cancel=None, sampler="ddpm") -> np.ndarray:
        to_array = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        with torch.inference_mode():
            x = sample_loop(denoiser, shape, schedule, noise, to_array, known, known_mask, progress, cancel, sampler)
        return from_model_layout(x.float().cpu().numpy())      # [K, T, 263] normalised

    def _result(self, normalized: np.ndarray, lengths: np.ndarray, recipe: dict) -> GenerationResult:
        features = self.normalizer.denormalize(normalized).astype(np.float32)
        joints = recover_joints_from_features(features).astype(np.float32)
        recipe.update(model_id=self.model_id, model_dir=str(self.model_dir), arch=self.args.arch,
                      text_encoder=self.args.text_encoder_type, diffusion_steps=self.args.diffusion_steps,
                      device=str(self.device), fps=FPS, backend_version=__version__)
        return GenerationResult(features, joints, lengths.astype(np.int64), recipe)

    # ------------------------------------------------------------------------------------------
    def generate(self, prompt: str, seconds: float = 6.0, seed: int = 0, num_samples: int = 1,
                 guidance: float = 2.5, steps: int | None = None,
                 progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
                 noise: NoiseSource | None = None, sampler: str = "ddpm") -> GenerationResult:
        """``num_samples`` motions of ``seconds`` for ``prompt`` ("" = unconditional)."""
        prompt, n_frames, seed, k, guidance = check_generate_request(prompt, seconds, seed, num_samples, guidance)
        if n_frames > self.max_frames:
            raise InputError(f"this model holds at most {self.max_frames} frames "
                             f"({self.max_frames / FPS:g} s; pos_embed_max_len {self.args.pos_embed_max_len})")
        schedule = self._schedule(steps)
        sampled_frames = n_frames if self.args.mask_frames else self.max_frames
        text, pad, conditional = self._condition(prompt, k)
        used = self._guidance_used(guidance, conditional)
        denoiser = GuidedDenoiser(self.model, text, pad, used, conditional)
        x = self._run((k, FEATURE_DIM, 1, sampled_frames), schedule, denoiser,
                      noise if noise is not None else SeededNoise(seed), progress=progress, cancel=cancel,
                      sampler=sampler)
        recipe = dict(op="generate", prompt=prompt, seconds=float(seconds), n_frames=n_frames,
                      sampled_frames=sampled_frames, seed=seed, num_samples=k, guidance=guidance,
                      guidance_used=used if conditional else 0.0, steps=schedule.num_steps, sampler=sampler,
                      noise="numpy-pcg64" if noise is None else type(noise).__name__)
        return self._result(x[:, :n_frames], np.full(k, n_frames), recipe)

    def edit(self, known_features_normalized: np.ndarray, inpaint_mask: np.ndarray, prompt: str = "",
             seed: int = 0, guidance: float = 2.5, steps: int | None = None, lengths=None,
             progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
             noise: NoiseSource | None = None, sampler: str = "ddpm") -> GenerationResult:
        """Inpainting (official in_between / upper_body editing) on a window of K motions.

        known_features_normalized [K, T, 263]: normalised features (``self.normalizer.normalize``);
        inpaint_mask [K, T, 263] bool, True = keep the known value, False = generate (see
        ``sampler.inbetween_mask`` / ``upper_body_mask`` / ``frame_ranges_mask``); lengths [K] valid
        frames (default T). Known entries come back exactly. An empty prompt fills in unconditionally.
        Models without mask_frames sample a 196-frame window (known zeros, pinned) as the official
        edit.py does, and the result is cropped back to T.
        """
        known = np.asarray(known_features_normalized, dtype=np.float32)
        mask = np.asarray(inpaint_mask)
        if known.ndim != 3 or known.shape[-1] != FEATURE_DIM or known.shape[0] < 1 or known.shape[1] < 1:
            raise InputError(f"known features must have shape [K, T, {FEATURE_DIM}], got {known.shape}")
        if mask.shape != known.shape or mask.dtype != bool:
            raise InputError(f"inpaint_mask must be a bool array of shape {known.shape}, got {mask.dtype} {mask.shape}")
        if not np.isfinite(known[mask]).all():
            raise InputError("known features contain NaN or infinite values")
        k, n_frames, _ = known.shape
        if k > MAX_SAMPLES or n_frames > self.max_frames:
            raise InputError(f"edit window must have at most {MAX_SAMPLES} motions and {self.max_frames} frames, "
                             f"got {k} x {n_frames}")
        lengths = np.full(k, n_frames) if lengths is None else np.asarray(lengths)
        if lengths.shape != (k,) or not np.issubdtype(lengths.dtype, np.integer) or \
                (lengths < 1).any() or (lengths > n_frames).any():
            raise InputError(f"lengths must be {k} integers in [1, {n_frames}], got {lengths!r}")
        prompt = _check_prompt(prompt)
        seed = _check_int("seed", seed, 0, 2**63 - 1)
        guidance = _check_guidance(guidance)
        schedule = self._schedule(steps)

        sampled = n_frames if self.args.mask_frames else self.max_frames
        if sampled > n_frames:  # pad like the official data loader: zeros, pinned by the mask
            known = np.concatenate([known, np.zeros((k, sampled - n_frames, FEATURE_DIM), np.float32)], axis=1)
            mask = np.concatenate([mask, np.ones((k, sampled - n_frames, FEATURE_DIM), bool)], axis=1)
        frame_pad = None
        if self.args.mask_frames and (lengths < n_frames).any():
            frame_pad = torch.from_numpy(np.arange(sampled)[None, :] >= lengths[:, None]).to(self.device)
        text, pad, conditional = self._condition(prompt, k)
        used = self._guidance_used(guidance, conditional)
        denoiser = GuidedDenoiser(self.model, text, pad, used, conditional, frame_pad)
        x = self._run((k, FEATURE_DIM, 1, sampled), schedule, denoiser,
                      noise if noise is not None else SeededNoise(seed),
                      to_model_layout(known), to_model_layout(mask), progress, cancel, sampler)
        recipe = dict(op="edit", prompt=prompt, n_frames=n_frames, sampled_frames=sampled, seed=seed,
                      num_samples=k, guidance=guidance, guidance_used=used if conditional else 0.0,
                      steps=schedule.num_steps, sampler=sampler, known_entries=int(mask[:, :n_frames].sum()),
                      noise="numpy-pcg64" if noise is None else type(noise).__name__)
        return self._result(x[:, :n_frames], lengths, recipe)
