"""Export an MDM model folder to ONNX: ONE denoiser call + the text encoder's forward (needs torch).

Why one call (not the sampling loop): a traced loop grows with the step count (export time and
graph size O(steps)), draws its noise inside the graph (ONNX Runtime's RNG is not torch's, so no
two runs agree) and fixes the step count. Here the loop, noise, guidance and inpainting stay on
the host (``mdm.sampler``), so export time is independent of the number of diffusion steps and
the same recorded noise gives the same motion in both runtimes.

Exporter: torch.export (``dynamo=True``) with dynamic batch / frame (/ token) axes. The one
exception is the GRU: torch.export unrolls ``nn.GRU`` over its sequence axis, which for MDM is the
BATCH (the official recurrence runs across the samples), fixing the batch size; ``OnnxGRU`` emits
one ONNX GRU op per layer instead, which takes any batch.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.export import Dim

from .. import __version__
from ..errors import InputError
from ..mdm.args import args_to_json_dict
from ..mdm.checkpoint import file_sha256, load_model
from ..mdm.generation import load_normalizer
from ..mdm.network import MDM, NFEATS
from ..mdm.text_encoders import TextEncoder, load_text_encoder
from ..mdm.text_tokens import CAPTION_VOCABULARY, POOLED, CaptionVocabulary
from ..motion.hml_codec import MAX_FRAMES
from . import MANIFEST_NAME, is_onnx_export
from .manifest import FORMAT, FORMAT_VERSION, write_manifest

log = logging.getLogger(__name__)

DENOISER_FILE, TEXT_FILE, TOKENIZER_FILE = "denoiser.onnx", "text_encoder.onnx", "tokenizer.json"
# Example sizes for tracing: distinct, and never 0 or 1 (torch.export specialises those).
EXAMPLE_BATCH, EXAMPLE_FRAMES, EXAMPLE_TOKENS = 3, 23, 7
MAX_BATCH = 4096
MAX_TOKENS = 512


class OnnxGRU(nn.Module):
    """Stands in for ``MDM.gru`` during export, with the same call: [T, B, d] -> ([T, B, d], None).

    MDM feeds its batch_first GRU a [T, B, d] tensor, so the recurrence runs over the B samples,
    independently per frame: in ONNX GRU terms (layout 0: [seq, batch, input]) the input is the
    [B, T, d] tensor itself. PyTorch's gate order r, z, n becomes ONNX's z, r, h;
    ``linear_before_reset=1`` is PyTorch's n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
    """

    def __init__(self, gru: nn.GRU):
        super().__init__()
        h = self.hidden = gru.hidden_size
        self.layers = gru.num_layers
        order = torch.cat([torch.arange(h, 2 * h), torch.arange(0, h), torch.arange(2 * h, 3 * h)])
        for k in range(self.layers):
            w_ih, w_hh = getattr(gru, f"weight_ih_l{k}"), getattr(gru, f"weight_hh_l{k}")
            b_ih, b_hh = getattr(gru, f"bias_ih_l{k}"), getattr(gru, f"bias_hh_l{k}")
            self.register_buffer(f"w{k}", w_ih.detach()[order][None].clone())                   # [1, 3h, in]
            self.register_buffer(f"r{k}", w_hh.detach()[order][None].clone())                   # [1, 3h, h]
            self.register_buffer(f"b{k}", torch.cat([b_ih[order], b_hh[order]]).detach()[None].clone())  # [1, 6h]

    def forward(self, frames_first: torch.Tensor):
        x = frames_first.transpose(0, 1)                                   # [B, T, d] = [seq, batch, in]
        for k in range(self.layers):
            y = torch.onnx.ops.symbolic(
                "GRU", [x, getattr(self, f"w{k}"), getattr(self, f"r{k}"), getattr(self, f"b{k}")],
                {"hidden_size": self.hidden, "linear_before_reset": 1},
                dtype=x.dtype, shape=[x.shape[0], 1, x.shape[1], self.hidden])  # [seq, 1 direction, batch, h]
            x = y.squeeze(1)
        return x.transpose(0, 1), None


class DenoiserGraph(nn.Module):
    """``MDM.denoise`` with the graph's input order: x, timesteps, text, drop_text[, text_pad][, frame_pad]."""

    def __init__(self, model: MDM):
        super().__init__()
        self.model = model
        if model.args.arch == "gru":
            self.model = copy.copy(model)  # shallow: shares every weight, only the GRU module differs
            self.model._modules = dict(model._modules, gru=OnnxGRU(model.gru))

    def forward(self, x, timesteps, text, drop_text, text_pad=None, frame_pad=None):
        return self.model.denoise(x, timesteps, text, text_pad, drop_text, frame_pad)


