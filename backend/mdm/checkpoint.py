"""Load an official MDM model folder (args.json + modelNNNNNNNNN.pt) into our network, unchanged.

What real checkpoints contain and how it is handled:
- a plain state dict, or ``{'model': sd, 'model_avg': sd_ema}`` (EMA weights are used iff args.json
  says ``use_ema``, exactly like the official loader);
- ``clip_model.*`` keys (frozen text-encoder weights saved by 2022 code): dropped;
- ``sequence_pos_encoder.pe`` / ``embed_timestep.sequence_pos_encoder.pe``: dropped (the table is
  recomputed; old files may have a different number of rows);
- anything else must match the network exactly: an unexpected, missing or mis-shaped key is a
  ``CheckpointError`` naming the file and the key.
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import CheckpointError
from .args import ModelArgs, load_args
from .network import MDM

log = logging.getLogger(__name__)

CHECKPOINT_PATTERN = re.compile(r"^model(\d+)\.pt$")
IGNORED_PREFIXES = ("clip_model.",)
PE_KEYS = ("sequence_pos_encoder.pe", "embed_timestep.sequence_pos_encoder.pe")


@dataclass
class LoadedModel:
    model: MDM
    args: ModelArgs
    model_dir: Path
    checkpoint_path: Path
    model_id: str           # "<folder name>@<first 12 hex digits of the checkpoint's sha256>"


def find_checkpoint(model_path: str | Path) -> tuple[Path, Path]:
    """A model folder or a .pt file inside one -> (folder, checkpoint). With several model*.pt files
    the one with the highest training step is used (pass the .pt path to choose another)."""
    path = Path(model_path).expanduser()
    if path.is_file():
        return path.parent, path
    if not path.exists():
        raise CheckpointError(f"model folder {path} does not exist; pass the folder that holds args.json "
                              "and the model*.pt checkpoint")
    candidates = sorted((int(m.group(1)), p) for p in path.iterdir()
                        if p.is_file() and (m := CHECKPOINT_PATTERN.match(p.name)))
    if not candidates:
        raise CheckpointError(f"no checkpoint (model<step>.pt) found in {path}; download the model again "
                              "or pass the path of the .pt file")
    if len(candidates) > 1:
        log.warning("%s holds %d checkpoints; using %s (pass a .pt path to pick another)",
                    path, len(candidates), candidates[-1][1].name)
    return path, candidates[-1][1]


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path, use_ema: bool) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True) + the official choice between 'model_avg', 'model' and the raw dict."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError / UnpicklingError / EOFError / zip errors here
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: the file is truncated, corrupted or not a "
                              f"PyTorch weights file ({reason}); download it again") from exc
    if not isinstance(blob, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(blob).__name__}, not a state dict")
    if use_ema and "model_avg" in blob:
        sd = blob["model_avg"]
    elif "model" in blob:
        if use_ema:
            log.warning("%s: args.json says use_ema but the file has no 'model_avg'; using 'model'", path)
        sd = blob["model"]
    else:
        sd = blob
    if not isinstance(sd, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in sd.items()):
        raise CheckpointError(f"checkpoint {path} is not an MDM state dict (expected tensors keyed by name)")
    return {k: v for k, v in sd.items() if not k.startswith(IGNORED_PREFIXES) and k not in PE_KEYS}


def _backbone_hint(keys) -> str:
    found = sorted({k.split(".")[0] for k in keys if k.split(".")[0] in ("seqTransEncoder", "seqTransDecoder", "gru")})
    return f" (the file holds a {'/'.join(found)} network)" if found else ""


def check_state_dict(model: MDM, sd: Mapping[str, torch.Tensor], path: Path) -> None:
    expected = {k: v for k, v in model.state_dict().items() if k not in PE_KEYS}
    a = model.args
    where = (f"{path} does not match its args.json (arch {a.arch}, latent_dim {a.latent_dim}, layers {a.layers}, "
             f"text encoder {a.text_encoder_type})")
    unexpected = [k for k in sd if k not in expected]
    if unexpected:
        raise CheckpointError(f"{where}: unexpected key '{unexpected[0]}'"
                              f"{f' and {len(unexpected) - 1} more' if len(unexpected) > 1 else ''}"
                              f"{_backbone_hint(sd)}")
    missing = [k for k in expected if k not in sd]
    if missing:
        raise CheckpointError(f"{where}: missing key '{missing[0]}'"
                              f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}")
    for key, ref in expected.items():
        tensor = sd[key]
        if tuple(tensor.shape) != tuple(ref.shape):
            raise CheckpointError(f"{where}: key '{key}' has shape {list(tensor.shape)}, expected {list(ref.shape)}")
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: key '{key}' holds {tensor.dtype} values, expected floating point")
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: key '{key}' contains NaN or infinite values; the file is corrupted")


def load_model(model_path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """args.json + checkpoint -> an eval-mode MDM on ``device`` (float32)."""
    model_dir, ckpt = find_checkpoint(model_path)
    args = load_args(model_dir)
    sd = read_state_dict(ckpt, args.use_ema)
    model = MDM(args)
    check_state_dict(model, sd, ckpt)
    model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    model.eval().requires_grad_(False).to(device)
    return LoadedModel(model, args, model_dir, ckpt, f"{model_dir.name}@{file_sha256(ckpt)[:12]}")


def save_checkpoint(model: MDM, path: str | Path, ema_model: MDM | None = None) -> None:
    """Write a checkpoint in the official layout (pe buffers included, no text-encoder weights)."""
    sd = model.state_dict()
    torch.save(sd if ema_model is None else {"model": sd, "model_avg": ema_model.state_dict()}, path)
