"""Training path end to end on a tiny corpus: data loading, loss goes down, official layout, reload, sampling."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend.mdm import text_encoders as TE
from backend.training import dataset as D
from tests.helpers.mdm_fixtures import tiny_encoders  # noqa: F401
from backend.training.corpus.writer import write_corpus
from backend.training.train import PRESETS, TrainConfig, Trainer, learning_rate, masked_mse

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, num_clips=48, seed=3, verbose=False)
    return out


def test_text_line_parsing_and_official_crop_rule():
    assert D.parse_text_line("a person walks.#a/DET person/NOUN#0.0#0.0") == ("a person walks.", 0.0, 0.0)
    assert D.parse_text_line("jumps#x#1.5#3.0") == ("jumps", 1.5, 3.0)
    assert D.parse_text_line("#x#0#0") is None and D.parse_text_line("broken") is None
    rng = np.random.default_rng(0)
    crops = {D.crop_length(103, rng) for _ in range(300)}
    assert crops == {100, 96}                      # multiple of 4, sometimes one unit shorter
    assert {D.crop_length(40, rng) for _ in range(50)} == {40}   # never below the minimum


def test_split_loading_handles_segments_and_bad_files(tmp_path):
    (tmp_path / "new_joint_vecs").mkdir()
    (tmp_path / "texts").mkdir()
    np.save(tmp_path / "new_joint_vecs/a.npy", np.zeros((120, 263), np.float32))
    (tmp_path / "texts/a.txt").write_text("whole clip#x#0.0#0.0\nfirst part#x#0.0#2.5\ntoo short#x#0.0#1.0\n")
    np.save(tmp_path / "new_joint_vecs/b.npy", np.zeros((120, 262), np.float32))  # wrong width: skipped
    (tmp_path / "texts/b.txt").write_text("bad#x#0.0#0.0\n")
    (tmp_path / "train.txt").write_text("a\nb\nmissing\n")
    samples = D.load_split(tmp_path, "train")
    assert sorted((len(s.motion), tuple(s.captions)) for s in samples) == [(50, ("first part",)), (120, ("whole clip",))]
    with pytest.raises(D.InputError, match="val.txt"):
        D.load_split(tmp_path, "val")


def test_bucket_sampler_groups_similar_lengths():
    lengths = list(np.random.default_rng(0).integers(40, 197, size=2000))
    batches = iter(D.LengthBucketSampler(lengths, 16, seed=0))
    spreads = [np.ptp(np.asarray(lengths)[next(batches)]) for _ in range(50)]
    assert np.median(spreads) < 40          # random batches of 16 would spread over ~130 frames


def test_learning_rate_schedule():
    cfg = TrainConfig(data_dir="", out_dir="", lr=1e-3, warmup_steps=10, num_steps=110, min_lr_ratio=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 10) == pytest.approx(1e-3)
    assert learning_rate(cfg, 110) == pytest.approx(1e-4)


def test_masked_mse_ignores_padding():
    pred, target = torch.zeros(2, 5, 3), torch.ones(2, 5, 3)
    pred[0, 3:] = 100.0                                   # garbage in the padded frames of sample 0
    valid = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.allclose(masked_mse(pred, target, valid), torch.ones(2))


def test_command_line_options_override_the_preset_and_keep_the_rest():
    import argparse

    from backend.training.cli import _add_train, train_config_from_args
    parser = argparse.ArgumentParser()
    _add_train(parser)
    demo = train_config_from_args(parser.parse_args(["--data", "d", "--out", "o"]))
    assert (demo.arch, demo.text_encoder_type, demo.num_steps, demo.oversample, demo.word_drop_prob,
            demo.sentence_drop_prob) == ("trans_dec", "minilm_tokens", 8000, {"wav": 4, "kick": 4, "turn": 4, "jump": 3},
                                         0.3, 0.25)
    pooled = train_config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--preset", "demo_pooled"]))
    assert (pooled.arch, pooled.text_encoder_type, pooled.latent_dim) == ("trans_enc", "minilm", demo.latent_dim)
    assert (pooled.oversample, pooled.word_drop_prob, pooled.sentence_drop_prob) == ({}, 0.0, 0.0)
    official = train_config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--preset", "humanml"]))
    assert (official.arch, official.text_encoder_type, official.latent_dim, official.layers, official.diffusion_steps,
            official.batch_size, official.oversample, official.word_drop_prob) == \
        ("trans_enc", "clip", 512, 8, 1000, 64, {}, 0.0)
    assert learning_rate(official, 0) == learning_rate(official, 300_000) == 1e-4     # constant, as in MDM
    no_dropout = train_config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--word-drop-prob", "0",
                                                           "--sentence-drop-prob", "0"]))
    assert no_dropout.word_drop_prob == no_dropout.sentence_drop_prob == 0.0
    assert not demo.sentence_token
    assert train_config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--sentence-token"])).sentence_token
    assert not train_config_from_args(parser.parse_args(["--data", "d", "--out", "o", "--preset", "tiny",
                                                         "--no-sentence-token"])).sentence_token
    # --oversample adds to the preset's table, changes a factor, or removes an entry with factor 1
    changed = train_config_from_args(parser.parse_args(["--data", "d", "--out", "o",
                                                        "--arch", "trans_enc", "--text-encoder-type", "minilm",
                                                        "--oversample", "walk=2", "--oversample", "turn=6",
                                                        "--oversample", "jump=1", "--num-steps", "10"]))
    assert (changed.arch, changed.text_encoder_type, changed.oversample, changed.num_steps) == \
        ("trans_enc", "minilm", {"wav": 4, "kick": 4, "turn": 6, "walk": 2}, 10)
    assert PRESETS["demo"]["oversample"] == {"wav": 4, "kick": 4, "turn": 4, "jump": 3}   # left untouched
    assert changed.latent_dim == PRESETS["demo"]["latent_dim"] == 192


@pytest.mark.slow
@pytest.mark.parametrize("arch,text_encoder,sentence_token", [("trans_enc", "minilm", False),
                                                                ("trans_dec", "minilm_tokens", False),
                                                                ("trans_dec", "minilm_tokens", True)])
def test_tiny_training_run_learns_writes_official_layout_and_samples(tiny_corpus, tmp_path, arch, text_encoder,
                                                                     sentence_token):
    out = tmp_path / "model"
    cfg = TrainConfig(data_dir=str(tiny_corpus), out_dir=str(out), arch=arch, text_encoder_type=text_encoder,
                      sentence_token=sentence_token, **PRESETS["tiny"])
    trainer = Trainer(cfg)
    history = trainer.run()
    losses = [h["loss"] for h in history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert "val_loss_ema" in history[-1]

    assert np.array_equal(np.load(out / "Mean.npy"), np.load(tiny_corpus / "Mean.npy"))   # stats travel along
    args = json.loads((out / "args.json").read_text())
    assert args["use_ema"] is True and args["dataset"] == "humanml" and (args["arch"], args["text_encoder_type"]) == (arch, text_encoder)
    assert args.get("sentence_token", False) is sentence_token
    ckpt = torch.load(out / f"model{cfg.num_steps:09d}.pt", weights_only=True)
    assert set(ckpt) == {"model", "model_avg"}
    assert not torch.equal(ckpt["model"]["output_process.poseFinal.weight"], ckpt["model_avg"]["output_process.poseFinal.weight"])

    from backend.mdm.pipeline import MotionGenerator
    gen = MotionGenerator.load(out)
    assert gen.args.sentence_token is sentence_token
    # the EMA weights are what sampling uses
    assert torch.equal(gen.model.state_dict()["output_process.poseFinal.weight"],
                       ckpt["model_avg"]["output_process.poseFinal.weight"])
    result = gen.generate("a person walks forward", seconds=2.0, seed=1)
    assert result.joints.shape == (1, 40, 22, 3) and np.isfinite(result.joints).all()
    # a per-word model records the words it was trained on (every caption's token ids); a pooled one has none
    vocabulary = out / "caption_vocabulary.json"
    assert vocabulary.is_file() == (text_encoder == "minilm_tokens")
    if vocabulary.is_file():
        trained = {i for caption in trainer.train_data.captions + trainer.val_data.captions
                   for i in gen.text_encoder.tokens.ids(caption)}
        assert set(json.loads(vocabulary.read_text())["token_ids"]) == trained
        words = {w for caption in trainer.train_data.captions + trainer.val_data.captions
                 for w in re.findall(r"[a-z]+", caption.lower())}
        assert set(json.loads(vocabulary.read_text())["words"]) == words
        assert result.recipe["unseen_words"] == []
        assert gen.generate("a person pirouettes", seconds=0.5).recipe["unseen_words"]


@pytest.mark.parametrize("kind", ["minilm_tokens", "clip"])
def test_caption_embeddings_gather_each_captions_rows_padded_to_the_longest(tiny_encoders, kind):
    from backend.training.train import CaptionEmbeddings
    captions = ["a person walks", "someone waves with the right hand twice", "a man jumps", "a person runs forward"]
    table = CaptionEmbeddings(captions, kind, tiny_encoders[kind], torch.device("cpu"))
    encoder = TE.load_text_encoder(kind, tiny_encoders[kind])
    singles = [encoder.encode(c)[0][0] for c in captions]
    assert table.max_len == max(len(r) for r in singles) and table.rows.shape[0] == sum(len(r) for r in singles)
    text, pad = table.gather(torch.tensor([3, 1, 3, 0]))
    assert text.shape == (4, table.max_len, table.width)
    for row, i in enumerate([3, 1, 3, 0]):
        n = len(singles[i])
        assert torch.allclose(text[row, :n], singles[i], atol=1e-5) and not text[row, n:].any()
        if pad is not None:
            assert not pad[row, :n].any() and pad[row, n:].all()
    assert (pad is None) == (kind == "clip")       # one pooled row per caption: nothing to pad


@pytest.mark.slow
def test_humanml_preset_trains_the_official_clip_recipe_from_the_command_line(tiny_corpus, tiny_encoders, tmp_path):
    """What a user with the real dataset runs (trans_enc + CLIP, 1000-step recipe), at a tiny size."""
    out = tmp_path / "hml"
    run = subprocess.run([sys.executable, "-m", "backend", "train", "--data", str(tiny_corpus), "--out", str(out),
                          "--preset", "humanml", "--text-encoder-dir", str(tiny_encoders["clip"]), "--latent-dim", "32",
                          "--layers", "1", "--ff-size", "64", "--diffusion-steps", "20", "--batch-size", "8",
                          "--lr", "1e-3", "--num-steps", "40", "--log-interval", "10", "--val-interval", "20",
                          "--save-interval", "40"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    args = json.loads((out / "args.json").read_text())
    assert (args["arch"], args["text_encoder_type"], args["dataset"], args["cond_mask_prob"], args["noise_schedule"],
            args["lambda_vel"], args["diffusion_steps"]) == ("trans_enc", "clip", "humanml", 0.1, "cosine", 0.0, 20)
    assert not (out / "caption_vocabulary.json").exists()          # pooled CLIP: no per-word rows to hide
    record = json.loads((out / "training_log.json").read_text())
    assert record["final"] and record["config"]["lr"] == 1e-3 and record["config"]["ema_beta"] == 0.9999
    losses = [h["loss"] for h in record["history"] if "loss" in h]
    assert len(losses) == 4 and losses[-1] < losses[0], losses

    from backend.mdm.pipeline import MotionGenerator
    gen = MotionGenerator.load(out, device="cpu", text_encoder_dir=tiny_encoders["clip"])
    result = gen.generate("a person jumps", seconds=1.0, seed=2, num_samples=2)
    assert result.joints.shape == (2, 20, 22, 3) and np.isfinite(result.joints).all()
    assert result.recipe["text_encoder"] == "clip" and result.recipe["guidance_used"] == 2.5


def test_train_cli_rejects_bad_values(tiny_corpus, tmp_path):
    run = subprocess.run([sys.executable, "-m", "backend", "train", "--data", str(tiny_corpus), "--out",
                          str(tmp_path / "m"), "--preset", "tiny", "--num-steps", "0"],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 2 and "--num-steps" in run.stderr
    run = subprocess.run([sys.executable, "-m", "backend", "train", "--data", str(tmp_path / "nothing"), "--out",
                          str(tmp_path / "m"), "--preset", "tiny"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 2 and "train.txt" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_interrupted_run_resumes_from_its_newest_checkpoint(tiny_corpus, tmp_path):
    out = tmp_path / "model"
    short = dict(PRESETS["tiny"], num_steps=24, save_interval=12, log_interval=6, val_interval=12)
    first = Trainer(TrainConfig(data_dir=str(tiny_corpus), out_dir=str(out), **short))
    first.run()
    (out / "model000000024.pt").unlink()            # as if killed after the step-12 checkpoint
    resumed = Trainer(TrainConfig(data_dir=str(tiny_corpus), out_dir=str(out), resume=True, **short))
    assert resumed.step == 12
    saved = torch.load(out / "model000000012.pt", weights_only=True)
    assert torch.equal(resumed.ema.state_dict()["output_process.poseFinal.weight"],
                       saved["model_avg"]["output_process.poseFinal.weight"])
    history = resumed.run()
    assert [h["step"] for h in history] == [6, 12, 18, 24]            # the curve continues, no duplicates
    assert history[2]["seconds"] >= history[1]["seconds"]
    log = json.loads((out / "training_log.json").read_text())
    # the step-24 training_state.pt left by the first run does not match step 12: fresh moments, recorded
    assert [{k: r[k] for k in ("step", "checkpoint", "optimizer_restored")} for r in log["resumed"]] == \
        [{"step": 12, "checkpoint": "model000000012.pt", "optimizer_restored": False}]
    assert log["resumed"][0]["config_before"]["num_steps"] == 24
    assert (out / "model000000024.pt").is_file()

    # a state file matching the checkpoint restores the optimizer too
    again = Trainer(TrainConfig(data_dir=str(tiny_corpus), out_dir=str(out), resume=True,
                                **dict(short, num_steps=30)))
    assert again.step == 24 and again.resumed[-1]["optimizer_restored"] is True
    assert again.optimizer.state_dict()["state"], "AdamW moments were not restored"

    # options that change the network without changing a parameter shape are refused, not loaded silently
    from backend.errors import InputError
    with pytest.raises(InputError, match="mask_frames True -> False"):
        Trainer(TrainConfig(data_dir=str(tiny_corpus), out_dir=str(out), resume=True,
                            **dict(short, num_steps=30, mask_frames=False)))

    # shipping the run: EMA weights only (under both keys), the record and README tell the resume
    from backend.training.ship import ship_model
    shipped = ship_model(out, tiny_corpus, tmp_path / "shipped", "make-corpus && train", known_limits="- waves oddly")
    blob = torch.load(shipped / "model000000024.pt", weights_only=True)
    assert torch.equal(blob["model"]["output_process.poseFinal.weight"], blob["model_avg"]["output_process.poseFinal.weight"])
    assert len(list(shipped.glob("model*.pt"))) == 1
    record = json.loads((shipped / "training_record.json").read_text())
    assert record["checkpoint_step"] == 24 and record["resumed"][0]["step"] == 12
    assert [h["step"] for h in record["loss_curve"]] == [6, 12, 18, 24]
    readme = (shipped / "README.md").read_text()
    assert "continued from a checkpoint (`--resume`) at step 12 (fresh optimizer moments)" in readme and "- waves oddly" in readme

    # continued further (to step 30), the step-24 checkpoint ships with the configuration it was trained with
    again.run()
    earlier = ship_model(out, tiny_corpus, tmp_path / "earlier", "train", checkpoint=out / "model000000024.pt")
    record = json.loads((earlier / "training_record.json").read_text())
    assert record["checkpoint_step"] == 24 and record["config"]["num_steps"] == 24
    assert [r["step"] for r in record["resumed"]] == [12]
    newest = json.loads((ship_model(out, tiny_corpus, tmp_path / "newest", "train") / "training_record.json").read_text())
    assert newest["checkpoint_step"] == 30 and newest["config"]["num_steps"] == 30


def test_resume_without_a_checkpoint_is_a_clear_error(tiny_corpus, tmp_path):
    run = subprocess.run([sys.executable, "-m", "backend", "train", "--data", str(tiny_corpus), "--out",
                          str(tmp_path / "empty"), "--preset", "tiny", "--resume"],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 2 and "no model*.pt checkpoint" in run.stderr and "Traceback" not in run.stderr


def test_oversampling_draws_matching_clips_more_often(tiny_corpus, tmp_path):
    plain = Trainer(TrainConfig(data_dir=str(tiny_corpus), out_dir=str(tmp_path / "a"), **PRESETS["tiny"]))
    heavy = Trainer(TrainConfig(data_dir=str(tiny_corpus), out_dir=str(tmp_path / "b"), oversample={"walk": 3},
                                **PRESETS["tiny"]))
    walks = np.array([any("walk" in c.lower() for c in s.captions) for s in plain.train_data.samples])
    assert 0 < walks.sum() < len(walks)
    assert np.array_equal(plain.sampling_pool(), np.arange(len(walks)))        # default: every clip once
    pool = heavy.sampling_pool()
    assert len(pool) == len(walks) + 2 * walks.sum()
    assert np.all(np.bincount(pool, minlength=len(walks))[walks] == 3)

    def walk_share(trainer):
        batches = trainer.batch_iterator()
        drawn = np.concatenate([next(batches) for _ in range(60)])
        return walks[drawn].mean()
    assert walk_share(heavy) > 1.3 * walk_share(plain)


def test_train_cli_rejects_a_bad_oversample_spec(tiny_corpus, tmp_path):
    run = subprocess.run([sys.executable, "-m", "backend", "train", "--data", str(tiny_corpus), "--out",
                          str(tmp_path / "m"), "--preset", "tiny", "--oversample", "wav(=2"],
                         capture_output=True, text=True, cwd=REPO_ROOT)
    assert run.returncode == 2 and "--oversample" in run.stderr and "Traceback" not in run.stderr


def text_pads_of_training_steps(cfg: TrainConfig, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> (caption padding [steps*B, L] as gathered, the text_pad the network saw after dropout)."""
    trainer = Trainer(cfg)
    gathered, seen = [], []
    gather, denoise = trainer.text.gather, trainer.model.denoise

    def spy_gather(ids):
        text, text_pad = gather(ids)
        gathered.append(text_pad.clone())
        return text, text_pad

    def spy_denoise(x, t, text, text_pad, *rest):
        seen.append(text_pad.clone())
        return denoise(x, t, text, text_pad, *rest)
    trainer.text.gather, trainer.model.denoise = spy_gather, spy_denoise
    batches = trainer.batch_iterator()
    for _ in range(steps):
        trainer.train_step(next(batches))
    return torch.cat(gathered), torch.cat(seen)


