"""MotionGenerator end to end with tiny models of every arch / text-encoder combination."""
import logging

import numpy as np
import pytest
import torch

import backend.mdm.pipeline as P
from backend.errors import Cancelled, CheckpointError, DeviceError, InputError
from backend.mdm.sampler import NoiseRecorder, RecordedNoise, SeededNoise, inbetween_mask, upper_body_mask
from backend.motion.hml_codec import MotionNormalizer, recover_joints_from_features
from tests.helpers.mdm_fixtures import tiny_encoders  # noqa: F401
from tests.helpers.tiny_models import write_tiny_model_dir

COMBOS = [("trans_enc", "clip", False), ("trans_enc", "minilm", False), ("trans_dec", "clip", False),
          ("trans_dec", "clip", True), ("trans_dec", "bert", True), ("trans_dec", "minilm_tokens", False),
          ("gru", "clip", False)]


@pytest.fixture(scope="module")
def generators(tmp_path_factory, tiny_encoders):
    cache = {}

    def get(arch="trans_enc", encoder="clip", emb=False, **kw):
        key = (arch, encoder, emb, tuple(sorted(kw.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp("model")
            write_tiny_model_dir(folder, arch=arch, text_encoder=encoder, emb_trans_dec=emb, **kw)
            cache[key] = P.MotionGenerator.load(folder, device="cpu", text_encoder_dir=tiny_encoders[encoder])
        return cache[key]
    return get


@pytest.mark.parametrize("arch,encoder,emb", COMBOS)
def test_every_combination_generates(generators, arch, encoder, emb):
    gen = generators(arch, encoder, emb)
    r = gen.generate("a person walks forward", seconds=1.5, seed=3, num_samples=2)
    assert r.features.shape == (2, 30, 263) and r.joints.shape == (2, 30, 22, 3) and r.lengths.tolist() == [30, 30]
    assert r.features.dtype == np.float32 and r.joints.dtype == np.float32 and np.isfinite(r.joints).all()
    assert np.allclose(r.joints, recover_joints_from_features(r.features), atol=1e-6)
    assert r.recipe["model_id"] == gen.model_id and r.recipe["steps"] == 10 and r.recipe["guidance_used"] == 2.5
    arrays = r.to_arrays()
    assert set(arrays) == {"joints", "features", "lengths", "fps", "recipe"} and float(arrays["fps"]) == 20.0


def test_same_seed_same_motion(generators):
    gen = generators()
    r = gen.generate("a person walks forward", seconds=1.0, seed=3, num_samples=2)
    assert np.array_equal(gen.generate("a person walks forward", seconds=1.0, seed=3, num_samples=2).features,
                          r.features)
    assert np.abs(gen.generate("a person walks forward", seconds=1.0, seed=4, num_samples=2).features
                  - r.features).max() > 1e-3
    assert np.abs(r.features[0] - r.features[1]).max() > 1e-3   # samples of one batch differ


def test_models_without_mask_frames_sample_196_frames_and_crop(generators):
    gen = generators(mask_frames=False)
    short = gen.generate("a person jumps", seconds=2.0, seed=5)
    full = gen.generate("a person jumps", seconds=9.8, seed=5)
    assert short.recipe["sampled_frames"] == full.recipe["sampled_frames"] == 196
    assert full.features.shape[1] == 196 and np.array_equal(short.features, full.features[:, :40])
    masked = generators(mask_frames=True).generate("a person jumps", seconds=2.0, seed=5)
    assert masked.recipe["sampled_frames"] == 40


def test_empty_prompt_is_unconditional(generators):
    gen = generators()
    a = gen.generate("", seconds=1.0, seed=1, guidance=2.5)
    b = gen.generate("   ", seconds=1.0, seed=1, guidance=7.0)
    assert np.array_equal(a.features, b.features) and a.recipe["guidance_used"] == 0.0
    zero_guidance = gen.generate("a person runs", seconds=1.0, seed=1, guidance=0.0)
    assert np.array_equal(zero_guidance.features, a.features)   # uncond + 0 * (cond - uncond)
    assert np.abs(gen.generate("a person runs", seconds=1.0, seed=1).features - a.features).max() > 1e-3


def test_guidance_forced_to_one_without_condition_dropout(generators, caplog):
    gen = generators(cond_mask_prob=0.0)
    with caplog.at_level(logging.WARNING):
        r = gen.generate("a person sits down", seconds=1.0, seed=2, guidance=2.5)
    assert "cond_mask_prob 0" in caplog.text and r.recipe["guidance_used"] == 1.0
    assert np.array_equal(r.features, gen.generate("a person sits down", seconds=1.0, seed=2, guidance=1.0).features)


def test_steps_progress_cancel_and_noise_injection(generators):
    gen = generators(diffusion_steps=50)
    seen = []
    r = gen.generate("a person waves", seconds=1.0, seed=0, steps=5, progress=lambda s, n: seen.append((s, n)))
    assert seen == [(k, 5) for k in range(1, 6)] and r.recipe["steps"] == 5
    recorder = NoiseRecorder(SeededNoise(0))
    recorded = gen.generate("a person waves", seconds=1.0, seed=0, steps=5, noise=recorder)
    assert np.array_equal(recorded.features, r.features) and len(recorder.draws) == 6
    replay = gen.generate("a person waves", seconds=1.0, seed=123, steps=5, noise=RecordedNoise(recorder.draws))
    assert np.array_equal(replay.features, r.features)
    with pytest.raises(Cancelled):
        gen.generate("a person waves", seconds=1.0, seed=0, steps=5, progress=lambda s, n: seen.append((s, n)),
                     cancel=lambda: len(seen) >= 7)
    assert len(seen) == 7  # stopped between steps 2 and 3
    ddim = gen.generate("a person waves", seconds=1.0, seed=0, steps=5, sampler="ddim")
    assert ddim.recipe["sampler"] == "ddim" and np.isfinite(ddim.features).all()


def test_model_folder_statistics_are_used(tmp_path, tiny_encoders):
    mean, std = np.zeros(263, np.float32), np.full(263, 2.0, np.float32)
    default = P.MotionGenerator.load(write_tiny_model_dir(tmp_path / "a"), "cpu", tiny_encoders["clip"])
    custom = P.MotionGenerator.load(write_tiny_model_dir(tmp_path / "b", mean_std=(mean, std)), "cpu",
                                    tiny_encoders["clip"])
    a = default.generate("a person kicks", seconds=1.0, seed=9).features
    b = custom.generate("a person kicks", seconds=1.0, seed=9).features
    hml = MotionNormalizer.from_dir()
    assert np.allclose(b, hml.normalize(a) * 2.0, atol=1e-4)


@pytest.mark.parametrize("kwargs,needle", [
    (dict(seconds=0), "seconds must be in"), (dict(seconds=-1.0), "seconds must be in"),
    (dict(seconds=9.85), "seconds must be in"), (dict(seconds=float("nan")), "finite"),
    (dict(seconds="6"), "finite number"), (dict(seconds=0.01), "shorter than one frame"),
    (dict(guidance=float("nan")), "guidance"), (dict(guidance=-1.0), "guidance"),
    (dict(guidance=float("inf")), "guidance"), (dict(num_samples=0), "num_samples"),
    (dict(num_samples=65), "num_samples"), (dict(seed=-1), "seed"), (dict(seed=1.5), "seed"),
    (dict(steps=1), "steps"), (dict(steps=11), "steps"), (dict(prompt=42), "prompt must be a string"),
])
def test_bad_requests_get_clear_errors(generators, kwargs, needle):
    call = dict(prompt="a person walks", seconds=1.0, seed=0)
    call.update(kwargs)
    with pytest.raises(InputError, match=needle):
        generators().generate(**call)


def test_length_limited_by_the_positional_table(generators):
    gen = generators(pos_embed_max_len=50)
    assert gen.max_frames == 49
    with pytest.raises(InputError, match="at most 49 frames"):
        gen.generate("a person walks", seconds=3.0)


def test_devices_and_the_demo_model(monkeypatch, tmp_path):
    with pytest.raises(DeviceError, match="unknown device"):
        P.resolve_device("tpu")
    assert P.resolve_device("cpu") == torch.device("cpu")
    assert P.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            P.resolve_device("cuda")
    monkeypatch.setattr(P, "DEMO_MODEL_DIR", tmp_path / "demo")
    with pytest.raises(CheckpointError, match="demo model is not installed"):
        P.MotionGenerator.load(None, device="cpu")


@pytest.mark.parametrize("mask_frames", [True, False])
def test_edit_keeps_known_entries_exactly(generators, mask_frames):
    gen = generators(mask_frames=mask_frames)
    base = gen.generate("a person walks", seconds=2.0, seed=1, num_samples=2)
    known = gen.normalizer.normalize(base.features).astype(np.float32)
    mask = inbetween_mask([40, 32], 40) | upper_body_mask(40, 2)
    r = gen.edit(known, mask, "a person jumps", seed=2, lengths=[40, 32])
    assert r.features.shape == (2, 40, 263) and r.lengths.tolist() == [40, 32]
    assert np.array_equal(r.features[mask], gen.normalizer.denormalize(known)[mask].astype(np.float32))
    assert np.abs(r.features[~mask] - base.features[~mask]).max() > 1e-3
    assert r.recipe["sampled_frames"] == (40 if mask_frames else 196)
    unconditional = gen.edit(known, mask, "", seed=2)
    assert unconditional.recipe["guidance_used"] == 0.0


def test_edit_rejects_bad_windows(generators):
    gen = generators()
    known = np.zeros((1, 10, 263), np.float32)
    mask = np.zeros((1, 10, 263), bool)
    with pytest.raises(InputError, match="shape"):
        gen.edit(known[0], mask[0])
    with pytest.raises(InputError, match="bool array"):
        gen.edit(known, mask.astype(np.float32))
    with pytest.raises(InputError, match="lengths"):
        gen.edit(known, mask, lengths=[11])
    bad = known.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        gen.edit(bad, ~mask)


def test_unseen_verbs_are_read_as_the_caption_word_wordnet_relates_them_to(tmp_path, tiny_encoders):
    import json

    from backend.mdm.text_tokens import CAPTION_VOCABULARY
    folder = tmp_path / "m"
    write_tiny_model_dir(folder, arch="trans_dec", text_encoder="minilm_tokens")
    plain = P.MotionGenerator.load(folder, "cpu", tiny_encoders["minilm_tokens"])
    (folder / CAPTION_VOCABULARY).write_text(json.dumps({
        "text_encoder_type": "minilm_tokens", "token_ids": plain.text_encoder.tokens.ids("a person walks forward"),
        "words": ["a", "forward", "person", "walks"]}))
    gen = P.MotionGenerator.load(folder, "cpu", tiny_encoders["minilm_tokens"])
    r = gen.generate("a person strolls forward", seconds=1.0, seed=2, num_samples=2, steps=3)
    assert (r.recipe["prompt"], r.recipe["reworded"], r.recipe["unseen_words"]) == \
        ("a person strolls forward", {"strolls": "walks"}, [])
    # the network read exactly the reworded prompt
    walks = gen.generate("a person walks forward", seconds=1.0, seed=2, num_samples=2, steps=3)
    np.testing.assert_array_equal(r.features, walks.features)
    assert "reworded" not in walks.recipe
    # editing rewords the same way; a model without the file (official checkpoints) never does
    known = gen.normalizer.normalize(walks.features)
    edited = gen.edit(known, inbetween_mask([20, 20], 20), "a person strolls forward", seed=1, steps=3)
    assert edited.recipe["reworded"] == {"strolls": "walks"}
    np.testing.assert_array_equal(edited.features, gen.edit(known, inbetween_mask([20, 20], 20),
                                                            "a person walks forward", seed=1, steps=3).features)
    assert "reworded" not in plain.generate("a person strolls forward", seconds=0.5, steps=2).recipe
    gen.reword_unseen_words = False                                  # hidden only (bench/demo_model.py --no-rewording)
    only_hidden = gen.generate("a person strolls forward", seconds=0.5, steps=2).recipe
    assert "reworded" not in only_hidden and only_hidden["unseen_words"] == ["strolls"]


def test_words_the_model_never_saw_are_hidden_from_attention(tmp_path, tiny_encoders):
    import json

    from backend.mdm.text_tokens import CAPTION_VOCABULARY
    folder = tmp_path / "m"
    write_tiny_model_dir(folder, arch="trans_dec", text_encoder="minilm_tokens")
    plain = P.MotionGenerator.load(folder, "cpu", tiny_encoders["minilm_tokens"])
    tokens = plain.text_encoder.tokens
    trained = tokens.ids("a person walks forward")
    (folder / CAPTION_VOCABULARY).write_text(json.dumps({"text_encoder_type": "minilm_tokens", "token_ids": trained}))
    gen = P.MotionGenerator.load(folder, "cpu", tiny_encoders["minilm_tokens"])
    seen = []
    denoise = gen.model.denoise

    def spy(x, t, text, text_pad, *rest):
        seen.append(None if text_pad is None else text_pad.clone())
        return denoise(x, t, text, text_pad, *rest)
    gen.model.denoise = spy
    prompt = "a person pirouettes forward"   # WordNet relates no trained word to it
    ids = tokens.ids(prompt)
    unseen = [i for i, token_id in enumerate(ids) if token_id not in trained]
    assert unseen                                                   # the tiny tokenizer has no "pirouettes"
    r = gen.generate(prompt, seconds=1.0, seed=2, num_samples=2, steps=3)
    assert r.recipe["unseen_words"] == ["pirouettes"]
    pad = seen[0][:2]                                                # the conditional rows of the batch
    assert pad.shape == (2, 1 + len(ids)) and (pad.nonzero()[:, 1].unique() == torch.tensor(unseen) + 1).all()
    assert not pad[:, 0].any()                                      # the sentence row stays
    # what changed is the condition only: a plain model with those rows masked by hand gives the same motion
    hand = plain.text_encoder.encode(prompt)[0]
    masked = torch.zeros(1, hand.shape[1], dtype=torch.bool)
    masked[0, torch.tensor(unseen) + 1] = True
    plain.text_encoder.encode = lambda p: (hand, masked)
    same = plain.generate(prompt, seconds=1.0, seed=2, num_samples=2, steps=3)
    np.testing.assert_array_equal(same.features, r.features)
    del plain.text_encoder.encode
    assert not np.array_equal(plain.generate(prompt, seconds=1.0, seed=2, num_samples=2, steps=3).features, r.features)
    # punctuation the captions never had is hidden as well, but only words are named
    assert tokens.ids(".")[1] not in trained
    assert gen.generate(prompt + ".", seconds=0.5, steps=2).recipe["unseen_words"] == ["pirouettes"]
    # a prompt of trained words only: untouched, and the recipe says nothing was hidden
    known = gen.generate("a person walks forward", seconds=1.0, seed=2, steps=3)
    assert known.recipe["unseen_words"] == [] and "unseen_words" not in plain.generate("a", seconds=0.5).recipe
    np.testing.assert_array_equal(known.features,
                                  plain.generate("a person walks forward", seconds=1.0, seed=2, steps=3).features)
