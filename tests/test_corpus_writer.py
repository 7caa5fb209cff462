"""make-corpus: HumanML3D layout, determinism, round trip, CLI errors."""
import hashlib
import json

import numpy as np
import pytest

from backend.__main__ import main
from backend.motion import skeleton as S
from backend.motion.hml_codec import extract_features_from_joints, recover_joints_from_features
from backend.training.corpus import FAMILY_NAMES, make_clip
from backend.training.corpus.writer import family_schedule, write_corpus

N = 26


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    manifest = write_corpus(out, num_clips=N, seed=5, verbose=False)
    return out, manifest


def digest(folder):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def test_layout_and_splits(corpus):
    out, manifest = corpus
    ids = (out / "all.txt").read_text().split()
    assert ids == [f"{i:06d}" for i in range(N)]
    splits = {name: (out / f"{name}.txt").read_text().split() for name in ("train", "val", "test", "train_val")}
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == ids
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["val"]) & set(splits["test"])
    assert sorted(splits["train_val"]) == sorted(splits["train"] + splits["val"])
    assert len(splits["train"]) == round(0.8 * N)
    on_disk = json.loads((out / "corpus.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert manifest["seed"] == 5 and manifest["num_clips"] == N and manifest["generator_version"]
    assert sum(manifest["counts_per_family"].values()) == N
    assert all(manifest["counts_per_family"][f] >= 1 for f in FAMILY_NAMES)  # N >= number of families
    assert {c["family"] for c in manifest["clips"].values()} == set(FAMILY_NAMES)
    actions = {"jump_forward": "jump", "walk": "locomotion", "stand": "idle", "sit_down": "sit_down", "kick": "kick"}
    for info in manifest["clips"].values():
        if info["family"] in actions:
            assert info["phrases"][0]["action"] == actions[info["family"]]
        assert len(info["phrases"]) == (2 if info["family"] == "sequence" else 1)


def test_arrays_and_texts(corpus):
    out, manifest = corpus
    for cid, info in manifest["clips"].items():
        feats = np.load(out / "new_joint_vecs" / f"{cid}.npy")
        joints = np.load(out / "new_joints" / f"{cid}.npy")
        assert feats.dtype == np.float32 and feats.shape == (info["frames"], 263)
        assert 40 <= len(feats) <= 196 and np.isfinite(feats).all()
        assert joints.dtype == np.float32 and joints.shape == (len(feats), 22, 3)
        np.testing.assert_allclose(joints, recover_joints_from_features(feats), atol=1e-6)
        lines = (out / "texts" / f"{cid}.txt").read_text().splitlines()
        assert len(lines) == 3
        for line in lines:
            caption, tokens, start, end = line.split("#")
            assert caption and (start, end) == ("0.0", "0.0")
            assert all("/" in tok for tok in tokens.split())
    mean, std = np.load(out / "Mean.npy"), np.load(out / "Std.npy")
    assert mean.shape == std.shape == (263,) and mean.dtype == std.dtype == np.float32
    assert (std > 0).all() and len(np.unique(std[S.RIC])) == 1 and len(np.unique(std[S.ROT6D])) == 1
    assert 0.8 < mean[3] < 1.0  # mean root height of a standing-height human


def test_round_trip_matches_the_generated_clip(corpus):
    """features -> recovered joints == the clip after HumanML3D canonicalisation."""
    out, manifest = corpus
    for cid in list(manifest["clips"])[:8]:
        family = manifest["clips"][cid]["family"]
        clip = make_clip(family, np.random.default_rng([5, int(cid)]))
        canonical = extract_features_from_joints(clip.joints, variant="pre2025").global_positions
        stored = np.load(out / "new_joints" / f"{cid}.npy")
        assert len(stored) == len(clip.joints) - 1
        np.testing.assert_allclose(stored, canonical[:-1], atol=2e-4)


def test_same_seed_same_bytes_any_worker_count(corpus, tmp_path):
    out, _ = corpus
    write_corpus(tmp_path / "again", num_clips=N, seed=5, workers=2, verbose=False)
    assert digest(tmp_path / "again") == digest(out)
    write_corpus(tmp_path / "other", num_clips=N, seed=6, verbose=False)
    other = digest(tmp_path / "other")
    assert other["new_joint_vecs/000000.npy"] != digest(out)["new_joint_vecs/000000.npy"]


def test_family_schedule_is_proportional():
    big = family_schedule(10000, 0)
    assert len(big) == 10000
    assert big.count("walk") == pytest.approx(10000 * 3.0 / 33.7, abs=1)
    assert family_schedule(10000, 0) == big and family_schedule(10000, 1) != big


def test_cli_make_corpus_and_errors(tmp_path, capsys):
    assert main(["make-corpus", "--out", str(tmp_path / "c"), "--num-clips", "3", "--seed", "1"]) == 0
    assert "3 clips" in capsys.readouterr().out
    assert main(["make-corpus", "--out", str(tmp_path / "c"), "--num-clips", "2"]) == 0  # replaces its own corpus
    assert len((tmp_path / "c" / "all.txt").read_text().split()) == 2
    assert len(list((tmp_path / "c" / "new_joint_vecs").iterdir())) == 2
    assert main(["make-corpus", "--out", str(tmp_path / "d"), "--num-clips", "0"]) == 2
    assert "--num-clips" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["make-corpus", "--out", str(tmp_path / "busy"), "--num-clips", "1"]) == 2
    assert "not empty" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["make-corpus", "--out", str(tmp_path / "file"), "--num-clips", "1"]) == 2


def test_heading_flip_repair():
    """A full circle passes through facing -z, where HumanML3D's root angular velocity flips sign."""
    from backend.training.corpus.base import State, Style
    from backend.training.corpus.clip import assemble
    from backend.training.corpus.locomotion import travel
    from backend.training.corpus.writer import clip_features
    rng = np.random.default_rng(0)
    style = Style()
    pose, _, _ = travel(rng, style, State.standing([0.0, 0.0], 0.0, style), seconds=7.0, curve=2 * np.pi)
    _, joints = assemble(rng, style, [pose])
    official = extract_features_from_joints(joints, variant="pre2025", retarget=False)
    ours = clip_features(joints)
    changed = np.nonzero((ours != official.features.astype(np.float32)).any(axis=1))[0]
    assert 1 <= len(changed) <= 2
    assert (ours[:, 1:] == official.features[:, 1:].astype(np.float32)).all()
    np.testing.assert_allclose(recover_joints_from_features(ours), official.global_positions[:-1], atol=1e-4)
    assert np.abs(recover_joints_from_features(official.features) - official.global_positions[:-1]).max() > 0.05