def test_word_dropout_hides_word_rows_but_never_the_sentence_row(tiny_corpus, tmp_path):
    padding, pad = text_pads_of_training_steps(
        TrainConfig(data_dir=str(tiny_corpus), out_dir=str(tmp_path / "w"), arch="trans_dec",
                    text_encoder_type="minilm_tokens", word_drop_prob=0.5, **PRESETS["tiny"]), 4)
    words = ~padding[:, 1:]                                     # the real word rows
    assert not pad[:, 0].any()                                  # the sentence row always stays
    assert pad[padding].all()                                   # padding stays padding
    assert 0.35 < (pad[:, 1:] & words).sum() / words.sum() < 0.65   # about half of the words hidden


def test_sentence_dropout_hides_every_word_row_of_a_quarter_of_the_samples(tiny_corpus, tmp_path):
    padding, pad = text_pads_of_training_steps(
        TrainConfig(data_dir=str(tiny_corpus), out_dir=str(tmp_path / "s"), arch="trans_dec",
                    text_encoder_type="minilm_tokens", sentence_drop_prob=0.25, **PRESETS["tiny"]), 16)
    words = ~padding[:, 1:]
    hidden = (pad[:, 1:] & words).sum(1)
    everything, nothing = hidden == words.sum(1), hidden == 0
    assert (everything | nothing).all()                         # a sample keeps all its words or none
    assert 0.12 < everything.float().mean() < 0.4               # about a quarter of them none
    assert not pad[:, 0].any() and pad[padding].all()


