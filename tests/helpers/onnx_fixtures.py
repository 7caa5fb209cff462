"""Pytest fixtures for the ONNX tests: tiny model folders exported once per test session.
Import into a test module with ``from tests.helpers.onnx_fixtures import onnx_exports, tiny_encoders  # noqa: F401``.
"""
from __future__ import annotations

import pytest

from .mdm_fixtures import tiny_encoders  # noqa: F401  (the fixture below needs it)
from .tiny_models import write_tiny_model_dir

# One tiny model per architecture, covering both text-condition layouts (pooled clip, per-token bert)
# and both frame rules (mask_frames or not); 50 diffusion steps. (trans_dec without the time token
# and MiniLM are covered by the golden configs and tests/test_onnx_text_encoders.py.)
TINY_ONNX_MODELS = {
    "enc_clip": dict(arch="trans_enc", text_encoder="clip", mask_frames=True),
    "gru_clip": dict(arch="gru", text_encoder="clip", mask_frames=False, pos_embed_max_len=64),
    "dec_bert": dict(arch="trans_dec", text_encoder="bert", emb_trans_dec=True, mask_frames=True),
    "dec_minilm_tokens": dict(arch="trans_dec", text_encoder="minilm_tokens", mask_frames=True),   # the demo model's kind
    "dec_minilm_sentence_token": dict(arch="trans_dec", text_encoder="minilm_tokens", mask_frames=True,
                                      sentence_token=True),
}
_exported: dict = {}


@pytest.fixture(scope="session")
def onnx_exports(tmp_path_factory, tiny_encoders):  # noqa: F811
    """export(name) -> (model folder, exported folder) of ``TINY_ONNX_MODELS[name]``, made on first use."""
    root = tmp_path_factory.mktemp("onnx_exports")

    def export(name: str):
        if name not in _exported:
            from backend.onnx_runtime.export import export_model
            spec = TINY_ONNX_MODELS[name]
            model = write_tiny_model_dir(root / name, diffusion_steps=50, seed=len(_exported), **spec)
            _exported[name] = (model, export_model(model, root / f"{name}_onnx", tiny_encoders[spec["text_encoder"]]))
        return _exported[name]
    return export
