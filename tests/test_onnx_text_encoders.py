"""Exported text encoders: the same token ids (one tokenizer.json, one preprocessing) and the same
conditions as torch, for the tiny CLIP / DistilBERT / MiniLM encoders and the real MiniLM."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from backend.mdm.text_encoders import load_text_encoder
from backend.mdm.text_tokens import PromptTokenizer
from backend.onnx_runtime.export import TOKENIZER_FILE, export_text_encoder
from backend.onnx_runtime.generator import OnnxMotionGenerator
from tests.helpers.onnx_fixtures import onnx_exports, tiny_encoders  # noqa: F401

pytestmark = pytest.mark.slow  # exports (a few seconds each; the real MiniLM ~20 s)

PROMPTS = ["a person walks forward", "A Person  WALKS, then jumps!!", "caf\u00e9 &amp; na\u00efve kicks", "x",
           " ".join(["a person walks forward and then turns left"] * 8)]   # the last one is truncated


@pytest.mark.parametrize("name", ["enc_clip", "dec_bert", "dec_minilm_tokens"])
def test_exported_clip_and_bert_encode_like_torch(onnx_exports, tiny_encoders, name, caplog):  # noqa: F811
    _, export_dir = onnx_exports(name)
    gen = OnnxMotionGenerator.load(export_dir, "cpu")
    torch_encoder = load_text_encoder(gen.args.text_encoder_type, tiny_encoders[gen.args.text_encoder_type])
    for prompt in PROMPTS:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            ids = gen.text_encoder.tokens.ids(prompt)
        assert ids == torch_encoder.tokens.ids(prompt)
        assert ("truncated" in caplog.text) == (prompt == PROMPTS[-1])
        ours, pad = gen.text_encoder.encode(prompt)
        ref, _ = torch_encoder.encode(prompt)
        assert pad is None and ours.shape == tuple(ref.shape) and ours.dtype == np.float32
        assert np.abs(ours - ref.numpy()).max() <= 1e-5, prompt
    assert gen.text_encoder.encode(PROMPTS[0])[0] is gen.text_encoder.encode(PROMPTS[0])[0]   # cached


def _padded_batch(tokens: PromptTokenizer, prompts):
    rows = [tokens.ids(p) for p in prompts]
    n = max(len(r) for r in rows)
    ids = np.array([r + [0] * (n - len(r)) for r in rows], dtype=np.int64)
    mask = np.array([[1] * len(r) + [0] * (n - len(r)) for r in rows], dtype=np.int64)
    return ids, mask


@pytest.mark.parametrize("which", ["tiny", "real"])
def test_exported_minilm_matches_torch_on_padded_batches(tiny_encoders, tmp_path, which):  # noqa: F811
    import onnxruntime as ort
    encoder = load_text_encoder("minilm", tiny_encoders["minilm"] if which == "tiny" else None)  # real: the package
    entry = export_text_encoder(encoder, tmp_path / "text.onnx")
    assert [i["name"] for i in entry["inputs"]] == ["input_ids", "attention_mask"]
    assert entry["inputs"][0]["shape"] == ["batch", "tokens"] and entry["outputs"][0]["shape"][1:] == [1, 384]
    (tmp_path / TOKENIZER_FILE).write_text(encoder.tokens.to_json())
    reread = PromptTokenizer.from_file("minilm", tmp_path / TOKENIZER_FILE, **{
        "max_tokens": encoder.tokens.settings()["max_tokens"], "special": encoder.tokens.settings()["special_ids"]})
    session = ort.InferenceSession(str(tmp_path / "text.onnx"), providers=["CPUExecutionProvider"])
    ids, mask = _padded_batch(reread, PROMPTS)
    first = encoder.tokens.ids(PROMPTS[0])
    assert ids.tolist()[0] == first + [0] * (ids.shape[1] - len(first))
    ours = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    with torch.no_grad():
        ref = encoder.embed(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    assert np.abs(ours - ref).max() <= 1e-5
    for row, prompt in enumerate(PROMPTS):  # padding rows change nothing: each equals the single-prompt encoding
        assert np.abs(ours[row] - encoder.encode(prompt)[0].numpy()[0]).max() <= 1e-5
