"""``python -m backend export-onnx --model-dir DIR --out OUTDIR``: export a model for ONNX Runtime."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from ..mdm.text_tokens import POOLED

VERIFY_TOLERANCE = 1e-4   # one denoiser call, float32 on CPU; typically ~1e-6


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default=None,
                        help="MDM model folder (args.json + model*.pt) or a .pt file; default: the embedded demo model")
    parser.add_argument("--out", required=True, help="folder to write (new, empty, or an earlier export)")
    parser.add_argument("--text-encoder-dir", default=None,
                        help="folder of the CLIP / DistilBERT files (default: the Hugging Face cache)")
    parser.add_argument("--opset", type=int, default=None,
                        help="ONNX opset (default: the exporter's, 20 with torch 2.13)")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the check that ONNX Runtime reproduces one torch denoiser call")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def verify_export(model, out: Path, seed: int = 0) -> float:
    """Max |ONNX Runtime - torch| of the exported denoiser at two batch / frame sizes not used at export."""
    import torch
    from .generator import open_session
    from .manifest import read_manifest
    manifest = read_manifest(out)
    session = open_session(out, manifest.denoiser, ["CPUExecutionProvider"])
    a, gen, worst = model.args, torch.Generator().manual_seed(seed), 0.0
    for batch, frames in ((1, min(17, a.max_frames)), (4, min(60, a.max_frames))):
        tokens = 1 if POOLED[a.text_encoder_type] else 9
        inputs = {"x": torch.randn(batch, frames, 263, generator=gen),
                  "timesteps": torch.randint(0, a.diffusion_steps, (batch,), generator=gen),
                  "text": torch.randn(batch, tokens, a.clip_dim, generator=gen),
                  "drop_text": torch.arange(batch) % 2 == 1,
                  "text_pad": torch.arange(tokens)[None, :] >= torch.full((batch, 1), tokens - 2),
                  "frame_pad": torch.arange(frames)[None, :] >= torch.full((batch, 1), max(1, frames - 5))}
        names = manifest.denoiser.input_names
        with torch.no_grad():
            ref = model.denoise(inputs["x"], inputs["timesteps"], inputs["text"],
                                inputs["text_pad"] if "text_pad" in names else None, inputs["drop_text"],
                                inputs["frame_pad"] if "frame_pad" in names else None).numpy()
        out_ = session.run(None, {n: inputs[n].numpy() for n in names})[0]
        worst = max(worst, float(np.abs(out_ - ref).max()))
    return worst


def run(command: str, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s")
    from ..errors import BackendError
    from .export import export_model
    report = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    out = export_model(args.model_dir if args.model_dir is not None else _demo(), args.out, args.text_encoder_dir,
                       args.opset, report)
    if not args.no_verify:
        from ..mdm.checkpoint import load_model
        error = verify_export(load_model(args.model_dir if args.model_dir is not None else _demo()).model, out)
        if error > VERIFY_TOLERANCE:
            raise BackendError(f"the export in {out} does not reproduce the torch network (max error {error:.2e} > "
                               f"{VERIFY_TOLERANCE:g}); please report this with your torch / onnxruntime versions",
                               code="export_mismatch")
        report(f"verified: ONNX Runtime matches torch to {error:.1e} on one denoiser call")
    return 0


def _demo() -> Path:
    from ..errors import CheckpointError
    from ..mdm import DEMO_MODEL_DIR
    if not (DEMO_MODEL_DIR / "args.json").is_file():
        raise CheckpointError(f"the embedded demo model is not installed ({DEMO_MODEL_DIR} is missing); "
                              "pass --model-dir")
    return DEMO_MODEL_DIR
