"""Text -> motion, independent of the runtime: request checks, the frame-count rule, generate/edit.

``MotionGeneratorBase`` implements ``generate`` and ``edit`` (validation, schedule, guidance rule,
frame padding, sampling with ``sampler.sample_loop``, de-normalisation, joints, recipe); a runtime
subclass supplies the guided denoiser and runs the loop on its arrays:

- ``backend.mdm.pipeline.MotionGenerator``: torch (official checkpoints);
- ``backend.onnx_runtime.generator.OnnxMotionGenerator``: ONNX Runtime (an exported folder), no torch.

Frame-count rule: MDM runs at 20 fps, T = int(seconds * 20) frames, at most 196 (9.8 s). Models
trained without ``mask_frames`` (all pre-2025 checkpoints) only ever saw 196-frame inputs, so they
sample 196 frames and the result is cropped to T (official fix for issue #104); ``mask_frames``
models sample exactly T frames.

This module never imports torch.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import CheckpointError, InputError
from ..motion.hml_codec import FPS, MAX_FRAMES, MotionNormalizer, recover_joints_from_features
from ..motion.skeleton import FEATURE_DIM
from .args import ModelArgs
from .diffusion import Schedule, build_schedule
from .sampler import NoiseSource, SeededNoise, from_model_layout, to_model_layout
from .text_tokens import WORD_ROW_OFFSET, CaptionVocabulary

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
        return {"joints": self.joints.astype(np.float32), "features": self.features.astype(np.float32),
                "lengths": self.lengths.astype(np.int64), "fps": np.float32(self.fps),
                "recipe": np.array(json.dumps(self.recipe, sort_keys=True))}


# ---------------------------------------------------------------------------------------------
# request checks (before any model work)
# ---------------------------------------------------------------------------------------------
def frames_for_seconds(seconds) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise InputError(f"seconds must be a finite number, got {seconds!r}")
    if seconds <= 0 or seconds > MAX_SECONDS + 1e-9:
        raise InputError(f"seconds must be in (0, {MAX_SECONDS}] (MDM makes at most {MAX_FRAMES} frames at "
                         f"{FPS:g} fps), got {seconds}")
    n = int(seconds * FPS)  # official: int(motion_length * fps)
    if n < 1:
        raise InputError(f"{seconds} s is shorter than one frame at {FPS:g} fps")
    return min(n, MAX_FRAMES)


def check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise InputError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return int(value)


def check_guidance(guidance) -> float:
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not math.isfinite(guidance) \
            or not 0 <= guidance <= MAX_GUIDANCE:
        raise InputError(f"guidance must be a finite number in [0, {MAX_GUIDANCE:g}] (2.5 is the usual value), "
                         f"got {guidance!r}")
    return float(guidance)


def check_prompt(prompt) -> str:
    if prompt is None:
        return ""
    if not isinstance(prompt, str):
        raise InputError(f"prompt must be a string, got {type(prompt).__name__}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(f"prompt is {len(prompt)} characters long; keep it under {MAX_PROMPT_CHARS}")
    return prompt.strip()


def check_generate_request(prompt, seconds, seed, num_samples, guidance) -> tuple[str, int, int, int, float]:
    """Validate a generate request before any model work -> (prompt, n_frames, seed, num_samples, guidance)."""
    return (check_prompt(prompt), frames_for_seconds(seconds), check_int("seed", seed, 0, 2**63 - 1),
            check_int("num_samples", num_samples, 1, MAX_SAMPLES), check_guidance(guidance))


def check_edit_window(known, mask, lengths, max_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """known [K, T, 263] float32, mask [K, T, 263] bool, lengths [K] (None = T) -> checked arrays."""
    known = np.asarray(known, dtype=np.float32)
    mask = np.asarray(mask)
    if known.ndim != 3 or known.shape[-1] != FEATURE_DIM or known.shape[0] < 1 or known.shape[1] < 1:
        raise InputError(f"known features must have shape [K, T, {FEATURE_DIM}], got {known.shape}")
    if mask.shape != known.shape or mask.dtype != bool:
        raise InputError(f"inpaint_mask must be a bool array of shape {known.shape}, got {mask.dtype} {mask.shape}")
    if not np.isfinite(known[mask]).all():
        raise InputError("known features contain NaN or infinite values")
    k, n_frames, _ = known.shape
    if k > MAX_SAMPLES or n_frames > max_frames:
        raise InputError(f"edit window must have at most {MAX_SAMPLES} motions and {max_frames} frames, "
                         f"got {k} x {n_frames}")
    lengths = np.full(k, n_frames) if lengths is None else np.asarray(lengths)
    if lengths.shape != (k,) or not np.issubdtype(lengths.dtype, np.integer) or \
            (lengths < 1).any() or (lengths > n_frames).any():
        raise InputError(f"lengths must be {k} integers in [1, {n_frames}], got {lengths!r}")
    return known, mask, lengths


def load_normalizer(stats_dir: Path | None) -> MotionNormalizer:
    """Mean.npy/Std.npy of a model folder (None = the HumanML3D statistics shipped with the backend)."""
    try:
        return MotionNormalizer.from_dir(stats_dir)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot use the Mean.npy/Std.npy of {stats_dir or 'backend/assets/humanml3d'}: "
                              f"{exc}") from exc


# ---------------------------------------------------------------------------------------------
# generate / edit
# ---------------------------------------------------------------------------------------------
Denoiser = Callable  # denoise_x0(x_t [B, 263, 1, T], t) -> x0, on the runtime's arrays


class MotionGeneratorBase:
    """Shared generate/edit. Subclasses set the attributes below and implement the two hooks."""

    runtime = ""                 # "torch" | "onnx" (goes into the recipe)
    args: ModelArgs
    model_dir: Path
    model_id: str
    device: object               # printed into the recipe
    normalizer: MotionNormalizer
    max_frames: int
    text_encoder: object         # has ``tokens`` (text_tokens.PromptTokenizer)
    caption_vocabulary: CaptionVocabulary | None = None   # per-word models trained by this project
    reword_unseen_words = True   # False: unseen words are only hidden (bench/demo_model.py --no-rewording)

    def _denoiser(self, prompt: str, batch: int, scale: float, conditional: bool,
                  frame_pad: np.ndarray | None, hidden_rows: list[int]) -> Denoiser:
        """The guided denoiser for ``batch`` samples of ``prompt``; frame_pad [B, T] bool or None;
        hidden_rows: condition rows to hide from attention (see ``_read_prompt``)."""
        raise NotImplementedError

    def _sample(self, denoiser: Denoiser, shape, schedule: Schedule, noise: NoiseSource, known=None,
                known_mask=None, progress=None, cancel=None, sampler="ddpm") -> np.ndarray:
        """Run ``sampler.sample_loop`` on the runtime's arrays -> final sample [K, 263, 1, T] numpy."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------
    def _guidance_used(self, guidance: float, conditional: bool) -> float:
        if conditional and self.args.cond_mask_prob == 0 and guidance != 1.0:
            log.warning("%s was trained without condition dropout (cond_mask_prob 0): guidance %.3g is "
                        "replaced by 1 (no classifier-free guidance), as in the official code", self.model_id, guidance)
            return 1.0
        return guidance

    def _read_prompt(self, prompt: str) -> tuple[str, list[int], dict]:
        """-> (the prompt the network reads, condition rows to hide, recipe entries).

        Only models with a ``caption_vocabulary.json`` (see ``text_tokens.CaptionVocabulary``) change
        anything: an unseen verb WordNet relates to a caption word is replaced by it (recipe
        ``reworded``: {typed: read}), and the rows of words still unseen are hidden (``unseen_words``),
        so the user can see what was read differently or not at all."""
        if self.caption_vocabulary is None or not prompt:
            return prompt, [], {}
        tokens = self.text_encoder.tokens
        offset = WORD_ROW_OFFSET[self.args.text_encoder_type]

        def unseen(text: str) -> tuple[list[int], list[str]]:
            rows = self.caption_vocabulary.hidden_rows(tokens.ids(text))
            words = tokens.words_at(text, [r - offset for r in rows])
            return rows, [w for w in words if any(c.isalnum() for c in w)]   # "." is hidden, not named

        read, reworded = prompt, {}
        rewording = self.caption_vocabulary.rewording(tokens) if self.reword_unseen_words else None
        if rewording is not None:
            read, reworded = rewording.reword(prompt, unseen(prompt)[1])
        rows, words = unseen(read)
        if reworded:
            log.info("%s reads %s", self.model_id, ", ".join(f"{a!r} as {b!r}" for a, b in reworded.items()))
        if words:
            log.info("%s never saw these words in training; they are hidden, the sentence embedding carries them: %s",
                     self.model_id, ", ".join(words))
        return read, rows, {"unseen_words": words, **({"reworded": reworded} if reworded else {})}

    def _schedule(self, steps) -> Schedule:
        if steps is not None:
            steps = check_int("steps", steps, 2, self.args.diffusion_steps)
        return build_schedule(self.args.noise_schedule, self.args.diffusion_steps, steps, self.args.sigma_small)

    def _result(self, sample: np.ndarray, n_frames: int, lengths: np.ndarray, recipe: dict) -> GenerationResult:
        normalized = from_model_layout(np.asarray(sample, dtype=np.float32))[:, :n_frames]   # [K, T, 263]
        features = self.normalizer.denormalize(normalized).astype(np.float32)
        joints = recover_joints_from_features(features).astype(np.float32)
        recipe.update(model_id=self.model_id, model_dir=str(self.model_dir), arch=self.args.arch,
                      text_encoder=self.args.text_encoder_type, diffusion_steps=self.args.diffusion_steps,
                      device=str(self.device), runtime=self.runtime, fps=FPS, backend_version=__version__)
        return GenerationResult(features, joints, lengths.astype(np.int64), recipe)

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
        conditional = bool(prompt)
        used = self._guidance_used(guidance, conditional)
        read, hidden_rows, unseen = self._read_prompt(prompt)
        denoiser = self._denoiser(read, k, used, conditional, None, hidden_rows)
        x = self._sample(denoiser, (k, FEATURE_DIM, 1, sampled_frames), schedule,
                         noise if noise is not None else SeededNoise(seed), progress=progress, cancel=cancel,
                         sampler=sampler)
        recipe = dict(op="generate", prompt=prompt, seconds=float(seconds), n_frames=n_frames,
                      sampled_frames=sampled_frames, seed=seed, num_samples=k, guidance=guidance,
                      guidance_used=used if conditional else 0.0, steps=schedule.num_steps, sampler=sampler,
                      noise="numpy-pcg64" if noise is None else type(noise).__name__, **unseen)
        return self._result(x, n_frames, np.full(k, n_frames), recipe)

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
        known, mask, lengths = check_edit_window(known_features_normalized, inpaint_mask, lengths, self.max_frames)
        prompt = check_prompt(prompt)
        seed = check_int("seed", seed, 0, 2**63 - 1)
        guidance = check_guidance(guidance)
        schedule = self._schedule(steps)
        k, n_frames, _ = known.shape

        sampled = n_frames if self.args.mask_frames else self.max_frames
        if sampled > n_frames:  # pad like the official data loader: zeros, pinned by the mask
            known = np.concatenate([known, np.zeros((k, sampled - n_frames, FEATURE_DIM), np.float32)], axis=1)
            mask = np.concatenate([mask, np.ones((k, sampled - n_frames, FEATURE_DIM), bool)], axis=1)
        frame_pad = None
        if self.args.mask_frames and (lengths < n_frames).any():
            frame_pad = np.arange(sampled)[None, :] >= lengths[:, None]                  # [K, T] bool
        conditional = bool(prompt)
        used = self._guidance_used(guidance, conditional)
        read, hidden_rows, unseen = self._read_prompt(prompt)
        denoiser = self._denoiser(read, k, used, conditional, frame_pad, hidden_rows)
        x = self._sample(denoiser, (k, FEATURE_DIM, 1, sampled), schedule,
                         noise if noise is not None else SeededNoise(seed),
                         to_model_layout(known), to_model_layout(mask), progress, cancel, sampler)
        recipe = dict(op="edit", prompt=prompt, n_frames=n_frames, sampled_frames=sampled, seed=seed,
                      num_samples=k, guidance=guidance, guidance_used=used if conditional else 0.0,
                      steps=schedule.num_steps, sampler=sampler, known_entries=int(mask[:, :n_frames].sum()),
                      noise="numpy-pcg64" if noise is None else type(noise).__name__, **unseen)
        return self._result(x, n_frames, lengths, recipe)
