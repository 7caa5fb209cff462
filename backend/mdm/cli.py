"""``python -m backend generate``: text -> motion .npz in the shared result format (docs/DESIGN.md).

Runs on torch or, for an exported folder / ``--runtime onnx``, on ONNX Runtime (``backend.runtimes``);
this module imports neither itself.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", default=None,
                        help="MDM model folder (args.json + model*.pt), a .pt file, or an ONNX export "
                             "(export-onnx); default: the embedded demo model")
    parser.add_argument("--runtime", choices=("auto", "torch", "onnx"), default="auto",
                        help="auto (default): ONNX Runtime for an exported folder, else torch; onnx: export "
                             "the checkpoint once (cached) and run it on ONNX Runtime")
    parser.add_argument("--prompt", required=True, help='text prompt ("" = unconditional)')
    parser.add_argument("--seconds", type=float, default=6.0, help="motion length, at most 9.8 (default 6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-samples", type=int, default=1)
    parser.add_argument("--guidance", type=float, default=2.5, help="classifier-free guidance scale (default 2.5)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's diffusion steps)")
    parser.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    parser.add_argument("--text-encoder-dir", default=None,
                        help="folder of the CLIP / DistilBERT files (default: the Hugging Face cache)")
    parser.add_argument("--fit", action="store_true",
                        help="also fit SMPL pose parameters (poses, trans, joints_fitted, ...) to the joints")
    parser.add_argument("--smpl", default=None,
                        help="with --fit: an SMPL model file (default: the built-in rest skeleton)")
    parser.add_argument("--fit-betas", action="store_true", help="with --fit and --smpl: fit the body shape too")
    parser.add_argument("--vertices", action="store_true", help="with --fit and --smpl: add mesh vertices")
    parser.add_argument("--upper-prompt", default="",
                        help="a second action for the upper body over the whole clip (e.g. --prompt 'a person "
                             "walks forward' --upper-prompt 'a person waves with the right hand'): a second pass "
                             "regenerates spine, arms and head, root and legs stay")
    parser.add_argument("--foot-lock", action="store_true",
                        help="with --fit: pin the feet where the model says they touch the ground (no foot skating)")
    parser.add_argument("--no-reword", action="store_true",
                        help="models with a caption vocabulary (the demo): only hide unseen words, do not read "
                             "them as a related trained word (WordNet)")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def extra_arrays(result, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Arrays that options add to the result file: ``--fit`` puts the SMPL fit here."""
    if not args.fit:
        return {}
    from ..fitting.results import fit_result_arrays
    from ..motion.skeleton import FOOT_CONTACT
    contacts = result.features[..., FOOT_CONTACT] if args.foot_lock else None
    return fit_result_arrays(result.joints, result.lengths, smpl_path=args.smpl, fit_betas=args.fit_betas,
                             vertices=args.vertices, foot_contacts=contacts)


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write atomically (temp file + rename) so a reader never sees half a file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"output folder {path.parent} does not exist")
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def run(command: str, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s: %(message)s")
    from ..runtimes import load_generator, resolve_device
    from .generation import check_generate_request
    if not str(args.out).endswith(".npz"):
        raise InputError(f"--out must name a .npz file, got {args.out}")
    if not Path(args.out).parent.is_dir():
        raise InputError(f"output folder {Path(args.out).parent} does not exist")
    check_generate_request(args.prompt, args.seconds, args.seed, args.num_samples, args.guidance)  # fail fast
    if (args.smpl or args.fit_betas or args.vertices or args.foot_lock) and not args.fit:
        raise InputError("--smpl, --fit-betas, --vertices and --foot-lock only apply together with --fit")
    if (args.fit_betas or args.vertices) and not args.smpl:
        raise InputError("--fit-betas and --vertices need the SMPL model file: pass --smpl PATH "
                         "(see smpl_assets/README.md)")
    if args.smpl:
        from ..fitting.smpl_file import load_smpl
        load_smpl(args.smpl)  # a bad SMPL file fails before the diffusion runs
    resolve_device(args.device, args.model_dir, args.runtime)
    report = (lambda message: None) if args.quiet else (lambda message: print(message, file=sys.stderr, flush=True))
    generator = load_generator(args.model_dir, args.device, args.text_encoder_dir, args.runtime, report)
    generator.reword_unseen_words = not args.no_reword

    def progress(step: int, total: int) -> None:
        if not args.quiet and (step == total or step % max(1, total // 10) == 0):
            print(f"diffusion step {step}/{total}", file=sys.stderr, flush=True)

    result = generator.generate(args.prompt, seconds=args.seconds, seed=args.seed, num_samples=args.num_samples,
                                guidance=args.guidance, steps=args.steps, progress=progress, sampler=args.sampler)
    if args.upper_prompt.strip():
        from ..editing import with_upper_body
        result = with_upper_body(generator, result, args.upper_prompt, guidance=args.guidance, steps=args.steps,
                                 progress=progress, sampler=args.sampler)
    if args.fit:
        result.recipe["foot_lock"] = bool(args.foot_lock)
    arrays = result.to_arrays()
    arrays.update(extra_arrays(result, args))
    out = write_npz(args.out, arrays)
    if not args.quiet:
        print(f"wrote {out} ({result.joints.shape[0]} x {result.joints.shape[1]} frames, model {generator.model_id})",
              file=sys.stderr)
        if result.recipe.get("reworded"):
            print(f"note: {generator.model_id} was not trained on some words and read them as: "
                  f"{', '.join(f'{a} -> {b}' for a, b in result.recipe['reworded'].items())}", file=sys.stderr)
        if result.recipe.get("unseen_words"):
            print(f"note: {generator.model_id} was not trained on these words and followed the sentence's overall "
                  f"meaning instead: {', '.join(result.recipe['unseen_words'])}", file=sys.stderr)
    return 0