def denoiser_input_names(model: MDM) -> list[str]:
    a = model.args
    return ["x", "timesteps", "text", "drop_text"] + ([] if POOLED[a.text_encoder_type] else ["text_pad"]) + \
        (["frame_pad"] if a.mask_frames else [])


def _quiet_export(module: nn.Module, args: tuple, kwargs: dict, dynamic_shapes: dict, input_names, output_names,
                  opset: int | None):
    """torch.onnx.export(dynamo=True) without its progress prints, warnings and debug logs."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "torch.__trace",
                                                "torch.fx.experimental.symbolic_shapes", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return torch.onnx.export(module.eval(), args, kwargs=kwargs, dynamo=True, dynamic_shapes=dynamic_shapes,
                                     input_names=input_names, output_names=output_names, opset_version=opset,
                                     verbose=False)
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def graph_io(path: Path) -> tuple[list[dict], list[dict], int]:
    """(inputs, outputs, default-domain opset) of a saved ONNX graph: names, dtypes, shapes."""
    import onnx
    proto = onnx.load(str(path), load_external_data=False)

    def describe(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            shape = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            out.append({"name": v.name, "dtype": dtype, "shape": shape})
        return out
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return describe(proto.graph.input), describe(proto.graph.output), int(opset)


def _save(program, path: Path) -> dict:
    path.unlink(missing_ok=True)
    program.save(str(path))
    inputs, outputs, opset = graph_io(path)
    return {"file": path.name, "inputs": inputs, "outputs": outputs, "opset": opset}


def export_denoiser(model: MDM, path: Path, opset: int | None = None) -> dict:
    """One denoiser call -> ``path``; returns its graph entry for the manifest."""
    a = model.args
    names = denoiser_input_names(model)
    frames = min(EXAMPLE_FRAMES, a.max_frames)
    batch, frames_dim = Dim("batch", min=1, max=MAX_BATCH), Dim("frames", min=1, max=max(a.max_frames, 2))
    gen = torch.Generator().manual_seed(0)
    b = EXAMPLE_BATCH
    n_text = 1 if POOLED[a.text_encoder_type] else EXAMPLE_TOKENS
    lengths = torch.tensor([[frames], [frames - 3], [frames]])
    examples = {"x": torch.randn(b, frames, NFEATS, generator=gen),
                "timesteps": torch.arange(b, dtype=torch.int64),
                "text": torch.randn(b, n_text, a.clip_dim, generator=gen),
                "drop_text": torch.tensor([False, True, False]),
                "text_pad": torch.arange(n_text)[None, :] >= torch.tensor([[n_text], [n_text - 2], [n_text]]),
                "frame_pad": torch.arange(frames)[None, :] >= lengths}
    text_tokens = Dim("tokens", min=2, max=MAX_TOKENS)  # BERT rows hold at least [CLS] and [SEP]
    shapes = {"x": {0: batch, 1: frames_dim}, "timesteps": {0: batch}, "text": {0: batch},
              "drop_text": {0: batch}, "text_pad": {0: batch, 1: text_tokens}, "frame_pad": {0: batch, 1: frames_dim}}
    if not POOLED[a.text_encoder_type]:
        shapes["text"] = {0: batch, 1: text_tokens}
    args = tuple(examples[n] for n in names[:4])
    kwargs = {n: examples[n] for n in names[4:]}
    program = _quiet_export(DenoiserGraph(model), args, kwargs, {n: shapes[n] for n in names}, names, ["x0"], opset)
    return _save(program, path)


class TextGraph(nn.Module):
    """``TextEncoder.embed`` as a module (registers the network's weights for export)."""

    def __init__(self, encoder: TextEncoder):
        super().__init__()
        self.net, self.encoder = encoder.net, encoder

    def forward(self, input_ids, attention_mask=None):
        return self.encoder.embed(input_ids, attention_mask)


def export_text_encoder(encoder: TextEncoder, path: Path, opset: int | None = None) -> dict:
    """The encoder's forward (token ids -> condition) -> ``path``; returns its manifest entry."""
    batch = Dim("batch", min=1, max=MAX_BATCH)
    sample = encoder.tokens.ids("a person walks forward")
    if encoder.kind == "clip":  # fixed 77-slot rows
        ids = torch.tensor([sample] * 2, dtype=torch.int64)
        program = _quiet_export(TextGraph(encoder), (ids,), {}, {"input_ids": {0: batch}},
                                ["input_ids"], ["text"], opset)
    else:
        n = max(len(sample), EXAMPLE_TOKENS)
        ids = torch.tensor([(sample + [0] * n)[:n]] * 2, dtype=torch.int64)
        mask = torch.ones_like(ids)
        mask[1, len(sample):] = 0
        length = Dim("tokens", min=2, max=MAX_TOKENS)
        program = _quiet_export(TextGraph(encoder), (ids, mask), {},
                                {"input_ids": {0: batch, 1: length}, "attention_mask": {0: batch, 1: length}},
                                ["input_ids", "attention_mask"], ["text"], opset)
    return _save(program, path)


def _prepare_out_dir(out_dir: Path, model_dir: Path) -> None:
    if out_dir.resolve() == model_dir.resolve():
        raise InputError(f"--out {out_dir} is the model folder itself; export into a folder of its own "
                         f"(e.g. {model_dir / 'onnx'})")
    if out_dir.is_file():
        raise InputError(f"--out {out_dir} is a file; give a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_onnx_export(out_dir):
        raise InputError(f"--out {out_dir} already holds files that are not an ONNX export; choose an empty "
                         "or new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)  # until the new manifest is written, it is no export


def export_model(model_dir: str | Path, out_dir: str | Path, text_encoder_dir: str | Path | None = None,
                 opset: int | None = None, report=lambda message: None) -> Path:
    """Model folder (args.json + model*.pt) -> exported folder ``out_dir`` (see manifest.py)."""
    t0 = time.perf_counter()
    loaded = load_model(model_dir, "cpu")
    a = loaded.args
    out = Path(out_dir).expanduser()
    _prepare_out_dir(out, loaded.model_dir)
    encoder = load_text_encoder(a.text_encoder_type, text_encoder_dir, "cpu")
    stats_dir = loaded.model_dir if (loaded.model_dir / "Mean.npy").is_file() else None
    normalizer = load_normalizer(stats_dir)
    t1 = time.perf_counter()
    report(f"loaded {loaded.model_id} and its {a.text_encoder_type} text encoder in {t1 - t0:.1f} s")

    with torch.no_grad():
        denoiser = export_denoiser(loaded.model, out / DENOISER_FILE, opset)
        t2 = time.perf_counter()
        report(f"exported the denoiser in {t2 - t1:.1f} s")
        text_graph = export_text_encoder(encoder, out / TEXT_FILE, opset)
    t3 = time.perf_counter()
    report(f"exported the {a.text_encoder_type} text encoder in {t3 - t2:.1f} s")

    (out / TOKENIZER_FILE).write_text(encoder.tokens.to_json(), encoding="utf-8")
    np.save(out / "Mean.npy", normalizer.mean.astype(np.float32))
    np.save(out / "Std.npy", normalizer.std.astype(np.float32))
    vocabulary = loaded.model_dir / CAPTION_VOCABULARY   # the words it was trained on (our per-word models)
    (out / CAPTION_VOCABULARY).unlink(missing_ok=True)
    if CaptionVocabulary.read(loaded.model_dir, a.text_encoder_type) is not None:
        shutil.copyfile(vocabulary, out / CAPTION_VOCABULARY)
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_id": loaded.model_id,
        "source": {"folder": loaded.model_dir.name, "checkpoint": loaded.checkpoint_path.name,
                   "sha256": file_sha256(loaded.checkpoint_path)},
        "args": args_to_json_dict(a), "max_frames": min(MAX_FRAMES, a.max_frames),
        "schedule": {"noise_schedule": a.noise_schedule, "diffusion_steps": a.diffusion_steps,
                     "sigma_small": a.sigma_small, "rebuild": "backend.mdm.diffusion.build_schedule"},
        "opset": denoiser["opset"], "denoiser": denoiser,
        "text_encoder": {"kind": a.text_encoder_type, "source": str(encoder.folder.name), "graph": text_graph,
                         "tokenizer": {"file": TOKENIZER_FILE, **encoder.tokens.settings()}},
        "statistics": {"mean": "Mean.npy", "std": "Std.npy", "from": str(stats_dir or "backend/assets/humanml3d")},
        "exported_with": {"backend_version": __version__, "torch": torch.__version__,
                          "export_seconds": {"denoiser": round(t2 - t1, 2), "text_encoder": round(t3 - t2, 2)}},
    }
    write_manifest(out, manifest)
    report(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
    return out