def test_word_dropout_needs_per_word_conditioning(tiny_corpus, tmp_path):
    from backend.errors import InputError
    with pytest.raises(InputError, match="per-word") as refused:
        Trainer(TrainConfig(data_dir=str(tiny_corpus), out_dir=str(tmp_path / "p"), text_encoder_type="minilm",
                            word_drop_prob=0.2, **PRESETS["tiny"]))
    assert "--word-drop-prob 0 --sentence-drop-prob 0" in str(refused.value)   # says how to get going
    # refused up front, before the data is read and the captions are encoded
    with pytest.raises(InputError, match="per-word"):
        Trainer(TrainConfig(data_dir=str(tmp_path / "no-such-corpus"), out_dir=str(tmp_path / "q"),
                            text_encoder_type="clip", word_drop_prob=0.3, **PRESETS["tiny"]))


def test_sentence_token_is_refused_for_an_encoder_model(tmp_path):
    from backend.errors import InputError
    with pytest.raises(InputError, match="--sentence-token is a trans_dec option.*pass --no-sentence-token"):
        Trainer(TrainConfig(data_dir=str(tmp_path / "no-such-corpus"), out_dir=str(tmp_path / "q"), arch="trans_enc",
                            text_encoder_type="minilm", sentence_token=True, **PRESETS["tiny"]))
