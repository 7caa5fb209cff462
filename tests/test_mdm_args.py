"""args.json reading: official defaults, our extension keys, refused configurations."""
import json
import logging

import pytest

from backend.errors import CheckpointError
from backend.mdm.args import ModelArgs, args_to_json_dict, load_args, parse_args_dict


def current_args(**overrides):
    raw = args_to_json_dict(ModelArgs(latent_dim=16, layers=2, diffusion_steps=10, mask_frames=True,
                                      pos_embed_max_len=100))
    raw.update(lr=1e-4, batch_size=64, save_dir="./save/x")  # training keys the loader ignores
    raw.update(overrides)
    return raw


def test_current_args_roundtrip_without_warning(caplog):
    with caplog.at_level(logging.WARNING):
        a = parse_args_dict(current_args())
    assert not caplog.records
    assert (a.arch, a.latent_dim, a.layers, a.diffusion_steps, a.mask_frames, a.pos_embed_max_len) == \
        ("trans_enc", 16, 2, 10, True, 100)
    assert (a.ff_size, a.num_heads, a.clip_dim, a.legacy) == (1024, 4, 512, False)


def test_legacy_args_take_official_defaults_with_warning(caplog):
    raw = {"arch": "trans_dec", "dataset": "humanml", "latent_dim": 512, "layers": 8, "cond_mask_prob": 0.1,
           "diffusion_steps": 1000, "noise_schedule": "cosine", "sigma_small": True, "emb_trans_dec": True,
           "unconstrained": False, "lr": 0.0001}
    with caplog.at_level(logging.WARNING):
        a = parse_args_dict(raw)
    assert a.legacy and a.text_encoder_type == "clip" and not a.mask_frames and not a.use_ema
    assert a.pos_embed_max_len == 5000 and a.emb_trans_dec
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "text_encoder_type" in message and "mask_frames" in message


def test_hardcoded_sizes_and_extension_keys():
    assert parse_args_dict(current_args(text_encoder_type="bert", arch="trans_dec")).clip_dim == 768
    a = parse_args_dict(current_args(text_encoder_type="minilm", ff_size=256, num_heads=2))
    assert (a.clip_dim, a.ff_size, a.num_heads) == (384, 256, 2)
    assert parse_args_dict(current_args(text_encoder_type="minilm_tokens", arch="trans_dec")).clip_dim == 384
    # written back only when they differ from the official hard-coded values
    raw = args_to_json_dict(a)
    assert raw["ff_size"] == 256 and "ff_size" not in args_to_json_dict(ModelArgs())


def test_sentence_token_is_an_extension_key_of_trans_dec():
    official = parse_args_dict(current_args(text_encoder_type="minilm_tokens", arch="trans_dec"))
    assert not official.sentence_token and official.max_frames == 100            # no key: off, nothing prepended
    ours = ModelArgs(arch="trans_dec", text_encoder_type="minilm_tokens", pos_embed_max_len=100, diffusion_steps=50,
                     sentence_token=True)
    raw = args_to_json_dict(ours)
    assert raw["sentence_token"] is True and "sentence_token" not in args_to_json_dict(ModelArgs())
    back = parse_args_dict(raw)
    assert back.sentence_token and back.max_frames == 99                         # one row goes to the token


@pytest.mark.parametrize("overrides,needle", [
    ({"dataset": "kit"}, "'kit' is not supported"),
    ({"dataset": "humanact12"}, "not supported"),
    ({"context_len": 20, "pred_len": 40}, "DiP prefix"),
    ({"lambda_target_loc": 1.0}, "target-location"),
    ({"multi_target_cond": True}, "target-location"),
    ({"unconstrained": True}, "unconstrained"),
    ({"arch": "transformer"}, "unknown arch"),
    ({"text_encoder_type": "t5"}, "unknown text_encoder_type"),
    ({"text_encoder_type": "bert"}, "needs arch 'trans_dec'"),
    ({"text_encoder_type": "minilm_tokens", "arch": "gru"}, "needs arch 'trans_dec'"),
    ({"latent_dim": 15}, "divisible"),
    ({"layers": 0}, "'layers' must be an integer"),
    ({"layers": "8"}, "'layers' must be an integer"),
    ({"mask_frames": "yes"}, "'mask_frames' must be true or false"),
    ({"cond_mask_prob": float("nan")}, "cond_mask_prob"),
    ({"noise_schedule": "sqrt"}, "unknown noise_schedule"),
    ({"pos_embed_max_len": 50, "diffusion_steps": 100}, "smaller than diffusion_steps"),
    ({"sentence_token": True}, "'sentence_token' is a trans_dec option"),
    ({"sentence_token": "yes", "arch": "trans_dec"}, "'sentence_token' must be true or false"),
])
def test_refused_configurations_name_the_file(tmp_path, overrides, needle):
    (tmp_path / "args.json").write_text(json.dumps(current_args(**overrides)))
    with pytest.raises(CheckpointError) as info:
        load_args(tmp_path)
    assert needle in info.value.message and str(tmp_path / "args.json") in info.value.message


def test_missing_and_broken_args_json(tmp_path):
    with pytest.raises(CheckpointError, match="args.json not found"):
        load_args(tmp_path)
    (tmp_path / "args.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_args(tmp_path)
    (tmp_path / "args.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        load_args(tmp_path)
