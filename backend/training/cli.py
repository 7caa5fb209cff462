"""Training-side commands: ``python -m backend make-corpus ...`` (and, later, ``train``).

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


COMMANDS = {
    "make-corpus": (_add_make_corpus, _run_make_corpus),
}


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    if command in COMMANDS:
        COMMANDS[command][0](parser)


def run(command: str, args: argparse.Namespace) -> int:
    if command not in COMMANDS:
        raise InputError(f"the '{command}' command is not available in this build yet")
    return COMMANDS[command][1](args)
