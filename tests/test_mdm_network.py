"""The MDM network against an independent stock-torch reference of the official forward pass."""
import pytest
import torch

from backend.mdm.args import ModelArgs
from backend.mdm.denoiser import GuidedDenoiser
from backend.mdm.network import MDM
from backend.mdm.text_tokens import POOLED
from tests.helpers.official_style import OfficialStyleMDM, official_cfg
from tests.helpers.tiny_models import random_mdm

COMBOS = [("trans_enc", "clip", False), ("trans_enc", "minilm", False), ("trans_dec", "clip", False),
          ("trans_dec", "clip", True), ("trans_dec", "bert", True), ("trans_dec", "bert", False),
          ("trans_dec", "minilm", False), ("trans_dec", "minilm_tokens", False), ("gru", "clip", False),
          ("gru", "minilm", False), ("trans_dec", "minilm_tokens", "sentence_token")]


def tiny(arch, encoder, emb_trans_dec=False, mask_frames=True, seed=0):
    """emb_trans_dec: False, True, or "sentence_token" (our extension: a time + sentence token instead)."""
    return random_mdm(ModelArgs(arch=arch, text_encoder_type=encoder, emb_trans_dec=emb_trans_dec is True,
                                sentence_token=emb_trans_dec == "sentence_token", latent_dim=16, layers=2,
                                mask_frames=mask_frames, pos_embed_max_len=64, diffusion_steps=50), seed)


def inputs(model, b=3, n=12, lengths=(12, 7, 10), seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 263, 1, n, generator=g)
    t = torch.tensor([49, 3, 0][:b])
    mask = (torch.arange(n)[None, :] < torch.tensor(lengths)[:, None])[:, None, None, :]
    d = model.args.clip_dim
    if not POOLED[model.args.text_encoder_type]:
        tokens = torch.randn(5, b, d, generator=g) * 0.5
        pad = torch.arange(5)[None, :] >= torch.tensor([5, 3, 4])[:, None]
        embed = (tokens, pad)
    else:
        embed = torch.randn(1, b, d, generator=g)
    return x, t, {"mask": mask, "text_embed": embed}


@pytest.mark.parametrize("arch,encoder,emb", COMBOS)
@pytest.mark.parametrize("mask_frames", [True, False])
def test_forward_matches_stock_torch_reference(arch, encoder, emb, mask_frames):
    model = tiny(arch, encoder, emb, mask_frames)
    ref = OfficialStyleMDM(model)
    x, t, y = inputs(model)
    with torch.inference_mode():
        for uncond in (False, True):
            yy = dict(y, uncond=uncond)
            assert (model(x, t, yy) - ref(x, t, yy)).abs().max() < 1e-5


def test_masks_matter_only_where_documented():
    x, t, y = inputs(tiny("trans_enc", "clip"))
    all_valid = dict(y, mask=torch.ones_like(y["mask"]))
    with torch.inference_mode():
        masked = tiny("trans_enc", "clip", mask_frames=True)
        assert (masked(x, t, y) - masked(x, t, all_valid)).abs().max() > 1e-3     # mask_frames uses it
        unmasked = tiny("trans_enc", "clip", mask_frames=False)
        assert torch.equal(unmasked(x, t, y), unmasked(x, t, all_valid))          # pre-2025 models ignore it
        bert = tiny("trans_dec", "bert", True)
        x, t, y = inputs(bert)
        tokens, pad = y["text_embed"]
        garbage = tokens.clone()
        garbage[pad.T] = 1e3   # padded text tokens must be ignored
        assert (bert(x, t, y) - bert(x, t, dict(y, text_embed=(garbage, pad)))).abs().max() < 1e-5


def test_sentence_token_gives_the_frames_the_sentence_row_without_cross_attention():
    """With cross-attention silenced, only a sentence_token model still hears the text, and only row 0."""
    def silenced(sentence_token):
        model = random_mdm(ModelArgs(arch="trans_dec", text_encoder_type="minilm_tokens", latent_dim=16, layers=2,
                                     mask_frames=True, pos_embed_max_len=64, diffusion_steps=50,
                                     sentence_token=sentence_token), 0)
        for layer in model.seqTransDecoder.layers:
            torch.nn.init.zeros_(layer.multihead_attn.out_proj.weight)
            torch.nn.init.zeros_(layer.multihead_attn.out_proj.bias)
        return model
    with_token, without = silenced(True), silenced(False)
    x, t, y = inputs(with_token)
    tokens, pad = y["text_embed"]
    new_sentence, new_word = tokens.clone(), tokens.clone()
    new_sentence[0] += 1.0
    new_word[1] += 1.0
    with torch.inference_mode():
        base = with_token(x, t, y)
        assert (with_token(x, t, dict(y, text_embed=(new_sentence, pad))) - base).abs().max() > 1e-3
        assert (with_token(x, t, dict(y, text_embed=(new_word, pad))) - base).abs().max() < 1e-6
        plain = without(x, t, y)
        assert (without(x, t, dict(y, text_embed=(new_sentence, pad))) - plain).abs().max() < 1e-6


