"""Fast checks of the ONNX backend that need no export: which runtime serves a folder, device ->
execution providers, manifest validation, and the clear errors of the export / generate commands."""
from __future__ import annotations

import json

import pytest

from backend import runtimes
from backend.__main__ import main
from backend.errors import BackendError, CheckpointError, DeviceError, InputError
from backend.mdm.args import ModelArgs, args_to_json_dict
from backend.onnx_runtime import MANIFEST_NAME, is_onnx_export
from backend.onnx_runtime.generator import resolve_providers
from backend.onnx_runtime.manifest import FORMAT, FORMAT_VERSION, read_manifest
from tests.helpers.tiny_models import write_tiny_model_dir


def write_fake_export(folder, kind="clip", **changes):
    """A folder that looks like an export (files are placeholders; nothing here runs them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("denoiser.onnx", "text_encoder.onnx", "tokenizer.json", "Mean.npy", "Std.npy"):
        (folder / name).write_bytes(b"placeholder")
    graph = {"inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", "frames", 263]}], "outputs": []}
    args = ModelArgs(text_encoder_type=kind, arch="trans_dec" if kind == "bert" else "trans_enc")
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": "m@123",
                "args": args_to_json_dict(args),
                "opset": 20, "denoiser": {"file": "denoiser.onnx", **graph},
                "text_encoder": {"kind": kind, "graph": {"file": "text_encoder.onnx", **graph},
                                 "tokenizer": {"file": "tokenizer.json", "max_tokens": 20, "special_ids": {}}}}
    manifest.update(changes)
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    return folder


def test_which_runtime_serves_a_folder(tmp_path, monkeypatch):
    export = write_fake_export(tmp_path / "export")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    assert is_onnx_export(export) and not is_onnx_export(ckpt) and not is_onnx_export(None)
    assert runtimes.runtime_for(export) == "onnx" and runtimes.runtime_for(str(export), "onnx") == "onnx"
    with pytest.raises(InputError, match="is an ONNX export"):
        runtimes.runtime_for(export, "torch")
    with pytest.raises(InputError, match="unknown runtime"):
        runtimes.runtime_for(ckpt, "tensorflow")
    assert runtimes.runtime_for(ckpt) == "torch" and runtimes.runtime_for(ckpt, "onnx") == "onnx"
    monkeypatch.setattr(runtimes, "torch_installed", lambda: False)     # an ONNX Runtime environment
    with pytest.raises(BackendError, match="has no torch") as err:
        runtimes.runtime_for(ckpt)
    assert err.value.code == "no_torch" and "export-onnx" in err.value.message
    with pytest.raises(BackendError, match="has no torch"):
        runtimes.runtime_for(ckpt, "torch")
    write_fake_export(ckpt / "onnx")                                      # the export next to the checkpoint
    assert runtimes.runtime_for(ckpt) == "onnx" and runtimes.onnx_folder(ckpt) == ckpt / "onnx"
    assert runtimes.onnx_folder(export) == export


def test_devices_map_to_execution_providers():
    assert resolve_providers("cpu") == ("cpu", ["CPUExecutionProvider"])
    assert resolve_providers("auto")[0] in ("cpu", "cuda")
    for bad in ("tpu", "cpu:1", "cuda:x", 3):
        with pytest.raises(DeviceError, match="unknown device"):
            resolve_providers(bad)
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(DeviceError, match="onnxruntime-gpu"):
            resolve_providers("cuda")


def test_manifest_problems_are_clear_errors(tmp_path):
    good = read_manifest(write_fake_export(tmp_path / "ok"))
    assert good.args.arch == "trans_enc" and good.text_kind == "clip" and good.denoiser.input_names == ["x"]
    with pytest.raises(CheckpointError, match="not an ONNX export"):
        read_manifest(tmp_path)
    cases = {"newer": (dict(format_version=FORMAT_VERSION + 1), "format version"),
             "format": (dict(format="something-else"), "not a blender-mdm ONNX manifest"),
             "kind": (dict(text_encoder={"kind": "bert", "tokenizer": {"file": "tokenizer.json"}}), "does not match"),
             "args": (dict(args={"dataset": "kit"}), "only HumanML3D")}
    for name, (changes, needle) in cases.items():
        with pytest.raises(CheckpointError, match=needle):
            read_manifest(write_fake_export(tmp_path / name, **changes))
    missing = write_fake_export(tmp_path / "missing")
    (missing / "denoiser.onnx").unlink()
    with pytest.raises(CheckpointError, match="denoiser.onnx is missing"):
        read_manifest(missing)
    broken = write_fake_export(tmp_path / "broken")
    (broken / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_manifest(broken)


def test_export_and_generate_commands_refuse_bad_folders(tmp_path, capsys):
    model = write_tiny_model_dir(tmp_path / "tiny")
    assert main(["export-onnx", "--model-dir", str(model), "--out", str(model)]) == 2
    assert "is the model folder itself" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["export-onnx", "--model-dir", str(model), "--out", str(busy)]) == 2
    assert "not an ONNX export" in capsys.readouterr().err and (busy / "notes.txt").exists()
    export = write_fake_export(tmp_path / "export")
    assert main(["generate", "--model-dir", str(export), "--runtime", "torch", "--prompt", "a person walks",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "is an ONNX export" in capsys.readouterr().err
    assert main(["generate", "--model-dir", str(export), "--device", "tpu", "--prompt", "a person walks",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "unknown device" in capsys.readouterr().err
