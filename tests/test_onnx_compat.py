"""Every golden config of ../shared/mdm_compat through its exported denoiser on ONNX Runtime: the
official forward / CFG outputs, the recorded sampling and in-between editing runs, and fresh 50-step
samples and edits against torch (the same seeded noise)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.mdm.checkpoint import load_model
from backend.mdm.denoiser import GuidedDenoiser
from backend.mdm.diffusion import build_schedule
from backend.mdm.sampler import RecordedNoise, SeededNoise, inbetween_mask, sample_loop, to_model_layout
from backend.mdm.text_tokens import POOLED
from backend.onnx_runtime.export import export_denoiser
from backend.onnx_runtime.generator import OnnxGuidedDenoiser, open_session
from backend.onnx_runtime.manifest import GraphSpec

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CONFIGS = ("trans_enc_clip", "trans_dec_clip", "trans_dec_bert", "gru_clip")
TOL_CALL, TOL_SAMPLE = 1e-5, 1e-4


@pytest.fixture(scope="module")
def exported(shared, tmp_path_factory):
    """config name -> (torch MDM, ONNX Runtime session of its exported denoiser, graph input names)."""
    root, cache = tmp_path_factory.mktemp("compat_onnx"), {}

    def get(name):
        if name not in cache:
            model = load_model(shared / "mdm_compat" / "configs" / name).model
            entry = export_denoiser(model, root / f"{name}.onnx")
            spec = GraphSpec(entry["file"], entry["inputs"], entry["outputs"])
            cache[name] = (model, open_session(root, spec, ["CPUExecutionProvider"]), spec.input_names)
        return cache[name]
    return get


def _text(data, kind, batch):
    text = data[f"{kind}_text_embed"].astype(np.float32).transpose(1, 0, 2)           # [B, L, D]
    pad = data[f"{kind}_text_mask"] if f"{kind}_text_mask" in data.files else None
    return text, (None if pad is None else np.broadcast_to(pad, (batch, pad.shape[-1])).copy())


def _frame_pad(mask):
    pad = ~mask.reshape(mask.shape[0], mask.shape[-1])
    return pad if pad.any() else None


def _pair(model, session, names, text, pad, frame_pad, **kwargs):
    """The torch and the ONNX guided denoiser for the same condition."""
    ref = GuidedDenoiser(model, torch.from_numpy(text), None if pad is None else torch.from_numpy(pad),
                         frame_pad=None if frame_pad is None else torch.from_numpy(frame_pad), **kwargs)
    return ref, OnnxGuidedDenoiser(session, names, model.args.arch, text, pad, frame_pad=frame_pad, **kwargs)


@pytest.mark.parametrize("name", CONFIGS)
def test_golden_forward_and_cfg_outputs(exported, shared, name):
    model, session, names = exported(name)
    inputs, ref = np.load(shared / "mdm_compat/forward_inputs.npz"), np.load(shared / f"mdm_compat/forward_{name}.npz")
    x = inputs["x_t"].astype(np.float32)
    text, pad = _text(inputs, model.args.text_encoder_type, x.shape[0])
    runs = {"out_cond": dict(scale=1.0), "out_uncond": dict(conditional=False),
            "out_cfg": dict(scale=float(ref["cfg_scale"]))}
    for key, kwargs in runs.items():
        ours = OnnxGuidedDenoiser(session, names, model.args.arch, text, pad, frame_pad=_frame_pad(inputs["mask"]),
                                  **kwargs)
        assert np.abs(ours(x, ref["timesteps"]) - ref[key]).max() <= TOL_CALL, key


@pytest.mark.parametrize("name", CONFIGS)
def test_denoiser_matches_torch_at_several_batch_and_frame_sizes(exported, name):
    model, session, names = exported(name)
    a, rng = model.args, np.random.default_rng(3)
    for batch, frames in [(1, 5), (2, 24), (4, 61), (7, min(a.max_frames, 196))]:   # traced at (3, 23)
        tokens = 1 if POOLED[a.text_encoder_type] else 11
        feed = {"x": rng.standard_normal((batch, frames, 263), dtype=np.float32),
                "timesteps": rng.integers(0, a.diffusion_steps, batch).astype(np.int64),
                "text": rng.standard_normal((batch, tokens, a.clip_dim), dtype=np.float32),
                "drop_text": rng.random(batch) < 0.5,
                "text_pad": np.arange(tokens)[None, :] >= rng.integers(min(2, tokens), tokens + 1, (batch, 1)),
                "frame_pad": np.arange(frames)[None, :] >= rng.integers(1, frames + 1, (batch, 1))}
        t = {k: torch.from_numpy(v) for k, v in feed.items()}
        with torch.no_grad():
            expected = model.denoise(t["x"], t["timesteps"], t["text"], t["text_pad"] if "text_pad" in names else None,
                                     t["drop_text"], t["frame_pad"] if "frame_pad" in names else None).numpy()
        assert np.abs(session.run(None, {n: feed[n] for n in names})[0] - expected).max() <= TOL_CALL, (batch, frames)


@pytest.mark.parametrize("kind", ["sample_ddpm", "edit_inbetween"])
def test_golden_sampling_and_editing_runs_replay(exported, shared, kind):
    for path in sorted((shared / "mdm_compat").glob(f"{kind}_*.npz")):
        name = path.stem[len(kind) + 1:]
        model, session, names = exported(name)
        data, a = np.load(path), model.args
        shape = tuple(int(s) for s in data["shape"])
        schedule = build_schedule(a.noise_schedule, a.diffusion_steps, len(data["timesteps"]), a.sigma_small)
        text, pad = _text(data, a.text_encoder_type, shape[0])
        ours = OnnxGuidedDenoiser(session, names, a.arch, text, pad, float(data["scale"]),
                                  frame_pad=_frame_pad(data["mask"]))
        edit = kind == "edit_inbetween"
        known = dict(known=data["inpainted_motion"], known_mask=data["inpainting_mask"]) if edit else {}
        out = sample_loop(ours, shape, schedule, RecordedNoise(data["noise"]), **known)
        assert np.abs(out - data["final_sample"]).max() <= TOL_SAMPLE, path.name


@pytest.mark.parametrize("name", CONFIGS)
def test_fresh_50_step_sample_and_edit_match_torch(exported, shared, name):
    model, session, names = exported(name)
    a = model.args
    data = np.load(shared / "mdm_compat/sample_ddpm_trans_enc_clip.npz")   # cached text embeddings, B = 2
    text, pad = _text(data, a.text_encoder_type, 2)
    schedule = build_schedule(a.noise_schedule, max(a.diffusion_steps, 50), 50, a.sigma_small)  # 50 steps
    n_frames = 60  # (the pipeline would sample 196 frames for models without mask_frames; parity is the point)
    lengths = np.array([n_frames, n_frames - 9])
    frame_pad = (np.arange(n_frames)[None, :] >= lengths[:, None]) if a.mask_frames else None
    ref, ours = _pair(model, session, names, text, pad, frame_pad, scale=2.5)
    shape = (2, 263, 1, n_frames)
    with torch.inference_mode():
        expected = sample_loop(ref, shape, schedule, SeededNoise(7), torch.from_numpy).numpy()
    got = sample_loop(ours, shape, schedule, SeededNoise(7))
    assert schedule.num_steps == 50 and np.abs(got - expected).max() <= TOL_SAMPLE
    # in-between edit of that motion with another seed
    mask = to_model_layout(inbetween_mask(lengths, n_frames))
    with torch.inference_mode():
        expected_edit = sample_loop(ref, shape, schedule, SeededNoise(8), torch.from_numpy, expected, mask).numpy()
    got_edit = sample_loop(ours, shape, schedule, SeededNoise(8), known=expected, known_mask=mask)
    assert np.abs(got_edit - expected_edit).max() <= TOL_SAMPLE
    assert np.array_equal(got_edit[mask], expected[mask])
