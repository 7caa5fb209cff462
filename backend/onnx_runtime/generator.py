"""Run an exported folder with ONNX Runtime: numpy + onnxruntime + tokenizers, no torch.

    gen = OnnxMotionGenerator.load(export_dir, device="auto")
    gen.generate(...) / gen.edit(...)      # the API of mdm.pipeline.MotionGenerator (same motions)

Everything but the two networks is the host code the torch backend runs (``mdm.generation``,
``mdm.sampler``, ``mdm.diffusion``, ``mdm.text_tokens``, ``motion.hml_codec``).
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, DeviceError
from ..mdm.generation import MotionGeneratorBase, load_normalizer
from ..mdm.sampler import guided, plan_guidance, sample_loop
from ..mdm.text_tokens import DIMS, CaptionVocabulary, PromptTokenizer
from ..motion.hml_codec import MAX_FRAMES
from .manifest import ExportManifest, GraphSpec, read_manifest

log = logging.getLogger(__name__)

# device name -> ONNX Runtime execution provider (CPU is always appended as the fallback)
PROVIDERS = {"cuda": "CUDAExecutionProvider", "dml": "DmlExecutionProvider", "coreml": "CoreMLExecutionProvider"}
CACHE_SIZE = 256


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:
        raise DeviceError("onnxruntime is not installed in the backend environment; install "
                          "backend/requirements-onnx.txt (pip install -r backend/requirements-onnx.txt)") from exc
    return onnxruntime


def resolve_providers(device: str | None = "auto") -> tuple[str, list]:
    """"auto" (CUDA when onnxruntime-gpu sees a GPU, else CPU), "cpu", "cuda[:N]", "dml[:N]", "coreml"
    -> (device name, providers for ``InferenceSession``)."""
    available = _ort().get_available_providers()
    if device is None or device == "auto":
        device = "cuda" if PROVIDERS["cuda"] in available else "cpu"
    match = re.fullmatch(r"(cpu|cuda|dml|coreml)(?::(\d+))?", device) if isinstance(device, str) else None
    if match is None or (match.group(1) in ("cpu", "coreml") and match.group(2)):
        raise DeviceError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' (onnxruntime-gpu), "
                          "'dml' (onnxruntime-directml) or 'coreml'")
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return "cpu", ["CPUExecutionProvider"]
    if PROVIDERS[kind] not in available:
        raise DeviceError(f"device {device!r} needs ONNX Runtime's {PROVIDERS[kind]}, but this onnxruntime "
                          f"build only has {', '.join(available)}; install the matching onnxruntime package "
                          "(e.g. onnxruntime-gpu instead of onnxruntime) or use 'cpu'")
    provider = (PROVIDERS[kind], {"device_id": int(index)}) if index else PROVIDERS[kind]
    return device, [provider, "CPUExecutionProvider"]


def open_session(folder: Path, spec: GraphSpec, providers: list, threads: int | None = None):
    ort = _ort()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT warns about every node it keeps on the CPU
    if threads:
        options.intra_op_num_threads = threads
    if PROVIDERS["dml"] in [p if isinstance(p, str) else p[0] for p in providers]:
        options.enable_mem_pattern = False  # the DirectML provider requires both (ONNX Runtime docs)
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    path = folder / spec.file
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT raises its own Fail / InvalidGraph / NoSuchFile types
        raise CheckpointError(f"ONNX Runtime cannot load {path} ({str(exc).strip()[:300]}); the file is damaged "
                              "or needs a newer onnxruntime: export the model again or update onnxruntime") from exc
    found = [i.name for i in session.get_inputs()]
    if found != spec.input_names:
        raise CheckpointError(f"{path} takes inputs {found} but its manifest lists {spec.input_names}; "
                              "export the model again")
    return session


class OnnxTextEncoder:
    """``encode(prompt) -> (text [1, L, D] float32, None)``, cached per prompt (as the torch encoders)."""

    def __init__(self, manifest: ExportManifest, providers: list, threads: int | None = None):
        self.kind = manifest.text_kind
        settings = manifest.tokenizer
        try:
            self.tokens = PromptTokenizer.from_file(self.kind, manifest.folder / settings["file"],
                                                    int(settings["max_tokens"]), dict(settings["special_ids"]))
        except Exception as exc:  # tokenizers raises plain Exceptions for damaged files
            raise CheckpointError(f"cannot read the tokenizer of {manifest.folder} ({exc}); "
                                  "export the model again") from exc
        self.session = open_session(manifest.folder, manifest.text_encoder, providers, threads)
        self._cache: OrderedDict[str, tuple[np.ndarray, None]] = OrderedDict()

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """ids [B, L] int64 (no padding) -> condition [B, 1 or L, D] float32."""
        feed = {"input_ids": ids}
        if self.kind != "clip":
            feed["attention_mask"] = np.ones_like(ids)
        return self.session.run(None, feed)[0]

    def encode(self, prompt: str) -> tuple[np.ndarray, None]:
        if prompt in self._cache:
            self._cache.move_to_end(prompt)
            return self._cache[prompt]
        out = (self.embed(np.array([self.tokens.ids(prompt)], dtype=np.int64)), None)
        self._cache[prompt] = out
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return out


class OnnxGuidedDenoiser:
    """The numpy twin of ``mdm.denoiser.GuidedDenoiser``: same passes (``plan_guidance``), same combine.

    text [K, L, D]; text_pad [K, L] bool or None; frame_pad [K, T] bool or None. Inputs the graph
    has but the call does not need are fed neutral values (no padding, nothing dropped), which is
    what the torch network computes when they are None.
    """

    def __init__(self, session, input_names: list[str], arch: str, text: np.ndarray, text_pad=None,
                 scale: float = 2.5, conditional: bool = True, frame_pad=None):
        self.session, self.batch = session, text.shape[0]
        self.plan = plan_guidance(scale, conditional, arch)
        b, n_text = self.batch, text.shape[1]
        fixed = {"text": np.ascontiguousarray(text, dtype=np.float32),
                 "text_pad": np.zeros((b, n_text), bool) if text_pad is None else np.asarray(text_pad, bool)}
        self.frame_pad = None if frame_pad is None else np.asarray(frame_pad, bool)
        self.wants_frame_pad = "frame_pad" in input_names
        wanted = [n for n in input_names if n in fixed]
        drops = {"cond": np.zeros(b, bool), "uncond": np.ones(b, bool)}
        if self.plan.batched:  # one call of batch 2B: [cond rows, uncond rows]
            self.feeds = {"both": {**{n: np.concatenate([fixed[n], fixed[n]]) for n in wanted},
                                   "drop_text": np.concatenate([drops["cond"], drops["uncond"]])}}
        else:
            self.feeds = {p: {**{n: fixed[n] for n in wanted}, "drop_text": drops[p]} for p in self.plan.passes}

    def _run(self, feed: dict, x: np.ndarray, t) -> np.ndarray:
        n = x.shape[0]
        steps = np.full(n, t, np.int64) if np.ndim(t) == 0 else np.concatenate([t] * (n // len(t))).astype(np.int64)
        inputs = {**feed, "x": x, "timesteps": steps}
        if self.wants_frame_pad:
            pad = np.zeros(x.shape[:2], bool) if self.frame_pad is None else self.frame_pad
            inputs["frame_pad"] = np.concatenate([pad] * (n // pad.shape[0]))
        return self.session.run(None, inputs)[0]

    def __call__(self, x_t: np.ndarray, t) -> np.ndarray:
        """x_t [B, 263, 1, T], t (one step, or [B] int64) -> guided x0 prediction [B, 263, 1, T]."""
        x = np.ascontiguousarray(x_t[:, :, 0, :].transpose(0, 2, 1), dtype=np.float32)   # [B, T, 263]
        b = self.batch
        if self.plan.batched:
            out = self._run(self.feeds["both"], np.concatenate([x, x]), t)
            x0 = guided(out[:b], out[b:], self.plan.scale)
        else:
            runs = {p: self._run(feed, x, t) for p, feed in self.feeds.items()}
            x0 = next(iter(runs.values())) if len(runs) == 1 else guided(runs["cond"], runs["uncond"], self.plan.scale)
        return np.ascontiguousarray(x0.transpose(0, 2, 1)[:, :, None, :])


class OnnxMotionGenerator(MotionGeneratorBase):
    runtime = "onnx"

    def __init__(self, manifest: ExportManifest, device: str, providers: list, threads: int | None = None):
        self.manifest, self.args = manifest, manifest.args
        self.model_dir, self.model_id, self.device = manifest.folder, manifest.model_id, device
        self.normalizer = load_normalizer(manifest.folder)
        self.max_frames = min(MAX_FRAMES, self.args.max_frames)
        self.session = open_session(manifest.folder, manifest.denoiser, providers, threads)
        self.text_encoder = OnnxTextEncoder(manifest, providers, threads)
        self.caption_vocabulary = CaptionVocabulary.read(manifest.folder, self.args.text_encoder_type)
        self.providers = self.session.get_providers()

    @classmethod
    def load(cls, export_dir: str | Path, device: str = "auto", text_encoder_dir=None,
             threads: int | None = None) -> "OnnxMotionGenerator":
        """An exported folder (see manifest.py) -> ready generator. ``text_encoder_dir`` is not used:
        the folder carries its own text encoder."""
        manifest = read_manifest(export_dir)
        name, providers = resolve_providers(device)
        if text_encoder_dir is not None:
            log.info("%s carries its own text encoder; text_encoder_dir %s is not used", export_dir, text_encoder_dir)
        return cls(manifest, name, providers, threads)

    def _denoiser(self, prompt, batch, scale, conditional, frame_pad, hidden_rows):
        if prompt:
            text, pad = self.text_encoder.encode(prompt)
            if hidden_rows:   # one prompt has no padding (pad None): the hidden rows become the padding
                pad = np.zeros(text.shape[:2], bool)
                pad[:, hidden_rows] = True
        else:  # placeholder of the right width: the unconditional pass zeroes it anyway
            text, pad = np.zeros((1, 1, DIMS[self.args.text_encoder_type]), np.float32), None
        text = np.broadcast_to(text, (batch,) + text.shape[1:])
        pad = None if pad is None else np.broadcast_to(pad, (batch,) + pad.shape[1:])
        return OnnxGuidedDenoiser(self.session, self.manifest.denoiser.input_names, self.args.arch, text, pad,
                                  scale, conditional, frame_pad)

    def _sample(self, denoiser, shape, schedule, noise, known=None, known_mask=None, progress=None,
                cancel=None, sampler="ddpm") -> np.ndarray:
        return sample_loop(denoiser, shape, schedule, noise, lambda a: a, known, known_mask, progress, cancel, sampler)
