"""The conformance runner: the official golden vectors (../shared) and synthetic folders of the same layout."""
import math
import shutil

import numpy as np
import pytest
import torch

from backend import conformance
from backend.mdm.checkpoint import load_model
from backend.motion.hml_codec import extract_features_from_joints, recover_joints_from_features
from tests.helpers.official_style import OfficialStyleMDM, official_cfg
from tests.helpers.tiny_models import write_tiny_model_dir
from tests.test_hml_codec import synthetic_walk


def test_official_golden_vectors_all_pass(shared, capsys):
    assert conformance.main([str(shared / "mdm_compat")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].endswith(" passed, 0 failed") and int(lines[-1].split()[0]) >= 28
    for expected in ("forward_gru_clip:out_cfg", "forward_trans_dec_bert:out_uncond", "sample_ddpm_trans_enc_clip",
                     "edit_inbetween_trans_enc_clip", "diffusion_schedules:cosine1000",
                     "hml_features_pre2025:features", "hml_features:recovered_joints"):
        assert any(line.startswith("PASS") and f" {expected} " in line for line in lines), expected


def reference_schedule_coefs(n):
    """README section 5 written out independently (float64)."""
    abar = lambda s: math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = np.array([min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)])
    ac = np.cumprod(1 - betas)
    betas = 1 - ac / np.append(1.0, ac[:-1])
    ac = np.cumprod(1 - betas)
    prev = np.append(1.0, ac[:-1])
    var = betas * (1 - prev) / (1 - ac)
    return dict(betas=betas, alphas_cumprod=ac, posterior_variance=var,
                posterior_log_variance_clipped=np.log(np.append(var[1], var[1:])),
                posterior_mean_coef1=betas * np.sqrt(prev) / (1 - ac),
                posterior_mean_coef2=(1 - prev) * np.sqrt(1 - betas) / (1 - ac))


def reference_sample(denoise, noise, coefs, known=None, mask=None):
    c1, c2 = (torch.from_numpy(coefs[k].astype(np.float32)) for k in ("posterior_mean_coef1", "posterior_mean_coef2"))
    lv = torch.from_numpy(coefs["posterior_log_variance_clipped"].astype(np.float32))
    x = torch.from_numpy(noise[0])
    for k, t in enumerate(range(len(c1) - 1, -1, -1)):
        x0 = denoise(x, torch.full((x.shape[0],), t))
        if mask is not None:
            x0 = x0 * ~mask + known * mask
        x = c1[t] * x0 + c2[t] * x + (float(t != 0) * torch.exp(0.5 * lv[t])) * torch.from_numpy(noise[k + 1])
    return x.numpy()


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory):
    """Golden files made with the stock-torch reference for configs the public set lacks."""
    root = tmp_path_factory.mktemp("compat")
    specs = {"enc_ema_deep": dict(arch="trans_enc", use_ema=True, layers=3, diffusion_steps=8),
             "enc_legacy": dict(arch="trans_enc", legacy_args=True, mask_frames=False, diffusion_steps=8),
             "dec_bert_emb": dict(arch="trans_dec", text_encoder="bert", emb_trans_dec=True, diffusion_steps=8),
             "gru_minilm": dict(arch="gru", text_encoder="minilm", diffusion_steps=8)}
    rng = np.random.default_rng(0)
    b, n = 2, 10
    x_t = rng.standard_normal((b, 263, 1, n)).astype(np.float32)
    mask = (np.arange(n)[None, :] < np.array([10, 7])[:, None])[:, None, None, :]
    embeds = {f"{k}_text_embed": rng.standard_normal((1, b, d)).astype(np.float32)
              for k, d in (("clip", 512), ("minilm", 384))}
    embeds["bert_text_embed"] = rng.standard_normal((4, b, 768)).astype(np.float32)
    embeds["bert_text_mask"] = np.arange(4)[None, :] >= np.array([4, 2])[:, None]
    np.savez(root / "forward_inputs.npz", x_t=x_t, mask=mask, **embeds)
    coefs = reference_schedule_coefs(8)
    np.savez(root / "diffusion_schedules.npz", **{f"cosine8_{k}": v for k, v in coefs.items()})
    for name, spec in specs.items():
        write_tiny_model_dir(root / "configs" / name, seed=len(name), **spec)
        ref = OfficialStyleMDM(load_model(root / "configs" / name).model)
        kind = ref.args.text_encoder_type
        embed = (torch.from_numpy(embeds["bert_text_embed"]), torch.from_numpy(embeds["bert_text_mask"])) \
            if kind == "bert" else torch.from_numpy(embeds[f"{kind}_text_embed"])
        y = {"mask": torch.from_numpy(mask), "text_embed": embed}
        t = torch.tensor([7, 2])
        with torch.inference_mode():
            x = torch.from_numpy(x_t)
            np.savez(root / f"forward_{name}.npz", timesteps=t.numpy(), cfg_scale=np.float32(2.5),
                     out_cond=ref(x, t, y).numpy(), out_uncond=ref(x, t, dict(y, uncond=True)).numpy(),
                     out_cfg=official_cfg(ref, y, 2.5)(x, t).numpy())
            noise = rng.standard_normal((9, b, 263, 1, n)).astype(np.float32)
            files = {k: v for k, v in embeds.items()}
            common = dict(shape=np.array([b, 263, 1, n]), lengths=np.array([10, 7]), mask=mask, scale=np.float32(2.5),
                          noise=noise, timesteps=np.arange(7, -1, -1), **files)
            np.savez(root / f"sample_ddpm_{name}.npz", final_sample=reference_sample(
                official_cfg(ref, y, 2.5), noise, coefs), **common)
            if name == "enc_ema_deep":
                known = rng.standard_normal((b, 263, 1, n)).astype(np.float32)
                keep = np.ones((b, 263, 1, n), bool)
                keep[0, ..., 2:7] = False   # int(0.2 * 10), int(0.7 * 10)
                keep[1, ..., 1:4] = False   # int(0.2 * 7), int(0.7 * 7)
                np.savez(root / f"edit_inbetween_{name}.npz", inpainted_motion=known, inpainting_mask=keep,
                         prefix_end=0.2, suffix_start=0.7, final_sample=reference_sample(
                             official_cfg(ref, y, 2.5), noise, coefs, torch.from_numpy(known), torch.from_numpy(keep)),
                         **common)
    joints = synthetic_walk(n=30).astype(np.float32)
    tgt = joints[0] - joints[0, [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]]
    out = extract_features_from_joints(joints, "current", tgt_offsets=tgt)
    np.savez(root / "hml_features.npz", joints_in=joints, tgt_offsets=tgt, feet_thre=0.002, features=out.features,
             recovered_joints=recover_joints_from_features(out.features.astype(np.float32)))
    return root


