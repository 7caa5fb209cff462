"""Write the corpus in the HumanML3D folder layout, so the training code reads it exactly like the
real dataset:

    OUT/new_joint_vecs/<id>.npy   float32 [F-1, 263]  pre2025 features (the released dataset's variant)
    OUT/new_joints/<id>.npy       float32 [F-1, 22, 3] joints recovered from those features
    OUT/texts/<id>.txt            3 lines "caption#word/POS ...#0.0#0.0"
    OUT/train.txt val.txt test.txt train_val.txt all.txt   ids, one per line (80 / 5 / 15 %)
    OUT/Mean.npy, OUT/Std.npy     float32 [263] statistics of the training split, std averaged per
                                  feature group as HumanML3D does
    OUT/corpus.json               seed, generator version, counts per family, per clip: family,
                                  frames and what happened ("phrases": action + slots, e.g. hand)

Clip i is drawn from its own generator seeded by (seed, i), and the family schedule is fixed by
the seed, so the same seed gives byte-identical files whatever the number of workers.
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...motion.hml_codec import extract_features_from_joints, recover_joints_from_features
from ...motion.skeleton import FEATURE_DIM, ROOT_HEIGHT, ROOT_LIN_VEL, ROOT_ROT_VEL, RIC, ROT6D, LOCAL_VEL, FOOT_CONTACT
from . import FAMILIES, FAMILY_NAMES, GENERATOR_VERSION, HELD_OUT_PARAPHRASES, make_clip
from .captions import humanml_line

SPLITS = (("train", 0.80), ("val", 0.05), ("test", 0.15))
FEATURE_GROUPS = (ROOT_ROT_VEL, ROOT_LIN_VEL, ROOT_HEIGHT, RIC, ROT6D, LOCAL_VEL, FOOT_CONTACT)
_LAYOUT = ("new_joint_vecs", "new_joints", "texts", "previews")
_FILES = ("train.txt", "val.txt", "test.txt", "train_val.txt", "all.txt", "Mean.npy", "Std.npy", "corpus.json")


def family_schedule(num_clips: int, seed: int) -> list[str]:
    """Families of clips 0..N-1: counts proportional to the weights (every family at least once
    when N allows), in a seeded random order."""
    weights = np.array([FAMILIES[f][0] for f in FAMILY_NAMES], dtype=np.float64)
    share = weights / weights.sum() * num_clips
    counts = np.floor(share).astype(int)
    if num_clips >= len(FAMILY_NAMES):
        counts = np.maximum(counts, 1)
    while counts.sum() > num_clips:
        counts[np.argmax(counts - share)] -= 1
    while counts.sum() < num_clips:
        counts[np.argmax(share - counts)] += 1
    schedule = [f for f, c in zip(FAMILY_NAMES, counts) for _ in range(c)]
    order = np.random.default_rng([seed, 0x5EED]).permutation(num_clips)
    return [schedule[i] for i in order]


def clip_id(index: int) -> str:
    return f"{index:06d}"


def clip_features(joints: np.ndarray) -> np.ndarray:
    """joints [F, 22, 3] -> pre2025 features [F-1, 263] float32, with the heading-flip repair.

    HumanML3D's root angular velocity is arcsin(y) of r_rot[t+1] * r_rot[t]^-1, where each r_rot
    comes from qbetween(forward, +z) and so has w >= 0. When the body faces -z that sign
    convention flips between two frames and the relative rotation comes out negated: the
    feature gets the wrong sign and every later frame decodes with a heading error (the released
    dataset has the same artifact). We replace just those frames by the true half-angle change,
    measured from the shoulder line in global vs root-local positions; all other frames stay
    bit-identical to the official extraction.
    """
    # Our bones already have the target lengths, so HumanML3D's retargeting step is an identity
    # (checked in tests) and can be skipped.
    ex = extract_features_from_joints(joints, variant="pre2025", retarget=False)
    features = ex.features.copy()

    def angle(v):
        return np.arctan2(v[..., 0], v[..., 2])
    phi = angle(ex.local_positions[:, 17] - ex.local_positions[:, 16]) - angle(
        ex.global_positions[:, 17] - ex.global_positions[:, 16])
    half_step = 0.5 * (np.mod(np.diff(phi) + np.pi, 2.0 * np.pi) - np.pi)
    flipped = np.abs(features[:, 0] - half_step) > 1e-6
    features[flipped, 0] = half_step[flipped]
    return features.astype(np.float32)


def _make_one(job: tuple[int, str, int, str]) -> dict:
    """Generate, encode and write clip ``index``; returns its metadata and feature sums."""
    index, family, seed, out = job
    clip = make_clip(family, np.random.default_rng([seed, index]))
    features = clip_features(clip.joints)
    joints = recover_joints_from_features(features)
    out = Path(out)
    cid = clip_id(index)
    np.save(out / "new_joint_vecs" / f"{cid}.npy", features)
    np.save(out / "new_joints" / f"{cid}.npy", joints.astype(np.float32))
    (out / "texts" / f"{cid}.txt").write_text("".join(humanml_line(c) + "\n" for c in clip.captions))
    f64 = features.astype(np.float64)
    return {"id": cid, "family": family, "frames": len(features), "phrases": clip.params["phrases"],
            "sum": f64.sum(0), "sumsq": (f64 ** 2).sum(0)}


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the corpus")
    if out.is_dir() and any(out.iterdir()):
        if not (out / "corpus.json").is_file():
            raise InputError(f"--out {out} is not empty and holds no corpus.json; choose an empty or new folder")
        for name in _LAYOUT:  # an older corpus: replace it
            shutil.rmtree(out / name, ignore_errors=True)
        for name in _FILES:
            (out / name).unlink(missing_ok=True)
    for name in _LAYOUT[:3]:
        (out / name).mkdir(parents=True, exist_ok=True)


def _group_std(mean_sq: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Per-dimension std, then averaged within each feature group (HumanML3D's Std.npy recipe)."""
    std = np.sqrt(np.maximum(mean_sq - mean ** 2, 0.0))
    for group in FEATURE_GROUPS:
        std[group] = std[group].mean()
    return np.maximum(std, 1e-4)  # a group that never varies (tiny corpora) must not divide by 0


