"""``python -m backend <command> ...``: one entry point, one module per command family.

Each command module exposes ``add_arguments(command, parser)`` and ``run(command, args) -> int``;
it is imported only when its command runs, so ``--help`` stays fast and torch-free.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import BackendError

COMMANDS = {
    "generate": ("backend.mdm.cli", "text -> motion with an MDM checkpoint (or the embedded demo model)"),
    "fit": ("backend.fitting.cli", "fit SMPL pose parameters to joint positions"),
    "smpl-check": ("backend.fitting.cli", "validate an SMPL model file and report what it holds"),
    "train": ("backend.training.cli", "train an MDM model (official checkpoint layout)"),
    "make-corpus": ("backend.training.cli", "generate the procedural motion corpus"),
    "export-onnx": ("backend.onnx_runtime.cli", "export one denoiser call + text encoder to ONNX"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    cmd_parser = argparse.ArgumentParser(prog=f"python -m backend {name}", description=COMMANDS[name][1])
    module.add_arguments(name, cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    try:
        return int(module.run(name, args) or 0)
    except BackendError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