def test_gru_recurs_across_the_batch_like_the_official_code():
    model = tiny("gru", "clip")
    x, t, y = inputs(model)
    with torch.inference_mode():
        base = model(x, t, y)
        x2 = x.clone()
        x2[0] += 1.0
        moved = model(x2, t, y)
    assert (moved[1:] - base[1:]).abs().max() > 1e-3   # later samples see sample 0 ...
    x3 = x.clone()
    x3[2] += 1.0
    with torch.inference_mode():
        moved = model(x3, t, y)
    assert torch.equal(moved[:2], base[:2])             # ... earlier ones never see later ones


@pytest.mark.parametrize("arch,encoder,emb", COMBOS)
def test_guided_denoiser_equals_official_cfg_wrapper(arch, encoder, emb):
    model = tiny(arch, encoder, emb)
    ref = OfficialStyleMDM(model)
    x, t, y = inputs(model)
    tokens, pad = y["text_embed"] if isinstance(y["text_embed"], tuple) else (y["text_embed"], None)
    frame_pad = ~y["mask"][:, 0, 0, :]
    ours = GuidedDenoiser(model, tokens.permute(1, 0, 2), pad, 2.5, frame_pad=frame_pad)
    assert ours.batched == (arch != "gru")
    with torch.inference_mode():
        expected = official_cfg(ref, y, 2.5)(x, t)
        assert (ours(x, t) - expected).abs().max() < 1e-5
        cond_only = GuidedDenoiser(model, tokens.permute(1, 0, 2), pad, 1.0, frame_pad=frame_pad)
        assert cond_only.passes == ("cond",)
        assert (cond_only(x, t) - ref(x, t, y)).abs().max() < 1e-5
        uncond = GuidedDenoiser(model, tokens.permute(1, 0, 2), pad, 2.5, conditional=False, frame_pad=frame_pad)
        assert (uncond(x, t) - ref(x, t, dict(y, uncond=True))).abs().max() < 1e-5


def test_state_dict_keys_are_the_official_ones():
    keys = list(tiny("trans_dec", "clip").state_dict())
    tops = [k.split(".")[0] for k in keys]
    assert list(dict.fromkeys(tops)) == ["input_process", "sequence_pos_encoder", "seqTransDecoder",
                                         "embed_timestep", "embed_text", "output_process"]
    layer = {k.split(".", 3)[3] for k in keys if k.startswith("seqTransDecoder.layers.0.")}
    assert layer == {f"{m}.{p}" for m in ("self_attn", "multihead_attn") for p in ("in_proj_weight", "in_proj_bias")} | \
        {f"{m}.out_proj.{p}" for m in ("self_attn", "multihead_attn") for p in ("weight", "bias")} | \
        {f"{m}.{p}" for m in ("linear1", "linear2", "norm1", "norm2", "norm3") for p in ("weight", "bias")}
    assert "embed_timestep.sequence_pos_encoder.pe" in keys and "sequence_pos_encoder.pe" in keys
    gru = tiny("gru", "clip").state_dict()
    assert gru["input_process.poseEmbedding.weight"].shape == (16, 263 + 16)
    assert {k for k in gru if k.startswith("gru.")} == {f"gru.{w}_l{i}" for w in ("weight_ih", "weight_hh", "bias_ih",
                                                                                  "bias_hh") for i in (0, 1)}


@pytest.mark.parametrize("arch,encoder,count", [("trans_enc", "clip", 17_880_327), ("trans_dec", "clip", 26_293_511),
                                                ("trans_dec", "bert", 26_424_583), ("gru", "clip", 13_927_687)])
def test_full_size_parameter_counts_match_the_releases(arch, encoder, count):
    with torch.device("meta"):
        model = MDM(ModelArgs(arch=arch, text_encoder_type=encoder))
    assert sum(p.numel() for p in model.parameters()) == count


def test_training_mode_is_stochastic_and_differentiable():
    model = tiny("trans_enc", "clip")
    x, t, y = inputs(model)
    with torch.inference_mode():
        assert torch.equal(model(x, t, y), model(x, t, y))
    model.train().requires_grad_(True)
    a, b = model(x, t, y), model(x, t, y)
    assert (a - b).abs().max() > 1e-4          # dropout (and condition masking) active in training
    a.square().mean().backward()
    assert all(p.grad is not None for n, p in model.named_parameters())
