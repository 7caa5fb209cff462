"""How seamless are Loop's cycles? (quality, not speed)

    python bench/loop_seams.py [--model-dir DIR] [--samples 4] [--seed 0] [--seconds 6]

Generates a few prompts with the model (default: the embedded demo model), fits SMPL with foot
lock (what the add-on keys), cuts each motion into its cycle and closes it (``backend.motion.loop``,
what the add-on's Loop does), then plays two cycles back to back through SMPL forward kinematics
and compares the largest joint acceleration at the seam (cm per 20 fps frame²) with the cycle's
own: its 95th percentile and maximum. Also printed: the cycle length and the seam mismatch
``find_loop`` reports.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.fitting.results import fit_result_arrays  # noqa: E402
from backend.motion.loop import close_loop, find_loop  # noqa: E402
from backend.motion.skeleton import FOOT_CONTACT  # noqa: E402
from backend.motion.smpl_skeleton import posed_joints  # noqa: E402

PROMPTS = ("a person walks forward", "a person runs forward", "a person jogs in a circle",
           "a person does jumping jacks", "a person waves with the right hand", "a person walks backwards")


def seam_and_cycle(poses: np.ndarray, trans: np.ndarray, rest: np.ndarray) -> tuple[int, float, float, float, float]:
    """-> (cycle frames, mismatch m, seam accel, cycle p95 accel, cycle max accel) in m / frame²."""
    start, end, mismatch = find_loop(posed_joints(poses, trans, rest)[:, :22])
    closed, path, travel = close_loop(poses, trans, start, end)
    n = end - start
    twice = posed_joints(np.concatenate([closed[:n], closed[:n]]), np.concatenate([path[:n], path[:n] + travel]),
                         rest)[:, :22]
    accel = np.linalg.norm(np.diff(twice, 2, axis=0), axis=-1).max(-1)     # entry i: frame i + 1
    return n, mismatch, float(accel[n - 2:n + 1].max()), float(np.percentile(accel[:n - 3], 95)), \
        float(accel[:n - 3].max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args()
    from backend.mdm.pipeline import MotionGenerator
    generator = MotionGenerator.load(args.model_dir, device="cpu")
    print(f"model {generator.model_id}, {args.samples} samples per prompt, seed {args.seed}, {args.seconds:g} s")
    print(f"{'prompt':36s} {'cycle':>6s} {'mismatch cm':>12s} {'seam':>7s} {'p95':>7s} {'max':>7s}  (cm/frame²)")
    below_max = below_p95 = total = 0
    for prompt in PROMPTS:
        out = generator.generate(prompt, seconds=args.seconds, seed=args.seed, num_samples=args.samples)
        fit = fit_result_arrays(out.joints, out.lengths, foot_contacts=out.features[..., FOOT_CONTACT])
        rest = fit["rest_joints"].astype(np.float64)
        for k in range(args.samples):
            n = int(out.lengths[k])
            cycle, mismatch, seam, p95, most = seam_and_cycle(fit["poses"][k, :n].astype(np.float64),
                                                              fit["trans"][k, :n].astype(np.float64), rest)
            below_max += seam <= most
            below_p95 += seam <= p95
            total += 1
            print(f"{prompt if k == 0 else '':36s} {cycle:6d} {mismatch * 100:12.1f} {seam * 100:7.2f} "
                  f"{p95 * 100:7.2f} {most * 100:7.2f}")
    print(f"seam at or below the cycle's largest acceleration: {below_max}/{total}; "
          f"at or below its 95th percentile: {below_p95}/{total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
