"""Noise schedules: closed forms, respacing, and the official golden arrays."""
import math

import numpy as np
import pytest

from backend.mdm.diffusion import build_schedule, raw_betas, space_timesteps


def alpha_bar(s):
    return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2


@pytest.mark.parametrize("n", [10, 50, 1000])
def test_cosine_schedule_closed_form(n):
    s = build_schedule("cosine", n)
    # cumulative alphas follow alpha_bar(t/n)/alpha_bar(0) except where beta was clipped to 0.999 (the last step)
    expected = np.array([alpha_bar((i + 1) / n) / alpha_bar(0) for i in range(n)])
    assert np.allclose(s.alphas_cumprod[:-1], expected[:-1], rtol=1e-12, atol=0)
    assert raw_betas("cosine", n)[-1] == 0.999
    assert s.posterior_mean_coef1[0] == 1.0 and s.posterior_mean_coef2[0] == 0.0
    # the posterior mean of x0 = x_t = 1 is the mean of q(x_{t-1}) composed with q(x_t | x_{t-1}) at the identity
    ac, prev = s.alphas_cumprod, s.alphas_cumprod_prev
    assert np.allclose(s.posterior_variance, s.betas * (1 - prev) / (1 - ac), rtol=1e-14)
    assert np.allclose(s.sqrt_recip_alphas_cumprod * s.sqrt_alphas_cumprod, 1.0, rtol=1e-14)
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    assert np.array_equal(s.timestep_map, np.arange(n))


def test_linear_schedule_and_fixed_large_variance():
    s = build_schedule("linear", 1000, sigma_small=False)
    assert math.isclose(s.betas[0], 1e-4, rel_tol=1e-9) and math.isclose(s.betas[-1], 0.02, rel_tol=1e-9)
    assert np.allclose(s.sampling_log_variance[1:], np.log(s.betas[1:]), rtol=1e-12)


def test_respacing_keeps_cumulative_alphas_and_maps_timesteps():
    full = build_schedule("cosine", 1000)
    kept = space_timesteps(1000, 50)
    assert len(kept) == 50 and kept[0] == 0 and kept[-1] == 999 and kept[:3] == [0, 20, 41]
    s = build_schedule("cosine", 1000, 50)
    assert np.array_equal(s.timestep_map, kept)
    assert np.allclose(s.alphas_cumprod, full.alphas_cumprod[kept], rtol=1e-12)
    assert s.num_steps == 50 and s.posterior_mean_coef1[0] == 1.0
    assert space_timesteps(1000, "ddim50") == list(range(0, 1000, 20))
    # two sections of 50 steps: strides 49/9 and 49/4 (Python's round: 24.5 -> 24, 36.75 -> 37)
    assert space_timesteps(100, [10, 5]) == [0, 5, 11, 16, 22, 27, 33, 38, 44, 49, 50, 62, 74, 87, 99]
    assert space_timesteps(100, "10,5") == space_timesteps(100, [10, 5])
    with pytest.raises(ValueError):
        space_timesteps(10, 11)


def test_matches_official_golden_schedules(shared):
    golden = np.load(shared / "mdm_compat/diffusion_schedules.npz")
    for n in (10, 50, 1000):
        s = build_schedule("cosine", n)
        for key in golden.files:
            if key.startswith(f"cosine{n}_"):
                name = key[len(f"cosine{n}_"):]
                ours = raw_betas("cosine", n) if name == "raw_betas" else getattr(s, name)
                assert np.allclose(ours, golden[key], rtol=1e-12, atol=0), key