def write_corpus(out_dir: str | Path, num_clips: int = 10000, seed: int = 0, workers: int = 1,
                 previews: int = 0, verbose: bool = True) -> dict:
    """Generate ``num_clips`` clips into ``out_dir``; returns the manifest (also corpus.json)."""
    if not 1 <= num_clips <= 1_000_000:
        raise InputError(f"--num-clips must be between 1 and 1000000, got {num_clips}")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    out = Path(out_dir)
    _prepare(out)
    families = family_schedule(num_clips, seed)
    jobs = [(i, f, seed, str(out)) for i, f in enumerate(families)]
    started = time.time()
    results = []
    if workers == 1:
        stream = map(_make_one, jobs)
    else:
        import multiprocessing as mp
        pool = mp.get_context("fork").Pool(workers)
        stream = pool.imap(_make_one, jobs, chunksize=16)
    try:
        for k, res in enumerate(stream, 1):
            results.append(res)
            if verbose and (k % 500 == 0 or k == num_clips):
                rate = k / max(time.time() - started, 1e-9)
                print(f"make-corpus: {k}/{num_clips} clips ({rate:.1f} clips/s)", file=sys.stderr, flush=True)
    finally:
        if workers > 1:
            pool.close()
            pool.join()

    ids = [r["id"] for r in results]
    order = np.random.default_rng([seed, 0x5B17]).permutation(num_clips)
    bounds = np.cumsum([0] + [int(round(frac * num_clips)) for _, frac in SPLITS[:-1]])
    split_ids = {name: sorted(ids[i] for i in order[bounds[k]:bounds[k + 1]]) if k + 1 < len(SPLITS)
                 else sorted(ids[i] for i in order[bounds[k]:]) for k, (name, _) in enumerate(SPLITS)}
    split_ids["train_val"] = sorted(split_ids["train"] + split_ids["val"])
    split_ids["all"] = ids
    for name, members in split_ids.items():
        (out / f"{name}.txt").write_text("".join(m + "\n" for m in members))

    stats_from = set(split_ids["train"]) or set(ids)
    chosen = [r for r in results if r["id"] in stats_from]
    frames = sum(r["frames"] for r in chosen)
    mean = sum(r["sum"] for r in chosen) / frames
    mean_sq = sum(r["sumsq"] for r in chosen) / frames
    np.save(out / "Mean.npy", mean.astype(np.float32))
    np.save(out / "Std.npy", _group_std(mean_sq, mean).astype(np.float32))

    counts = {f: 0 for f in FAMILY_NAMES}
    for r in results:
        counts[r["family"]] += 1
    lengths = np.array([r["frames"] for r in results])
    manifest = {
        "generator": "blender-mdm procedural motion corpus",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "num_clips": num_clips,
        "fps": 20.0,
        "feature_variant": "pre2025",
        "feature_dim": FEATURE_DIM,
        "skeleton": "HumanML3D 22 joints at the target bone lengths, y up, metres",
        "frames": {"min": int(lengths.min()), "max": int(lengths.max()), "mean": float(lengths.mean())},
        "counts_per_family": counts,
        "splits": {name: len(members) for name, members in split_ids.items()},
        "mean_std_from": "train split, std averaged per feature group",
        "held_out_paraphrases": list(HELD_OUT_PARAPHRASES),
        "clips": {r["id"]: {"family": r["family"], "frames": r["frames"], "phrases": r["phrases"]} for r in results},
    }
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    if previews:
        _write_previews(out, results, previews)
    if verbose:
        print(f"make-corpus: wrote {num_clips} clips to {out} in {time.time() - started:.1f} s",
              file=sys.stderr, flush=True)
    return manifest


def _write_previews(out: Path, results: list[dict], per_family: int) -> None:
    """Contact sheets of the first clips of each family (for looking, not for training)."""
    from ...motion.preview import write_contact_sheet
    folder = out / "previews"
    folder.mkdir(exist_ok=True)
    seen: dict[str, int] = {}
    for r in results:
        if seen.get(r["family"], 0) >= per_family:
            continue
        seen[r["family"]] = seen.get(r["family"], 0) + 1
        joints = np.load(out / "new_joints" / f"{r['id']}.npy")
        write_contact_sheet(folder / f"{r['family']}_{r['id']}.png", joints, frames=12, per_row=4)
