"""ONNX export of MDM models and an ONNX Runtime backend that runs without torch.

``python -m backend export-onnx --model-dir DIR --out OUT`` (``export.py``, needs torch) writes one
denoiser call and the text encoder's forward as ONNX graphs into a self-describing folder
(``manifest.py``). ``generator.OnnxMotionGenerator`` runs such a folder with numpy + onnxruntime +
tokenizers only: the sampling loop, noise, guidance, inpainting and the motion codec are the same
host code the torch backend uses, so both give the same motion for a seed.

Importing this package is cheap and torch-free.
"""
from __future__ import annotations

from pathlib import Path

MANIFEST_NAME = "onnx_manifest.json"


def is_onnx_export(path) -> bool:
    """True when ``path`` is a folder written by ``export-onnx`` (it holds the ONNX manifest)."""
    return path is not None and (Path(path).expanduser() / MANIFEST_NAME).is_file()
