"""Training-side commands: ``python -m backend make-corpus ...`` and ``python -m backend train ...``.

Each command is one entry of COMMANDS: (add_arguments(parser), run(args) -> exit code). Heavy
imports happen inside the run functions.
"""
from __future__ import annotations

import argparse

from ..errors import InputError


def _add_make_corpus(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (HumanML3D layout); created if missing")
    parser.add_argument("--num-clips", type=int, default=10000, help="number of clips (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="master seed; the same seed gives identical files")
    parser.add_argument("--workers", type=int, default=1, help="processes to generate with (default 1)")
    parser.add_argument("--previews", type=int, default=0, metavar="N",
                        help="also write N contact-sheet PNGs per family into OUT/previews")


def _run_make_corpus(args: argparse.Namespace) -> int:
    from .corpus.writer import write_corpus
    manifest = write_corpus(args.out, num_clips=args.num_clips, seed=args.seed, workers=args.workers,
                            previews=args.previews)
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts_per_family"].items())
    print(f"{manifest['num_clips']} clips ({counts}); splits {manifest['splits']}")
    return 0


def _add_train(parser: argparse.ArgumentParser) -> None:
    from .train import PRESETS, TrainConfig
    parser.add_argument("--data", required=True, help="HumanML3D-layout folder (the real dataset or make-corpus output)")
    parser.add_argument("--out", required=True, help="model folder to write (args.json + model*.pt)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo",
                        help="starting configuration: 'demo' = the embedded model's network and schedule, 'demo_pooled' = "
                             "the earlier pooled-text one, 'humanml' = the official MDM recipe for the real dataset (trans_enc, "
                             "CLIP, 1000 steps), 'tiny' = a seconds-long test run")
    defaults = TrainConfig(data_dir="", out_dir="")
    for name in ("arch", "text_encoder_type", "text_encoder_dir", "latent_dim", "layers", "ff_size", "num_heads",
                 "diffusion_steps", "batch_size", "lr", "num_steps", "warmup_steps", "ema_beta", "lambda_vel",
                 "word_drop_prob", "sentence_drop_prob", "seed", "device", "threads", "log_interval", "val_interval", "save_interval", "max_clips"):
        value = PRESETS["demo"].get(name, getattr(defaults, name))
        kind = {"max_clips": int, "text_encoder_dir": str}.get(name, type(getattr(defaults, name)))
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                            help=f"override the preset (demo default: {value})")
    parser.add_argument("--no-mask-frames", action="store_true", help="train without frame masking (pads to 196)")
    parser.add_argument("--sentence-token", action=argparse.BooleanOptionalAction, default=None,
                        help="trans_dec: also give the frames a time + sentence token to attend to (a global path for "
                             "the prompt's overall meaning beside the per-word cross-attention; demo default: "
                             f"{PRESETS['demo'].get('sentence_token', defaults.sentence_token)})")
    parser.add_argument("--oversample", action="append", default=[], metavar="REGEX=FACTOR",
                        help="draw clips whose caption matches REGEX FACTOR times as often (repeatable), "
                             "e.g. --oversample 'wav(e|es|ing)=3'; added to the preset's table (demo: "
                             + (", ".join(f"{k}={v}" for k, v in PRESETS["demo"]["oversample"].items()))
                             + "), REGEX=1 removes an entry")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest model*.pt in --out (same options as the interrupted run)")


def train_config_from_args(args: argparse.Namespace):
    """The preset, overridden by the options given on the command line."""
    import dataclasses

    from .train import PRESETS, TrainConfig
    overrides = dict(PRESETS[args.preset])
    overrides["oversample"] = dict(overrides.get("oversample", {}))   # never share the preset's table
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None and field.name not in ("data_dir", "out_dir", "oversample"):
            overrides[field.name] = value
    if args.no_mask_frames:
        overrides["mask_frames"] = False
    if args.sentence_token is not None:
        overrides["sentence_token"] = args.sentence_token
    overrides["resume"] = args.resume
    if args.oversample:
        table = {**overrides["oversample"], **_parse_oversample(args.oversample)}
        overrides["oversample"] = {pattern: factor for pattern, factor in table.items() if factor > 1}
    cfg = TrainConfig(data_dir=args.data, out_dir=args.out, **overrides)
    if cfg.num_steps < 1 or cfg.batch_size < 1:
        raise InputError("--num-steps and --batch-size must be positive")
    return cfg


def _run_train(args: argparse.Namespace) -> int:
    import json

    from .train import train
    cfg = train_config_from_args(args)
    train(cfg, on_log=lambda entry: print(json.dumps(entry), flush=True))
    print(f"model written to {args.out}")
    return 0


def _parse_oversample(items: list[str]) -> dict[str, int]:
    import re
    out = {}
    for item in items:
        pattern, _, factor = item.rpartition("=")
        try:
            re.compile(pattern)
            value = int(factor)
        except (re.error, ValueError):
            value = 0
        if not pattern or value < 1:
            raise InputError(f"--oversample {item!r}: expected REGEX=FACTOR with a valid regex and an integer >= 1")
        out[pattern] = value
    return out


COMMANDS = {
    "make-corpus": (_add_make_corpus, _run_make_corpus),
    "train": (_add_train, _run_train),
}


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    if command in COMMANDS:
        COMMANDS[command][0](parser)


def run(command: str, args: argparse.Namespace) -> int:
    if command not in COMMANDS:
        raise InputError(f"the '{command}' command is not available in this build yet")
    return COMMANDS[command][1](args)