def test_synthetic_folder_passes_without_hardcoded_names(synthetic_folder, capsys):
    assert conformance.main([str(synthetic_folder)]) == 0
    out = capsys.readouterr().out
    for name in ("enc_ema_deep", "enc_legacy", "dec_bert_emb", "gru_minilm"):
        assert f"PASS  forward_{name}:out_cfg " in out and f"PASS  sample_ddpm_{name} " in out
    assert "PASS  edit_inbetween_enc_ema_deep:inpainting_mask" in out and "PASS  diffusion_schedules:cosine8" in out
    assert out.strip().splitlines()[-1] == "21 passed, 0 failed"


def test_failures_are_reported_and_set_the_exit_code(synthetic_folder, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(synthetic_folder, broken)
    z = dict(np.load(broken / "forward_gru_minilm.npz"))
    z["out_uncond"] = z["out_uncond"] + 1e-4
    np.savez(broken / "forward_gru_minilm.npz", **z)
    s = dict(np.load(broken / "diffusion_schedules.npz"))
    s["cosine8_betas"] = s["cosine8_betas"] * (1 + 1e-9)
    s["cosine8_mystery"] = s["cosine8_betas"]
    np.savez(broken / "diffusion_schedules.npz", **s)
    shutil.rmtree(broken / "configs" / "enc_legacy")
    (broken / "configs" / "dec_bert_emb" / "model000000000.pt").write_bytes(b"not a checkpoint")
    assert conformance.main([str(broken)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  forward_gru_minilm:out_uncond" in out and "PASS  forward_gru_minilm:out_cond" in out
    assert "FAIL  diffusion_schedules:cosine8" in out and "unknown array 'cosine8_mystery'" in out
    assert "FAIL  sample_ddpm_enc_legacy" in out and "no loadable configs/enc_legacy" in out
    assert "FAIL  load configs/dec_bert_emb" in out and "truncated, corrupted" in out
    assert out.strip().splitlines()[-1].endswith("failed") and " 0 failed" not in out
    assert conformance.main([str(tmp_path / "nowhere")]) == 2
