"""Prompt -> token ids with the official preprocessing of each text encoder (torch-free).

Used by the torch encoders (``text_encoders.py``) and by the ONNX Runtime backend alike, on the
same ``tokenizers`` tokenizer (the ``tokenizer.json`` of the Hugging Face folder), so both runtimes
feed their networks identical ids:

- ``clip``: SOT + at most 20 BPE tokens + EOT (official context 22; a longer prompt keeps its first
  20 tokens), zero-padded to 77. The prompt is HTML-unescaped twice and stripped first (CLIP's
  basic_clean minus ftfy).
- ``bert`` / ``minilm`` / ``minilm_tokens``: [CLS] ... [SEP] from the tokenizer's own post-processor; a prompt longer
  than ``max_tokens`` keeps its first ``max_tokens - 1`` ids plus [SEP].
"""
from __future__ import annotations

import html
import json
import logging
from pathlib import Path

from ..errors import CheckpointError

log = logging.getLogger(__name__)

HUB_IDS = {"clip": ("openai/clip-vit-base-patch32",),
           "bert": ("distilbert/distilbert-base-uncased", "distilbert-base-uncased"),
           "minilm": ("sentence-transformers/all-MiniLM-L6-v2",),
           "minilm_tokens": ("sentence-transformers/all-MiniLM-L6-v2",)}
DIMS = {"clip": 512, "bert": 768, "minilm": 384, "minilm_tokens": 384}  # width of the condition given to MDM
# one token [B, 1, D] vs a row per token [B, L, D] (with a padding mask when prompts are batched)
POOLED = {"clip": True, "bert": False, "minilm": True, "minilm_tokens": False}
# per-word encoders: the condition row of token i is row i + offset (minilm_tokens: row 0 = the sentence)
WORD_ROW_OFFSET = {"bert": 0, "minilm_tokens": 1}
CLIP_MAX_TEXT_TOKENS = 20  # official max_text_len for HumanML3D: context 22 = SOT + 20 + EOT
CLIP_CONTEXT = 77
# written by our training beside a per-word model: {"text_encoder_type", "token_ids": the ids of every
# training caption}; at inference the rows of other ids (words the network never saw) are hidden
CAPTION_VOCABULARY = "caption_vocabulary.json"


class PromptTokenizer:
    """``ids(prompt) -> list[int]`` for one encoder kind.

    tokenizer_json: the serialised ``tokenizers`` tokenizer; max_tokens: BPE tokens between SOT and
    EOT (clip) or total ids including [CLS]/[SEP] (bert, minilm); special: {"sot", "eot"} (clip)
    or {"sep"} (bert, minilm) token ids.
    """

    def __init__(self, kind: str, tokenizer_json: str, max_tokens: int, special: dict[str, int]):
        from tokenizers import Tokenizer
        needed = ("sot", "eot") if kind == "clip" else ("sep",)
        if kind not in DIMS or any(not isinstance(special.get(k), int) for k in needed) or max_tokens < 2:
            raise ValueError(f"bad {kind} tokenizer settings: max_tokens {max_tokens}, special ids {special}")
        self.kind, self.max_tokens, self.special = kind, int(max_tokens), {k: int(special[k]) for k in needed}
        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_truncation()  # a tokenizer.json may carry its own truncation / padding settings
        self.tokenizer.no_padding()

    @classmethod
    def from_file(cls, kind: str, path: str | Path, max_tokens: int, special: dict[str, int]) -> "PromptTokenizer":
        return cls(kind, Path(path).read_text(encoding="utf-8"), max_tokens, special)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    def words_at(self, prompt: str, positions: list[int]) -> list[str]:
        """bert / minilm: the prompt's words, as typed, holding the tokens at ``positions`` of
        ``ids(prompt)`` (a word split into pieces is named once)."""
        encoding = self.tokenizer.encode(prompt)
        words = []
        for i in positions:
            word_id = encoding.word_ids[i] if i < len(encoding.word_ids) else None
            if word_id is None:   # [CLS] / [SEP]
                continue
            spans = [span for span, w in zip(encoding.offsets, encoding.word_ids) if w == word_id]
            word = prompt[spans[0][0]:spans[-1][1]]
            if word not in words:
                words.append(word)
        return words

    def settings(self) -> dict:
        """What an exported folder's manifest records to rebuild this tokenizer."""
        return {"max_tokens": self.max_tokens, "special_ids": dict(self.special),
                **({"context": CLIP_CONTEXT} if self.kind == "clip" else {})}

    def _truncate(self, ids: list[int], limit: int, prompt: str) -> list[int]:
        if len(ids) > limit:
            log.warning("prompt is longer than the %s text encoder takes (%d tokens > %d); it is truncated: %r",
                        self.kind, len(ids), limit, prompt[:80])
            return ids[:limit]
        return ids

    def ids(self, prompt: str) -> list[int]:
        if self.kind == "clip":
            text = html.unescape(html.unescape(prompt)).strip()
            bpe = self._truncate(self.tokenizer.encode(text, add_special_tokens=False).ids, self.max_tokens, prompt)
            row = [self.special["sot"]] + bpe + [self.special["eot"]]
            return row + [0] * (CLIP_CONTEXT - len(row))
        ids = self.tokenizer.encode(prompt).ids  # with [CLS] ... [SEP]
        if len(ids) > self.max_tokens:
            ids = self._truncate(ids, self.max_tokens - 1, prompt) + [self.special["sep"]]
        return ids


