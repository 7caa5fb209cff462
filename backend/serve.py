"""``python -m backend.serve``: the warm inference process the Blender add-on talks to.

JSON lines on stdin/stdout (backend/PROTOCOL.md); logs go to stderr or --log-file. Before anything
else runs, the real stdout is kept as a private descriptor for the protocol and fd 1 is pointed at
stderr, so a stray print (transformers, a C library) can never corrupt the protocol stream; stdin
is likewise kept private and fd 0 reads /dev/null.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys


def _take_protocol_fds() -> tuple[int, int]:
    sys.stdout.flush()
    proto_in, proto_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return proto_in, proto_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--log-file", help="append logs here instead of stderr")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--max-models", type=int, default=2, help="models kept loaded (least recently used go)")
    parser.add_argument("--keep-results", type=int, default=8, help="result files kept before the oldest is deleted")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads, set at warm-up (0 = torch's default)")
    parser.add_argument("--no-warm-up", action="store_true", help="don't import torch/the model code at start")
    args = parser.parse_args(argv)

    proto_in, proto_out = _take_protocol_fds()
    target = {"filename": args.log_file} if args.log_file else {"stream": sys.stderr}
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s: %(message)s", **target)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds serve(): worker stopped, temp dir removed

    from .service import handlers
    from .service.server import Server
    server = Server(os.fdopen(proto_in, "rb"), proto_out, handlers.HANDLERS, loader=handlers.load_generator,
                    max_models=args.max_models, keep_results=args.keep_results)
    if not args.no_warm_up:
        server.warm_up = lambda: handlers.warm_up(args.threads or None)
    code = 0
    try:
        server.serve()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    finally:
        server.close()
        logging.shutdown()
    # Daemon threads may be inside torch: leave without interpreter teardown.
    os._exit(code)


if __name__ == "__main__":
    main()
