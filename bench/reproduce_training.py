"""Does the training command reproduce the shipped demo model's loss curve? (issue 8)

    python bench/reproduce_training.py --steps 300                       # builds the corpus first (~1 min)
    python bench/reproduce_training.py --data data/corpus --steps 300    # reuse a make-corpus folder

Re-runs the recipe recorded in ``backend/models/demo/training_record.json`` from scratch (same
corpus seed and size, same config) for the first ``--steps`` steps and prints the recorded and the
reproduced training loss at every logged step, and their relative difference. The whole 8,000-step
run takes about 1.5 h on the 2-core CPU; the first few hundred steps already show whether data,
initialisation, batching and noise are what they were. Exit code 1 when a logged loss differs by
more than ``--tolerance`` (default 5 %). When a corpus folder is given, its corpus.json must match
the recorded seed and size.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.mdm import DEMO_MODEL_DIR  # noqa: E402
from backend.training.corpus import GENERATOR_VERSION  # noqa: E402
from backend.training.corpus.writer import write_corpus  # noqa: E402
from backend.training.train import TrainConfig, Trainer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", default=str(DEMO_MODEL_DIR / "training_record.json"))
    parser.add_argument("--data", default=None, help="an existing make-corpus folder with the recorded seed/size")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2, help="corpus generation processes")
    args = parser.parse_args()
    record = json.loads(Path(args.record).read_text())
    corpus = record["corpus"]
    if str(corpus.get("generator_version")) != GENERATOR_VERSION:
        print(f"the shipped model was trained on corpus generator version {corpus.get('generator_version')}, this "
              f"checkout generates version {GENERATOR_VERSION}: check out the commit that shipped it")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "corpus"
        if args.data:
            manifest = json.loads((data / "corpus.json").read_text())
            if (manifest.get("seed"), manifest.get("num_clips"), str(manifest.get("generator_version"))) != \
                    (corpus["seed"], corpus["num_clips"], GENERATOR_VERSION):
                print(f"{data} is not the recorded corpus (seed {corpus['seed']}, {corpus['num_clips']} clips)")
                return 2
        else:
            t0 = time.perf_counter()
            write_corpus(data, num_clips=corpus["num_clips"], seed=corpus["seed"], workers=args.workers,
                         verbose=False)
            print(f"corpus: {corpus['num_clips']} clips, seed {corpus['seed']} in {time.perf_counter() - t0:.0f} s")
        known = {f.name for f in fields(TrainConfig)}
        # the first phase's configuration: a run continued with --resume may have changed it later
        first = next((r["config_before"] for r in record.get("resumed", []) if r.get("config_before")),
                     record["config"])
        config = {k: v for k, v in first.items() if k in known}
        config.update(data_dir=str(data), out_dir=str(Path(tmp) / "run"), resume=False,
                      val_interval=10 ** 9, save_interval=10 ** 9)
        trainer = Trainer(TrainConfig(**config))
        recorded = {h["step"]: h["loss"] for h in record["loss_curve"]}
        worst = 0.0
        print(f"{'step':>6s} {'recorded':>10s} {'reproduced':>11s} {'rel diff':>9s}")
        t0 = time.perf_counter()
        window, batches = [], trainer.batch_iterator()
        while trainer.step < args.steps:
            window.append(trainer.train_step(next(batches)))
            if trainer.step % trainer.cfg.log_interval == 0:
                loss, window = sum(window) / len(window), []
                if trainer.step in recorded:
                    rel = abs(loss - recorded[trainer.step]) / recorded[trainer.step]
                    worst = max(worst, rel)
                    print(f"{trainer.step:6d} {recorded[trainer.step]:10.4f} {loss:11.4f} {100 * rel:8.2f}%", flush=True)
        print(f"{args.steps} steps in {time.perf_counter() - t0:.0f} s; largest relative difference "
              f"{100 * worst:.2f}% (tolerance {100 * args.tolerance:.0f}%)")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
