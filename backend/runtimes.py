"""Which runtime serves a model folder: torch (a checkpoint folder) or ONNX Runtime (an export).

    gen = load_generator(model_dir, device="auto", text_encoder_dir=None, runtime="auto")

``runtime``:
- ``auto``: an exported folder (``onnx_manifest.json``) runs on ONNX Runtime; a checkpoint folder
  runs on torch, or, where torch is not installed, on the export in its ``onnx/`` subfolder;
- ``torch``: the checkpoint folder on torch;
- ``onnx``: ONNX Runtime; for a checkpoint folder, its ``onnx/`` export if present, else an export
  made once into the cache folder (``$BLENDER_MDM_ONNX_CACHE``, default ~/.cache/blender-mdm/onnx).

``model_dir=None`` is the embedded demo model (``backend/models/demo``, its export in ``demo/onnx``).
This module is torch-free; torch is imported only when the torch runtime or an export is needed.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import BackendError, InputError
from .onnx_runtime import is_onnx_export

RUNTIMES = ("auto", "torch", "onnx")
EXPORT_SUBFOLDER = "onnx"


def torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        return False


def _folder(model_dir) -> Path:
    """The model folder (None = the demo model; a .pt path = its folder)."""
    from .mdm import DEMO_MODEL_DIR
    path = DEMO_MODEL_DIR if model_dir is None else Path(model_dir).expanduser()
    return path.parent if path.is_file() else path


def _no_torch(folder: Path) -> BackendError:
    return BackendError(f"{folder} is a torch checkpoint folder, but this backend environment has no torch "
                        "(an ONNX Runtime environment): export it once where torch is installed with "
                        f"`python -m backend export-onnx --model-dir {folder} --out {folder / EXPORT_SUBFOLDER}` "
                        "and use that folder, or install backend/requirements.txt", code="no_torch")


def runtime_for(model_dir, runtime: str = "auto") -> str:
    """"torch" or "onnx" for this folder and request (cheap: loads and exports nothing)."""
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    folder = _folder(model_dir)
    if is_onnx_export(folder):
        if runtime == "torch":
            raise InputError(f"{folder} is an ONNX export (it has no torch checkpoint); use runtime 'onnx' or 'auto'")
        return "onnx"
    if runtime != "auto":
        if runtime == "torch" and not torch_installed():
            raise _no_torch(folder)
        return runtime
    if torch_installed():
        return "torch"
    if is_onnx_export(folder / EXPORT_SUBFOLDER):
        return "onnx"
    raise _no_torch(folder)


def export_cache_root() -> Path:
    return Path(os.environ.get("BLENDER_MDM_ONNX_CACHE", Path.home() / ".cache" / "blender-mdm" / "onnx")).expanduser()


def onnx_folder(model_dir, text_encoder_dir=None, report=lambda message: None) -> Path:
    """The exported folder that serves ``model_dir``: itself, its ``onnx/`` export, or a cached export
    (made now if missing; that needs torch)."""
    folder = _folder(model_dir)
    for candidate in (folder, folder / EXPORT_SUBFOLDER):
        if is_onnx_export(candidate):
            return candidate
    if not torch_installed():
        raise _no_torch(folder)
    from .mdm.checkpoint import file_sha256, find_checkpoint
    from .onnx_runtime.manifest import read_manifest
    _, checkpoint = find_checkpoint(folder if model_dir is None else Path(model_dir).expanduser())
    sha = file_sha256(checkpoint)
    cached = export_cache_root() / f"{folder.name}-{sha[:12]}"
    if is_onnx_export(cached) and read_manifest(cached).source.get("sha256") == sha:
        return cached
    from .onnx_runtime.export import export_model
    report(f"exporting {folder} to ONNX once, into {cached}")
    return export_model(checkpoint, cached, text_encoder_dir, report=report)


def resolve_device(device: str | None, model_dir=None, runtime: str = "auto") -> str:
    """The concrete device ("auto" resolved) the chosen runtime will use; DeviceError if unusable."""
    if runtime_for(model_dir, runtime) == "onnx":
        from .onnx_runtime.generator import resolve_providers
        return resolve_providers(device)[0]
    from .mdm.pipeline import resolve_device as torch_device
    return str(torch_device(device))


def load_generator(model_dir=None, device: str = "auto", text_encoder_dir=None, runtime: str = "auto",
                   report=lambda message: None):
    """A ready generator (``generate`` / ``edit``, see mdm.generation) on the chosen runtime."""
    if runtime_for(model_dir, runtime) == "onnx":
        from .onnx_runtime.generator import OnnxMotionGenerator
        return OnnxMotionGenerator.load(onnx_folder(model_dir, text_encoder_dir, report), device, text_encoder_dir)
    from .mdm.pipeline import MotionGenerator
    return MotionGenerator.load(model_dir, device=device, text_encoder_dir=text_encoder_dir)
