"""Soak test of the warm service: N sequential generations in ONE server with a tiny model.

Checks that every seed gives bit-identical motion each time it comes back, and prints the server's
resident memory (from `hello`) along the way; growth after warm-up must stay under 50 MB.

    .venv/bin/python bench/service_soak.py [--runs 100] [--steps 10] [--fit auto|on|off]
Exit status 1 if a seed is not deterministic or memory grows by 50 MB or more.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.service.client import BackendClient  # noqa: E402
from tests.helpers.tiny_models import write_tiny_clip, write_tiny_model_dir  # noqa: E402

LIMIT_MB = 50.0
PROMPTS = ("a person walks forward and turns left", "a person jumps", "a person waves with the right hand")
WARM_UP_RUNS = 5


def digest(path: str) -> str:
    with np.load(path) as data:
        h = hashlib.sha256()
        for key in sorted(data.files):
            if key != "recipe":
                h.update(key.encode() + data[key].tobytes())
        return h.hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fit", choices=["auto", "on", "off"], default="auto")
    args = parser.parse_args()
    fit = args.fit == "on" or (args.fit == "auto" and importlib.util.find_spec("backend.fitting") is not None)

    tmp = Path(tempfile.mkdtemp(prefix="service-soak-"))
    model = write_tiny_model_dir(tmp / "tiny", diffusion_steps=100, pos_embed_max_len=256)
    params = {"model_dir": str(model), "text_encoder_dir": str(write_tiny_clip(tmp / "clip")), "device": "cpu",
              "seconds": 9.8, "steps": args.steps, "fit": fit}
    client = BackendClient(sys.executable, str(REPO), server_args=("--threads", "1"))
    print(f"{args.runs} generations, 196 frames, {args.steps} steps, fit={fit}, {args.seeds} seeds, "
          f"{len(PROMPTS)} prompts, one server")
    digests: dict[int, set[str]] = {}
    rss = []
    t0 = time.perf_counter()
    try:
        for run in range(args.runs):
            seed = run % args.seeds
            prompt = PROMPTS[seed % len(PROMPTS)]  # each seed always with the same prompt
            out = client.request("generate", {**params, "seed": seed, "prompt": prompt}, timeout=300)
            digests.setdefault(seed, set()).add(digest(out["result_path"]))
            if run + 1 in (1, WARM_UP_RUNS) or (run + 1) % 10 == 0:
                info = client.request("hello")["info"]
                rss.append((run + 1, info["rss_mb"]))
                print(f"  after {run + 1:4d} runs: rss {info['rss_mb']:8.1f} MB, model loads {info['model_loads']}, "
                      f"pid {info['pid']}")
        pid_changes = client.restarts - 1
    finally:
        client.stop()
    elapsed = time.perf_counter() - t0
    deterministic = all(len(d) == 1 for d in digests.values())
    seeds_differ = len(set().union(*digests.values())) == len(digests)
    warm = dict(rss)[WARM_UP_RUNS]
    growth = rss[-1][1] - warm
    print(f"determinism per seed: {'OK' if deterministic else 'FAILED'} "
          f"({', '.join(f'seed {s}: {len(d)} distinct' for s, d in sorted(digests.items()))}); "
          f"different seeds give different motions: {'OK' if seeds_differ else 'FAILED'}")
    print(f"resident memory: {warm:.1f} MB after {WARM_UP_RUNS} runs -> {rss[-1][1]:.1f} MB after {rss[-1][0]}: "
          f"growth {growth:+.1f} MB (limit {LIMIT_MB:.0f} MB) {'OK' if growth < LIMIT_MB else 'FAILED'}; "
          f"since the first run {rss[-1][1] - dict(rss)[1]:+.1f} MB")
    print(f"server restarts: {pid_changes}; total {elapsed:.1f} s ({elapsed / args.runs * 1000:.0f} ms per request)")
    return 0 if deterministic and seeds_differ and growth < LIMIT_MB and pid_changes == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
