"""ONNX export + the ONNX Runtime backend on tiny models of every architecture (built by the tests):
one denoiser call, whole 50-step samples and in-between edits match torch; progress, cancel and
noise replay behave the same; the folder describes itself; the backend runs with torch blocked."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend.errors import Cancelled
from backend.mdm.checkpoint import file_sha256, find_checkpoint
from backend.mdm.denoiser import GuidedDenoiser
from backend.mdm.pipeline import MotionGenerator
from backend.mdm.sampler import NoiseRecorder, RecordedNoise, SeededNoise, inbetween_mask
from backend.mdm.text_tokens import POOLED
from backend.onnx_runtime.generator import OnnxGuidedDenoiser, OnnxMotionGenerator
from backend.onnx_runtime.manifest import read_manifest
from tests.conftest import REPO
from tests.helpers.onnx_fixtures import TINY_ONNX_MODELS, onnx_exports, tiny_encoders  # noqa: F401

pytestmark = pytest.mark.slow  # each tiny export takes a few seconds (torch.export)

NAMES = list(TINY_ONNX_MODELS)
TOL_CALL, TOL_SAMPLE = 1e-5, 1e-4


@pytest.fixture(scope="module")
def pair(onnx_exports, tiny_encoders):  # noqa: F811
    """name -> (torch MotionGenerator, OnnxMotionGenerator) of the same tiny model."""
    cache = {}

    def get(name):
        if name not in cache:
            model_dir, export_dir = onnx_exports(name)
            encoder = tiny_encoders[TINY_ONNX_MODELS[name]["text_encoder"]]
            cache[name] = (MotionGenerator.load(model_dir, "cpu", encoder), OnnxMotionGenerator.load(export_dir, "cpu"))
        return cache[name]
    return get


def _random_inputs(args, batch, frames, rng):
    tokens = 1 if POOLED[args.text_encoder_type] else 6
    lengths = rng.integers(1, frames + 1, batch)
    return {"x": rng.standard_normal((batch, frames, 263), dtype=np.float32),
            "timesteps": rng.integers(0, args.diffusion_steps, batch).astype(np.int64),
            "text": rng.standard_normal((batch, tokens, args.clip_dim), dtype=np.float32),
            "drop_text": rng.random(batch) < 0.5,
            "text_pad": np.arange(tokens)[None, :] >= rng.integers(min(2, tokens), tokens + 1, (batch, 1)),
            "frame_pad": np.arange(frames)[None, :] >= lengths[:, None]}


@pytest.mark.parametrize("name", NAMES)
def test_one_denoiser_call_matches_torch_at_unseen_batch_and_frame_sizes(pair, name):
    torch_gen, onnx_gen = pair(name)
    names = onnx_gen.manifest.denoiser.input_names
    rng = np.random.default_rng(1)
    for batch, frames in [(1, 1), (2, 17), (5, 40), (3, torch_gen.max_frames)]:  # export traced (3, 23)
        feed = _random_inputs(torch_gen.args, batch, frames, rng)
        t = {k: torch.from_numpy(v) for k, v in feed.items()}
        with torch.no_grad():
            ref = torch_gen.model.denoise(t["x"], t["timesteps"], t["text"],
                                          t["text_pad"] if "text_pad" in names else None, t["drop_text"],
                                          t["frame_pad"] if "frame_pad" in names else None).numpy()
        out = onnx_gen.session.run(None, {n: feed[n] for n in names})[0]
        assert out.shape == (batch, frames, 263)
        assert np.abs(out - ref).max() <= TOL_CALL, (batch, frames)


@pytest.mark.parametrize("name", NAMES)
def test_guided_denoiser_matches_torch_for_every_guidance_plan(pair, name):
    torch_gen, onnx_gen = pair(name)
    a, rng = torch_gen.args, np.random.default_rng(2)
    feed = _random_inputs(a, 3, 20, rng)
    x_t = np.ascontiguousarray(feed["x"].transpose(0, 2, 1)[:, :, None, :])
    text_pad = None if POOLED[a.text_encoder_type] else feed["text_pad"]
    frame_pad = feed["frame_pad"] if a.mask_frames else None
    for kwargs in (dict(scale=2.5), dict(scale=1.0), dict(scale=0.0), dict(conditional=False)):
        for t in (7, feed["timesteps"]):          # one step for all, or per-sample steps
            ref = GuidedDenoiser(torch_gen.model, torch.from_numpy(feed["text"]),
                                 None if text_pad is None else torch.from_numpy(text_pad),
                                 frame_pad=None if frame_pad is None else torch.from_numpy(frame_pad), **kwargs)
            ours = OnnxGuidedDenoiser(onnx_gen.session, onnx_gen.manifest.denoiser.input_names, a.arch, feed["text"],
                                      text_pad, frame_pad=frame_pad, **kwargs)
            assert ours.plan == ref.plan
            with torch.no_grad():
                expected = ref(torch.from_numpy(x_t), t if np.ndim(t) == 0 else torch.from_numpy(t)).numpy()
            assert np.abs(ours(x_t, t) - expected).max() <= TOL_CALL, (kwargs, t)


def _normalized(gen, result):
    return gen.normalizer.normalize(result.features)


@pytest.mark.parametrize("name", NAMES)
def test_full_50_step_sample_matches_torch(pair, name):
    torch_gen, onnx_gen = pair(name)
    a = torch_gen.generate("a person walks forward and then turns left", seconds=1.6, seed=5, num_samples=2)
    b = onnx_gen.generate("a person walks forward and then turns left", seconds=1.6, seed=5, num_samples=2)
    assert a.recipe["steps"] == b.recipe["steps"] == 50 and b.recipe["runtime"] == "onnx"
    assert a.recipe["model_id"] == b.recipe["model_id"]
    assert b.features.shape == a.features.shape == (2, 32, 263)
    assert np.abs(_normalized(onnx_gen, b) - _normalized(torch_gen, a)).max() <= TOL_SAMPLE
    assert np.abs(b.joints - a.joints).max() <= 1e-3
    # unconditional, respaced DDIM: the same too
    a = torch_gen.generate("", seconds=1.0, seed=6, steps=10, sampler="ddim")
    b = onnx_gen.generate("", seconds=1.0, seed=6, steps=10, sampler="ddim")
    assert np.abs(_normalized(onnx_gen, b) - _normalized(torch_gen, a)).max() <= TOL_SAMPLE


@pytest.mark.parametrize("name", NAMES)
def test_inbetween_edit_matches_torch_and_keeps_known_frames(pair, name):
    torch_gen, onnx_gen = pair(name)
    source = torch_gen.generate("a person jumps", seconds=1.5, seed=1, num_samples=2, steps=10)  # any known motion
    known = torch_gen.normalizer.normalize(source.features).astype(np.float32)
    lengths = np.array([30, 24])
    mask = inbetween_mask(lengths, 30)
    a = torch_gen.edit(known, mask, "a person sits down", seed=3, lengths=lengths)
    b = onnx_gen.edit(known, mask, "a person sits down", seed=3, lengths=lengths)
    assert b.recipe["steps"] == 50
    assert np.abs(_normalized(onnx_gen, b) - _normalized(torch_gen, a)).max() <= TOL_SAMPLE
    np.testing.assert_allclose(_normalized(onnx_gen, b)[mask], known[mask], atol=1e-5)


def test_progress_cancel_and_noise_replay_behave_like_torch(pair):
    torch_gen, onnx_gen = pair("enc_clip")
    seen = []
    r = onnx_gen.generate("a person waves", seconds=1.0, seed=0, steps=5, progress=lambda s, n: seen.append((s, n)))
    assert seen == [(k, 5) for k in range(1, 6)]
    recorder = NoiseRecorder(SeededNoise(0))
    torch_run = torch_gen.generate("a person waves", seconds=1.0, seed=0, steps=5, noise=recorder)
    replay = onnx_gen.generate("a person waves", seconds=1.0, seed=99, steps=5, noise=RecordedNoise(recorder.draws))
    assert np.array_equal(replay.features, r.features)           # recorded draws = the seeded ones
    assert np.abs(replay.features - torch_run.features).max() <= 1e-4
    with pytest.raises(Cancelled):
        onnx_gen.generate("a person waves", seconds=1.0, seed=0, steps=5, progress=lambda s, n: seen.append((s, n)),
                          cancel=lambda: len(seen) >= 7)
    assert len(seen) == 7


@pytest.mark.parametrize("name", NAMES)
def test_the_folder_describes_itself(onnx_exports, pair, name):
    model_dir, export_dir = onnx_exports(name)
    torch_gen, onnx_gen = pair(name)
    m = read_manifest(export_dir)
    spec = TINY_ONNX_MODELS[name]
    assert m.source["sha256"] == file_sha256(find_checkpoint(model_dir)[1]) and m.model_id == torch_gen.model_id
    assert (m.args.arch, m.args.text_encoder_type, m.args.mask_frames) == (spec["arch"], spec["text_encoder"],
                                                                           spec["mask_frames"])
    assert m.args.diffusion_steps == 50 and m.raw["schedule"]["noise_schedule"] == "cosine" and m.opset >= 18
    expected = ["x", "timesteps", "text", "drop_text"] + ([] if POOLED[spec["text_encoder"]] else ["text_pad"]) + \
        (["frame_pad"] if spec["mask_frames"] else [])
    assert m.denoiser.input_names == expected
    assert m.denoiser.inputs[0]["shape"] == ["batch", "frames", 263] and m.denoiser.outputs[0]["name"] == "x0"
    text_inputs = ["input_ids"] if spec["text_encoder"] == "clip" else ["input_ids", "attention_mask"]
    assert m.text_encoder.input_names == text_inputs
    np.testing.assert_array_equal(np.load(export_dir / "Mean.npy"), torch_gen.normalizer.mean)
    np.testing.assert_array_equal(np.load(export_dir / "Std.npy"), torch_gen.normalizer.std)
    assert onnx_gen.text_encoder.tokens.settings() == torch_gen.text_encoder.tokens.settings()


def test_the_caption_vocabulary_travels_with_the_export_and_hides_the_same_rows(onnx_exports, tiny_encoders,  # noqa: F811
                                                                                   tmp_path):
    import json
    import shutil

    from backend.mdm.text_tokens import CAPTION_VOCABULARY
    from backend.onnx_runtime.export import export_model
    source, _ = onnx_exports("dec_minilm_tokens")
    model_dir = tmp_path / "model"
    shutil.copytree(source, model_dir)
    encoder_dir = tiny_encoders["minilm_tokens"]
    trained = MotionGenerator.load(model_dir, "cpu", encoder_dir).text_encoder.tokens.ids("a person walks forward")
    (model_dir / CAPTION_VOCABULARY).write_text(json.dumps({"text_encoder_type": "minilm_tokens", "token_ids": trained}))
    export_dir = export_model(model_dir, tmp_path / "onnx", encoder_dir)
    assert (export_dir / CAPTION_VOCABULARY).read_bytes() == (model_dir / CAPTION_VOCABULARY).read_bytes()
    torch_gen, onnx_gen = MotionGenerator.load(model_dir, "cpu", encoder_dir), OnnxMotionGenerator.load(export_dir, "cpu")
    a = torch_gen.generate("a person pirouettes forward", seconds=1.2, seed=4, num_samples=2)
    b = onnx_gen.generate("a person pirouettes forward", seconds=1.2, seed=4, num_samples=2)
    assert a.recipe["unseen_words"] == b.recipe["unseen_words"] != []
    # both runtimes reword alike ("strolls" is a way to "walk", a word of the captions)
    assert torch_gen.generate("a person strolls", seconds=0.5).recipe["reworded"] == \
        onnx_gen.generate("a person strolls", seconds=0.5).recipe["reworded"] == {"strolls": "walks"}
    assert np.abs(_normalized(onnx_gen, b) - _normalized(torch_gen, a)).max() <= TOL_SAMPLE
    # a model folder without the file exports without it (an earlier export's copy does not linger)
    (model_dir / CAPTION_VOCABULARY).unlink()
    export_model(model_dir, export_dir, encoder_dir)
    assert not (export_dir / CAPTION_VOCABULARY).exists()
    assert "unseen_words" not in OnnxMotionGenerator.load(export_dir, "cpu").generate("a person strolls", seconds=0.5).recipe


BLOCK_TORCH = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers', 'safetensors'):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
sys.meta_path.insert(0, Blocker())
sys.path.insert(0, sys.argv[1])
"""