class CaptionVocabulary:
    """The token ids of a per-word model's training captions (``caption_vocabulary.json``).

    A word row the network never saw during training carries a direction it never learned to read,
    and the demo model follows such rows wildly ("springs" in "a person springs upward"). So an
    unseen verb is first reworded with a WordNet relative from the captions (``rewording``:
    "springs" -> "jumps"), and the rows of words that stay unseen are hidden: training hid whole
    captions' word rows (sentence dropout), so that leaves a condition it knows, the sentence
    embedding plus the familiar words.

    words: the lower-case words of the captions (training writes them; for a file without them
    the vocabulary's whole-word tokens stand in).
    """

    def __init__(self, kind: str, token_ids, words=None):
        self.kind, self.token_ids = kind, frozenset(int(i) for i in token_ids)
        self.words = None if words is None else frozenset(words)
        self._rewording = None

    @classmethod
    def read(cls, folder: str | Path, kind: str) -> "CaptionVocabulary | None":
        """The folder's vocabulary, or None without one (official checkpoints) or for a pooled encoder."""
        path = Path(folder) / CAPTION_VOCABULARY
        if not path.is_file() or kind not in WORD_ROW_OFFSET:
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            ids, words = raw["token_ids"], raw.get("words")
            if raw.get("text_encoder_type") != kind or not all(isinstance(i, int) for i in ids):
                raise ValueError(f"it is for text encoder {raw.get('text_encoder_type')!r}, the model uses {kind!r}")
            if words is not None and not (isinstance(words, list) and all(isinstance(w, str) for w in words)):
                raise ValueError("'words' is not a list of words")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path} is damaged or belongs to another model ({exc}); delete it (all words are "
                                  "then used) or copy it again from the training run folder") from exc
        return cls(kind, ids, words)

    def rewording(self, tokens: PromptTokenizer):
        """The ``rewording.PromptRewording`` of this vocabulary's words (built once; reads WordNet),
        or None when the WordNet extract cannot be read (unseen words are then only hidden)."""
        if self._rewording is None:
            from .rewording import PromptRewording
            from .wordnet import ASSET_DIR, shipped_wordnet
            words = self.words
            if words is None:   # an older run: its whole-word tokens ("jumps"; not "##ing")
                pieces = (tokens.tokenizer.id_to_token(i) or "" for i in self.token_ids)
                words = [w for w in pieces if w.isalpha()]
            try:
                self._rewording = PromptRewording(words, shipped_wordnet())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("cannot read WordNet in %s (%s): unseen words are hidden, not reworded; "
                            "reinstall the add-on to restore it", ASSET_DIR, exc)
                self._rewording = False
        return self._rewording or None

    def unseen(self, ids: list[int]) -> list[int]:
        """Positions in ``ids`` whose token never occurred in a training caption."""
        return [i for i, token_id in enumerate(ids) if token_id not in self.token_ids]

    def hidden_rows(self, ids: list[int]) -> list[int]:
        """Condition rows to hide for the prompt ``ids``: its unseen tokens' rows, never every row."""
        offset = WORD_ROW_OFFSET[self.kind]
        unseen = self.unseen(ids)
        if offset == 0 and len(unseen) == len(ids):   # no sentence row: keep something to attend to
            return []
        return [offset + i for i in unseen]
