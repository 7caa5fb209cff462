"""How fast make-corpus runs, relative to the feature codec measured in the same run.

    python bench/corpus_speed.py [--clips 300]

Prints clips/s for the whole per-clip pipeline (synthesis + features + recovery + files), the
projected time for 10,000 clips on one core, and the ratio of the per-clip cost to one official
feature extraction (with retargeting) of the same clips: that ratio is what stays comparable
between machines and under load.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.motion.hml_codec import extract_features_from_joints  # noqa: E402
from backend.training.corpus import make_clip  # noqa: E402
from backend.training.corpus.writer import family_schedule, write_corpus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=300)
    args = parser.parse_args()

    families = family_schedule(args.clips, seed=0)
    clips = [make_clip(f, np.random.default_rng([0, i])).joints for i, f in enumerate(families)]
    start = time.perf_counter()
    for joints in clips:
        extract_features_from_joints(joints, variant="pre2025")
    baseline = (time.perf_counter() - start) / args.clips

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_corpus(Path(tmp) / "corpus", num_clips=args.clips, seed=0, verbose=False)
        per_clip = (time.perf_counter() - start) / args.clips

    print(f"baseline: official feature extraction {1000 * baseline:.1f} ms/clip")
    print(f"make-corpus: {1000 * per_clip:.1f} ms/clip = {1 / per_clip:.0f} clips/s on one core; "
          f"10,000 clips in {10000 * per_clip / 60:.1f} min")
    print(f"ratio make-corpus / baseline: {per_clip / baseline:.2f}")


if __name__ == "__main__":
    main()
