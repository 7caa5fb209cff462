"""The manifest of an exported folder (``onnx_manifest.json``): what is in it and how to run it.

Folder layout (written by ``export.py``, read by ``generator.py``; torch-free):

    onnx_manifest.json   format + version, source checkpoint (file name, sha256, model id), the
                         model's args.json values (schedule: noise_schedule, diffusion_steps,
                         sigma_small; rebuilt with ``mdm.diffusion.build_schedule``), opset, and
                         per graph: file, input/output names, dtypes and shapes (strings = dynamic
                         axes), plus the text encoder's kind and token preprocessing settings
    denoiser.onnx        ONE network call: x [B, T, 263], timesteps [B] int64, text [B, L, D],
                         drop_text [B] bool, (text_pad [B, L] bool: bert, minilm_tokens), (frame_pad [B, T] bool:
                         mask_frames models) -> x0 [B, T, 263]
    text_encoder.onnx    input_ids [B, 77] (clip) or input_ids + attention_mask [B, L] int64
                         -> text [B, 1, D] (clip, minilm) or [B, L, D] (bert, minilm_tokens)
    tokenizer.json       the `tokenizers` tokenizer of the text encoder
    Mean.npy, Std.npy    the model's normalisation statistics
    caption_vocabulary.json  (optional) copied from the model folder: the token ids of its training
                         captions (``mdm.text_tokens.CaptionVocabulary``)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckpointError
from ..mdm.args import ModelArgs, parse_args_dict
from . import MANIFEST_NAME

FORMAT = "blender-mdm-onnx"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class GraphSpec:
    file: str
    inputs: list[dict]            # [{"name", "dtype", "shape"}], shape entries int or axis name
    outputs: list[dict]

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.inputs]


@dataclass(frozen=True)
class ExportManifest:
    folder: Path
    model_id: str
    source: dict                  # {"folder", "checkpoint", "sha256"}
    args: ModelArgs
    opset: int
    denoiser: GraphSpec
    text_encoder: GraphSpec
    text_kind: str                # clip | bert | minilm | minilm_tokens
    tokenizer: dict               # {"file", "max_tokens", "special_ids", ("context")}
    raw: dict


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Written last and atomically: a folder with a manifest is a complete export."""
    path = Path(folder) / MANIFEST_NAME
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _graph(folder: Path, raw: dict, key: str, path: Path) -> GraphSpec:
    entry = raw.get(key)
    if not isinstance(entry, dict) or not all(k in entry for k in ("file", "inputs", "outputs")):
        raise CheckpointError(f"{path}: the '{key}' entry is missing or incomplete; export the model again")
    if not (folder / entry["file"]).is_file():
        raise CheckpointError(f"{folder / entry['file']} is missing: the exported folder is incomplete; "
                              "copy the whole folder or export the model again")
    return GraphSpec(entry["file"], list(entry["inputs"]), list(entry["outputs"]))


def read_manifest(folder: str | Path) -> ExportManifest:
    folder = Path(folder).expanduser()
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder} is not an ONNX export (no {MANIFEST_NAME}); create one with "
                              "`python -m backend export-onnx --model-dir MODEL --out FOLDER`")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc}); export the model again") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a blender-mdm ONNX manifest (format {raw.get('format')!r})"
                              if isinstance(raw, dict) else f"{path}: expected a JSON object")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {version!r}; this backend reads version "
                              f"{FORMAT_VERSION}: update blender-mdm or export the model again with this version")
    args = parse_args_dict(raw.get("args"), path)
    text = raw.get("text_encoder") or {}
    kind, tokenizer = text.get("kind"), text.get("tokenizer")
    if kind != args.text_encoder_type or not isinstance(tokenizer, dict) or "file" not in tokenizer:
        raise CheckpointError(f"{path}: the text encoder entry (kind {kind!r}) does not match the model's "
                              f"{args.text_encoder_type!r} encoder or lacks its tokenizer; export the model again")
    if not (folder / tokenizer["file"]).is_file():
        raise CheckpointError(f"{folder / tokenizer['file']} is missing; export the model again")
    for name in ("Mean.npy", "Std.npy"):
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name} is missing; export the model again")
    return ExportManifest(folder=folder, model_id=str(raw.get("model_id", folder.name)),
                          source=dict(raw.get("source") or {}), args=args, opset=int(raw.get("opset", 0)),
                          denoiser=_graph(folder, raw, "denoiser", path),
                          text_encoder=_graph(folder, text, "graph", path),
                          text_kind=kind, tokenizer=dict(tokenizer), raw=raw)
