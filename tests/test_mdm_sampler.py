"""The torch-free sampling loop: official DDPM arithmetic, noise sources, progress/cancel, inpainting."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from backend.errors import Cancelled, InputError
from backend.mdm import sampler as S
from backend.mdm.diffusion import build_schedule

SHAPE = (2, 263, 1, 6)


def toy_denoiser(x, t):
    """A deterministic 'network' that works on numpy arrays and torch tensors alike."""
    return 0.5 * x + 0.01 * t


def test_sampler_module_does_not_import_torch():
    code = "import sys, backend.mdm.sampler; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=S.__file__.rsplit("/backend/", 1)[0]).returncode == 0


def test_ddpm_matches_hand_written_official_recipe():
    schedule = build_schedule("cosine", 10)
    noise = np.random.default_rng(3).standard_normal((11,) + SHAPE).astype(np.float32)
    out = S.sample_loop(toy_denoiser, SHAPE, schedule, S.RecordedNoise(noise))
    # README section 6, literally, in float32
    c1 = schedule.posterior_mean_coef1.astype(np.float32)
    c2 = schedule.posterior_mean_coef2.astype(np.float32)
    lv = schedule.posterior_log_variance_clipped.astype(np.float32)
    x = noise[0]
    for k, t in enumerate(range(9, -1, -1)):
        x0 = toy_denoiser(x, t).astype(np.float32)
        mean = c1[t] * x0 + c2[t] * x
        x = mean + (np.float32(t != 0) * np.exp(np.float32(0.5) * lv[t])) * noise[k + 1]
    assert out.dtype == np.float32 and np.array_equal(out, x)


def test_torch_and_numpy_give_the_same_motion_for_a_seed():
    schedule = build_schedule("cosine", 1000, 20)
    a = S.sample_loop(toy_denoiser, SHAPE, schedule, S.SeededNoise(7))
    b = S.sample_loop(toy_denoiser, SHAPE, schedule, S.SeededNoise(7), torch.from_numpy).numpy()
    c = S.sample_loop(toy_denoiser, SHAPE, schedule, S.SeededNoise(8))
    assert np.abs(a - b).max() < 1e-6 and np.abs(a - c).max() > 1e-2


def test_noise_is_drawn_every_step_and_replays():
    schedule = build_schedule("cosine", 10)
    recorder = S.NoiseRecorder(S.SeededNoise(1))
    first = S.sample_loop(toy_denoiser, SHAPE, schedule, recorder)
    assert len(recorder.draws) == 11 and all(d.shape == SHAPE and d.dtype == np.float32 for d in recorder.draws)
    assert np.array_equal(S.sample_loop(toy_denoiser, SHAPE, schedule, S.RecordedNoise(recorder.draws)), first)
    with pytest.raises(InputError, match="needs more"):
        S.sample_loop(toy_denoiser, SHAPE, schedule, S.RecordedNoise(recorder.draws[:5]))
    with pytest.raises(InputError, match="shape"):
        S.sample_loop(toy_denoiser, (1, 263, 1, 6), schedule, S.RecordedNoise(recorder.draws))


def test_timesteps_given_to_the_network_follow_the_respacing():
    seen = []
    schedule = build_schedule("cosine", 1000, 5)
    S.sample_loop(lambda x, t: seen.append(t) or x, SHAPE, schedule, S.SeededNoise(0))
    assert seen == list(schedule.timestep_map[::-1]) == [999, 749, 500, 250, 0]


def test_progress_and_cancel_between_steps():
    schedule = build_schedule("cosine", 10)
    calls, steps = [], []
    S.sample_loop(toy_denoiser, SHAPE, schedule, S.SeededNoise(0), progress=lambda s, n: steps.append((s, n)))
    assert steps == [(k, 10) for k in range(1, 11)]
    with pytest.raises(Cancelled):
        S.sample_loop(lambda x, t: calls.append(t) or x, SHAPE, schedule, S.SeededNoise(0),
                      cancel=lambda: len(calls) >= 3)
    assert len(calls) == 3


@pytest.mark.parametrize("method", ["ddpm", "ddim"])
def test_inpainting_returns_known_entries_exactly(method):
    schedule = build_schedule("cosine", 50, 10)
    rng = np.random.default_rng(0)
    known = rng.standard_normal((2, 6, 263)).astype(np.float32)
    mask = S.inbetween_mask([6, 4], 6) | S.upper_body_mask(6, 2)
    out = S.sample_loop(toy_denoiser, SHAPE, schedule, S.SeededNoise(2), torch.from_numpy,
                        S.to_model_layout(known), S.to_model_layout(mask), method=method)
    out = S.from_model_layout(out.numpy())
    assert np.array_equal(out[mask], known[mask])
    assert np.abs(out[~mask] - known[~mask]).max() > 0.1


def test_ddim_is_deterministic_after_x_T():
    schedule = build_schedule("cosine", 50)
    draws = S.NoiseRecorder(S.SeededNoise(0))
    a = S.sample_loop(toy_denoiser, SHAPE, schedule, draws, method="ddim")
    other = [draws.draws[0]] + [np.full(SHAPE, 9.0, np.float32)] * 50
    assert np.array_equal(S.sample_loop(toy_denoiser, SHAPE, schedule, S.RecordedNoise(other), method="ddim"), a)
    with pytest.raises(InputError):
        S.sample_loop(toy_denoiser, SHAPE, schedule, S.SeededNoise(0), method="plms")


def test_edit_masks_follow_the_official_rules():
    m = S.inbetween_mask([16, 12], 16, 0.25, 0.75)
    assert m.shape == (2, 16, 263)
    assert [int(f) for f in np.where(~m[0, :, 0])[0]] == list(range(4, 12))
    assert [int(f) for f in np.where(~m[1, :, 0])[0]] == list(range(3, 9))   # int(0.25*12)=3, int(0.75*12)=9
    assert m[1, 12:].all()                                                   # padding after the length is known
    body = S.upper_body_mask(3)
    assert body.shape == (1, 3, 263) and body[0].sum(axis=-1).tolist() == [107, 107, 107]
    ranges = S.frame_ranges_mask(10, [(2, 4), (7, 9)])
    assert np.where(~ranges[0, :, 0])[0].tolist() == [2, 3, 7, 8]
    with pytest.raises(InputError):
        S.frame_ranges_mask(10, [(5, 12)])
    with pytest.raises(InputError):
        S.inbetween_mask([10], 10, 0.8, 0.2)
    a = np.random.default_rng(0).standard_normal((2, 5, 263))
    assert S.to_model_layout(a).shape == (2, 263, 1, 5) and np.array_equal(S.from_model_layout(S.to_model_layout(a)), a)
