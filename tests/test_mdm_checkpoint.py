"""Loading official-layout model folders: EMA, clip_model keys, legacy args, and every bad-file error."""
import json

import pytest
import torch

from backend.errors import CheckpointError
from backend.mdm.checkpoint import file_sha256, find_checkpoint, load_model
from tests.helpers.tiny_models import random_mdm, write_tiny_model_dir


def probe(loaded):
    return loaded.model.output_process.poseFinal.bias.clone()


def test_plain_checkpoint_loads_exactly(tmp_path):
    folder = write_tiny_model_dir(tmp_path / "m", arch="trans_dec", emb_trans_dec=True)
    loaded = load_model(folder)
    ref = random_mdm(loaded.args, seed=0)
    for key, value in ref.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    assert not loaded.model.training and not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.model_id == f"m@{file_sha256(folder / 'model000000000.pt')[:12]}"
    assert load_model(folder / "model000000000.pt").model_id == loaded.model_id  # a .pt path works too


def test_ema_file_uses_model_avg_only_when_args_say_so(tmp_path):
    folder = write_tiny_model_dir(tmp_path / "ema", use_ema=True)
    ema = random_mdm(load_model(folder).args, seed=1000)
    assert torch.equal(probe(load_model(folder)), ema.output_process.poseFinal.bias)
    raw = json.loads((folder / "args.json").read_text())
    raw["use_ema"] = False
    (folder / "args.json").write_text(json.dumps(raw))
    plain = random_mdm(load_model(folder).args, seed=0)
    assert torch.equal(probe(load_model(folder)), plain.output_process.poseFinal.bias)


def test_clip_model_keys_and_foreign_pe_rows_are_ignored(tmp_path):
    folder = write_tiny_model_dir(tmp_path / "old", clip_model_keys=True, legacy_args=True, mask_frames=False)
    sd = torch.load(folder / "model000000000.pt", weights_only=True)
    assert any(k.startswith("clip_model.") for k in sd)
    sd["sequence_pos_encoder.pe"] = torch.zeros(7, 1, 16)       # old files: other row counts
    sd["embed_timestep.sequence_pos_encoder.pe"] = sd["sequence_pos_encoder.pe"]
    torch.save(sd, folder / "model000000000.pt")
    loaded = load_model(folder)
    assert loaded.args.legacy and loaded.args.pos_embed_max_len == 5000 and not loaded.args.mask_frames
    assert loaded.model.sequence_pos_encoder.pe.shape == (5000, 1, 16)
    assert loaded.model.sequence_pos_encoder.pe[1].abs().sum() > 0   # recomputed, not loaded


def test_newest_checkpoint_is_picked(tmp_path):
    folder = write_tiny_model_dir(tmp_path / "m", checkpoint_name="model000200000.pt", seed=0)
    write_tiny_model_dir(folder, checkpoint_name="model000475000.pt", seed=5)
    assert find_checkpoint(folder)[1].name == "model000475000.pt"
    assert torch.equal(probe(load_model(folder)), random_mdm(load_model(folder).args, seed=5).output_process.poseFinal.bias)


def edit_state_dict(folder, fn):
    path = folder / "model000000000.pt"
    sd = torch.load(path, weights_only=True)
    fn(sd)
    torch.save(sd, path)


@pytest.mark.parametrize("damage,needle", [
    (lambda sd: sd.pop("embed_text.bias"), "missing key 'embed_text.bias'"),
    (lambda sd: sd.__setitem__("embed_action.action_embedding", torch.zeros(1, 16)), "unexpected key 'embed_action"),
    (lambda sd: sd.__setitem__("embed_text.weight", torch.zeros(16, 768)), "'embed_text.weight' has shape [16, 768]"),
    (lambda sd: sd.__setitem__("embed_text.bias", torch.full((16,), float("nan"))), "NaN"),
    (lambda sd: sd.__setitem__("embed_text.bias", torch.zeros(16, dtype=torch.int64)), "floating point"),
])
def test_mismatched_state_dicts_name_file_and_key(tmp_path, damage, needle):
    folder = write_tiny_model_dir(tmp_path / "m")
    edit_state_dict(folder, damage)
    with pytest.raises(CheckpointError) as info:
        load_model(folder)
    assert needle in info.value.message and "model000000000.pt" in info.value.message


def test_checkpoint_of_another_arch_is_explained(tmp_path):
    enc = write_tiny_model_dir(tmp_path / "enc")
    dec = write_tiny_model_dir(tmp_path / "dec", arch="trans_dec")
    (enc / "model000000000.pt").write_bytes((dec / "model000000000.pt").read_bytes())
    with pytest.raises(CheckpointError, match="arch trans_enc.*holds a seqTransDecoder network"):
        load_model(enc)


def test_wider_model_than_args_is_refused(tmp_path):
    small = write_tiny_model_dir(tmp_path / "small", latent_dim=16)
    big = write_tiny_model_dir(tmp_path / "big", latent_dim=32)
    (small / "model000000000.pt").write_bytes((big / "model000000000.pt").read_bytes())
    with pytest.raises(CheckpointError, match="latent_dim 16.*has shape"):
        load_model(small)


def test_missing_truncated_and_garbage_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    folder = write_tiny_model_dir(tmp_path / "m")
    ckpt = folder / "model000000000.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated, corrupted"):
        load_model(folder)
    ckpt.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="truncated, corrupted"):
        load_model(folder)
    torch.save([1, 2, 3], ckpt)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_model(folder)
    ckpt.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_model(folder)
    (folder / "model000000000.pt").write_bytes(data)
    (folder / "args.json").unlink()
    with pytest.raises(CheckpointError, match="args.json not found"):
        load_model(folder)


def test_pickled_code_is_refused(tmp_path):
    folder = write_tiny_model_dir(tmp_path / "m")

    class Evil:
        def __reduce__(self):
            return (print, ("owned",))
    torch.save({"model": Evil()}, folder / "model000000000.pt")
    with pytest.raises(CheckpointError, match="truncated, corrupted or not a PyTorch weights file"):
        load_model(folder)
