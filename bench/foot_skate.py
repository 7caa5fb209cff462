"""How much do planted feet slide, with and without foot lock? (quality, not speed)

    python bench/foot_skate.py [--model-dir DIR] [--samples 4] [--seed 0]

Generates a few locomotion prompts with the model (default: the embedded demo model) and fits SMPL
to each motion twice, without and with ``foot_contacts`` (what --foot-lock and the add-on's Foot
Lock do). Skating is ``motion_metrics.foot_skate`` of the fitted joints the rig gets, in cm per
20 fps frame: ankles and toes on the ground by height alone in the raw motion (so the measure does
not trust the labels the lock uses), averaged over the clips. Also printed: the largest foot
acceleration (``motion_metrics.foot_acceleration``, cm per frame², worst clip) without the lock and
the most the lock added to it at any frame — a lock that pops a foot between two pins shows there —
the largest knee/ankle/toe move the lock made and its cost per clip.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.fitting.results import fit_result_arrays  # noqa: E402
from backend.motion.skeleton import FOOT_CONTACT  # noqa: E402
from backend.training.motion_metrics import foot_acceleration, foot_skate  # noqa: E402

PROMPTS = ("a person walks forward", "a person walks backwards", "a person jogs in a circle",
           "a person runs forward", "a person turns around", "a person jumps forward")


def skate_cm(fitted: np.ndarray, raw: np.ndarray, lengths) -> float:
    """Mean over clips of ``foot_skate`` (cm per frame) of ``fitted`` [K, T, J, 3] on the grounded frames of ``raw``."""
    return float(np.mean([foot_skate(fitted[k, :n, :22], raw[k, :n]) for k, n in enumerate(lengths)]) * 100)


def max_acceleration_cm(fitted: np.ndarray, lengths, reference=None) -> float:
    """Worst clip's ``foot_acceleration`` in cm per frame² (with ``reference``: what was added to it)."""
    return max(foot_acceleration(fitted[k, :n, :22], None if reference is None else reference[k, :n, :22])
               for k, n in enumerate(lengths)) * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from backend.mdm.pipeline import MotionGenerator
    generator = MotionGenerator.load(args.model_dir, device="cpu")
    print(f"model {generator.model_id}, {args.samples} samples per prompt, seed {args.seed}")
    print(f"{'prompt':28s} {'skate cm/frame':>15s} {'with lock':>10s} {'ratio':>6s} {'max accel':>10s} "
          f"{'added':>10s} {'max move cm':>12s} {'lock ms/clip':>13s}")
    ratios = []
    for prompt in PROMPTS:
        out = generator.generate(prompt, seconds=4.0, seed=args.seed, num_samples=args.samples)
        plain = fit_result_arrays(out.joints, out.lengths)["joints_fitted"]
        t0 = time.perf_counter()
        locked = fit_result_arrays(out.joints, out.lengths, foot_contacts=out.features[..., FOOT_CONTACT])
        with_lock_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fit_result_arrays(out.joints, out.lengths)
        lock_ms = (with_lock_s - (time.perf_counter() - t0)) / args.samples * 1000
        before = skate_cm(plain, out.joints, out.lengths)
        after = skate_cm(locked["joints_fitted"], out.joints, out.lengths)
        moved = np.abs(locked["joints_fitted"][:, :, :22] - plain[:, :, :22]).max() * 100
        ratios.append(after / before)
        accel = (max_acceleration_cm(plain, out.lengths),
                 max_acceleration_cm(locked["joints_fitted"], out.lengths, reference=plain))
        print(f"{prompt:28s} {before:15.2f} {after:10.2f} {after / before:6.2f} {accel[0]:10.1f} {accel[1]:10.1f} "
              f"{moved:12.1f} {lock_ms:13.1f}")
    print(f"geometric mean ratio (with / without foot lock): {float(np.exp(np.mean(np.log(ratios)))):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