def test_generate_runs_with_torch_blocked_and_the_service_picks_onnx(onnx_exports, pair, tmp_path):
    _, export_dir = onnx_exports("dec_bert")
    out = tmp_path / "motion.npz"
    script = BLOCK_TORCH + f"""
from backend.__main__ import main
code = main(["generate", "--model-dir", {str(export_dir)!r}, "--prompt", "a person runs", "--seconds", "1.2",
             "--seed", "4", "--num-samples", "2", "--quiet", "--out", {str(out)!r}])
from backend.service import handlers
from backend.service.server import ModelCache
class Job:
    cache = ModelCache(handlers.load_generator)
    def progress(self, *a): pass
    def cancelled(self): return False
    def check_cancel(self): pass
from backend.service.protocol import validate_params
params = validate_params("generate", dict(model_dir={str(export_dir)!r}, prompt="a person runs", seconds=1.2, seed=4,
                                          num_samples=2, fit=True, foot_lock=True))
arrays, info = handlers.generate(params, Job())
both, _ = handlers.generate(dict(params, upper_prompt="a person waves"), Job())   # the edit pass on ORT too
assert both["features"].shape == arrays["features"].shape
import numpy as np
np.save({str(tmp_path / "service.npy")!r}, arrays["features"])
assert "poses" in arrays and info["device"] == "cpu", info
assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]
sys.exit(code)
"""
    done = subprocess.run([sys.executable, "-c", script, str(REPO)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    torch_gen, _ = pair("dec_bert")
    expected = torch_gen.generate("a person runs", seconds=1.2, seed=4, num_samples=2)
    with np.load(out) as data:
        assert json.loads(str(data["recipe"]))["runtime"] == "onnx"
        assert np.abs(data["features"] - expected.features).max() <= 1e-4 * float(torch_gen.normalizer.std.max())
    np.testing.assert_allclose(np.load(tmp_path / "service.npy"), np.load(out)["features"], atol=1e-6)


def test_runtime_onnx_exports_a_checkpoint_once_into_the_cache(onnx_exports, pair, tiny_encoders,  # noqa: F811
                                                                tmp_path, monkeypatch):
    from backend.__main__ import main
    from backend.onnx_runtime import MANIFEST_NAME, is_onnx_export
    model_dir, _ = onnx_exports("gru_clip")
    monkeypatch.setenv("BLENDER_MDM_ONNX_CACHE", str(tmp_path / "cache"))
    argv = ["generate", "--model-dir", str(model_dir), "--runtime", "onnx", "--text-encoder-dir",
            str(tiny_encoders["clip"]), "--prompt", "a person kicks", "--seconds", "1", "--steps", "8", "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "a.npz")]) == 0
    (cached,) = list((tmp_path / "cache").iterdir())
    assert is_onnx_export(cached) and cached.name.startswith("gru_clip-")
    stamp = (cached / MANIFEST_NAME).stat().st_mtime_ns
    assert main(argv + ["--out", str(tmp_path / "b.npz")]) == 0        # reused, not exported again
    assert (cached / MANIFEST_NAME).stat().st_mtime_ns == stamp
    torch_gen, _ = pair("gru_clip")
    expected = torch_gen.generate("a person kicks", seconds=1.0, steps=8)
    for name in ("a.npz", "b.npz"):
        with np.load(tmp_path / name) as data:
            assert json.loads(str(data["recipe"]))["runtime"] == "onnx"
            ours = torch_gen.normalizer.normalize(data["features"])
            assert np.abs(ours - _normalized(torch_gen, expected)).max() <= 1e-4
