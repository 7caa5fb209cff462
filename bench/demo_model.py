"""The embedded demo model: seconds to generate 4 s of motion on this machine, and its prompt adherence.

    python bench/demo_model.py                 # timing (ours vs an official-style run) + adherence table
    python bench/demo_model.py --no-adherence  # timing only
    python bench/demo_model.py --no-timing --no-rewording  # adherence with unseen words only hidden

Timing: ``MotionGenerator.generate`` end to end (text encoding, 50 diffusion steps with batched
classifier-free guidance, joint recovery), median of several runs, against a baseline measured in
the same run that executes the same weights the way the official code does (stock torch transformer
modules, separate cond / uncond calls per step; tests/helpers/official_style.py). Target (issue 8):
<= 3 s for 4 s of motion on the 2-core CPU.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.mdm.pipeline import MotionGenerator  # noqa: E402
from backend.mdm.sampler import SeededNoise, sample_loop  # noqa: E402
from backend.mdm.text_tokens import POOLED  # noqa: E402
from backend.training import evaluate as E  # noqa: E402
from tests.helpers.official_style import OfficialStyleMDM, official_cfg  # noqa: E402


def official_style_seconds(gen: MotionGenerator, frames: int, seed: int) -> float:
    """The same sampling with the official-style network (two separate passes per step)."""
    official = OfficialStyleMDM(gen.model).eval()
    text, _ = gen.text_encoder.encode("a person walks forward")          # [1, 1 or L, D]
    embed = text.permute(1, 0, 2)                                          # official layout [1 or L, 1, D]
    if not POOLED[gen.args.text_encoder_type]:                            # per-word rows come with a padding mask
        embed = (embed, torch.zeros(1, text.shape[1], dtype=torch.bool))
    y = {"mask": torch.ones(1, 1, 1, frames, dtype=torch.bool), "text_embed": embed}
    denoise = official_cfg(official, y, 2.5)
    start = time.perf_counter()
    with torch.no_grad():
        sample_loop(denoise, (1, 263, 1, frames), gen._schedule(None), SeededNoise(seed), torch.from_numpy)
    return time.perf_counter() - start


def timing(gen: MotionGenerator, args) -> None:
    frames = int(args.seconds * 20)
    gen.generate("a person walks forward", seconds=args.seconds, seed=0)  # warm-up (text encoder, allocator)
    ours, base = [], []
    for r in range(args.repeats):
        start = time.perf_counter()
        gen.generate(f"a person walks forward {r}", seconds=args.seconds, seed=r)  # new prompt: no cache hit
        ours.append(time.perf_counter() - start)
        base.append(official_style_seconds(gen, frames, r))
    print(f"model {gen.model_id}: {args.seconds:.1f} s of motion ({frames} frames), "
          f"{gen.args.diffusion_steps} steps, CPU threads {torch.get_num_threads()}")
    print(f"  ours (end to end)        median {np.median(ours):6.3f} s  (min {min(ours):.3f})  target <= 3 s")
    print(f"  official-style sampling  median {np.median(base):6.3f} s  (min {min(base):.3f})")
    print(f"  ratio official-style / ours: {np.median(base) / np.median(ours):.2f}x")


def adherence(gen: MotionGenerator) -> None:
    """The checks of tests/test_demo_model.py, then the unseen-verb prompts with the paraphrase rule
    (at least 2 of 4 samples; a running prompt's median speed above 1.3 x walking's)."""
    results = E.run_checks(gen, E.CHECKS + E.paraphrase_checks())
    print()
    print(E.format_table(results))
    walk = E.by_prompt_and_measure(results)[("a person walks forward", "mean_horizontal_speed")].median
    unseen = E.run_checks(gen, E.UNSEEN_VERB_CHECKS)
    print()
    print(E.format_table(unseen))
    passed = [r.median > 1.3 * walk if r.check.measure == "mean_horizontal_speed" else r.pass_fraction >= 0.5
              for r in unseen]
    print(f"unseen verbs: {sum(passed)} of {len(unseen)} pass; failing: "
          + (", ".join(r.check.prompt for r, ok in zip(unseen, passed) if not ok) or "none"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None, help="default: the embedded demo model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--no-adherence", action="store_true")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--no-rewording", action="store_true",
                        help="hide unseen words without rewording them first (the behaviour before WordNet)")
    args = parser.parse_args()
    gen = MotionGenerator.load(args.model_dir, device="cpu")
    gen.reword_unseen_words = not args.no_rewording
    if not args.no_timing:
        timing(gen, args)
    if not args.no_adherence:
        adherence(gen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
