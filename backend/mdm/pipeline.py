"""Text -> motion with an MDM model folder on torch: the API the CLI, the service and editing call.

    gen = MotionGenerator.load(model_dir, device="auto", text_encoder_dir=None)
    result = gen.generate("a person walks forward", seconds=6.0, seed=0)   # GenerationResult
    result.features [K, T, 263] (de-normalised), result.joints [K, T, 22, 3], result.lengths [K]

generate/edit, their checks and the frame-count rule live in the torch-free ``generation.py``
(shared with the ONNX Runtime backend); this module adds the torch network and text encoder.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, DeviceError
from ..motion.hml_codec import MAX_FRAMES
from . import DEMO_MODEL_DIR
from .checkpoint import load_model
from .denoiser import GuidedDenoiser
from .generation import (MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_SAMPLES, MAX_SECONDS,  # noqa: F401  (re-exported)
                         GenerationResult, MotionGeneratorBase, check_generate_request, frames_for_seconds,
                         load_normalizer)
from .sampler import sample_loop
from .text_encoders import TextEncoder, empty_condition, load_text_encoder
from .text_tokens import CaptionVocabulary


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


class MotionGenerator(MotionGeneratorBase):
    runtime = "torch"

    def __init__(self, loaded, device: torch.device, normalizer, text_encoder: TextEncoder):
        self.model, self.args = loaded.model, loaded.args
        self.model_dir, self.checkpoint_path, self.model_id = loaded.model_dir, loaded.checkpoint_path, loaded.model_id
        self.device, self.normalizer, self.text_encoder = device, normalizer, text_encoder
        self.max_frames = min(MAX_FRAMES, self.model.max_frames)
        self.caption_vocabulary = CaptionVocabulary.read(self.model_dir, self.args.text_encoder_type)

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
        normalizer = load_normalizer(loaded.model_dir if (loaded.model_dir / "Mean.npy").is_file() else None)
        encoder = load_text_encoder(loaded.args.text_encoder_type, text_encoder_dir, dev)
        return cls(loaded, dev, normalizer, encoder)

    def _denoiser(self, prompt, batch, scale, conditional, frame_pad, hidden_rows):
        if prompt:
            text, pad = self.text_encoder.encode(prompt)
            if hidden_rows:   # one prompt has no padding (pad None): the hidden rows become the padding
                pad = torch.zeros(text.shape[:2], dtype=torch.bool, device=self.device)
                pad[:, hidden_rows] = True
        else:
            text, pad = empty_condition(self.args.text_encoder_type, self.device)
        text = text.expand(batch, -1, -1)                                     # [K, L, D]
        pad = None if pad is None else pad.expand(batch, -1)
        frame_pad = None if frame_pad is None else torch.from_numpy(frame_pad).to(self.device)
        return GuidedDenoiser(self.model, text, pad, scale, conditional, frame_pad)

    def _sample(self, denoiser, shape, schedule, noise, known=None, known_mask=None, progress=None,
                cancel=None, sampler="ddpm") -> np.ndarray:
        to_array = lambda a: torch.from_numpy(a).to(self.device)  # noqa: E731
        with torch.inference_mode():
            x = sample_loop(denoiser, shape, schedule, noise, to_array, known, known_mask, progress, cancel, sampler)
        return x.float().cpu().numpy()                                        # [K, 263, 1, T] normalised
