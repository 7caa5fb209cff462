"""Tiny MDM model folders and tiny text encoders, written by the tests themselves (random weights).

    write_tiny_model_dir(path, arch="trans_enc", text_encoder="clip")  -> path (args.json + model000000000.pt)
    write_tiny_clip(path) / write_tiny_distilbert(path) / write_tiny_minilm(path) -> path (HF folder)

The model folders use the official layout (args.json as train_mdm.py writes it, a plain state dict
or {'model', 'model_avg'}); the text encoders are real transformers models with the output widths
MDM expects (CLIP projects to 512, DistilBERT 768, MiniLM 384) but tiny hidden sizes, and their own
tokenizer files (CLIP: vocab.json + merges.txt; BERT-style: vocab.txt).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from backend.mdm.args import ModelArgs, args_to_json_dict
from backend.mdm.checkpoint import save_checkpoint
from backend.mdm.network import MDM

# Keys a pre-2025 args.json holds (no text_encoder_type, mask_frames, pos_embed_max_len, use_ema, ...).
LEGACY_KEYS = ("arch", "cond_mask_prob", "dataset", "data_dir", "diffusion_steps", "emb_trans_dec", "lambda_fc",
               "lambda_rcxyz", "lambda_vel", "latent_dim", "layers", "noise_schedule", "sigma_small", "unconstrained")
TRAINING_NOISE = {"batch_size": 64, "lr": 0.0001, "num_steps": 600000, "save_interval": 50000, "seed": 10,
                  "weight_decay": 0.0, "overwrite": False, "cuda": True, "device": 0, "train_platform_type": "NoPlatform"}


def random_mdm(args: ModelArgs, seed: int = 0) -> MDM:
    """Default init plus 0.1 * N(0, 1) on every 1-D parameter (so a swapped bias or norm shows)."""
    torch.manual_seed(seed)
    model = MDM(args)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def write_tiny_model_dir(path, arch: str = "trans_enc", text_encoder: str = "clip", emb_trans_dec: bool = False,
                         use_ema: bool = False, legacy_args: bool = False, latent_dim: int = 16, layers: int = 2,
                         diffusion_steps: int = 10, mask_frames: bool = True, pos_embed_max_len: int = 256,
                         cond_mask_prob: float = 0.1, ff_size: int = 1024, num_heads: int = 4,
                         clip_model_keys: bool = False, seed: int = 0, checkpoint_name: str = "model000000000.pt",
                         mean_std: tuple | None = None, extra_args: dict | None = None,
                         sentence_token: bool = False) -> Path:
    """Write args.json + a random-weight checkpoint in the official layout; returns the folder.

    legacy_args: a pre-2025 args.json (clip, no mask_frames / pos_embed_max_len / use_ema keys: the
    official defaults apply). use_ema: {'model': sd, 'model_avg': sd_ema} with different weights.
    clip_model_keys: add ``clip_model.*`` tensors like 2022 checkpoints. mean_std: (Mean, Std) arrays
    to store as Mean.npy / Std.npy in the folder.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if legacy_args and (text_encoder != "clip" or mask_frames or use_ema):
        raise ValueError("a legacy args.json implies clip, no mask_frames and no EMA")
    args = ModelArgs(arch=arch, text_encoder_type=text_encoder, emb_trans_dec=emb_trans_dec, layers=layers,
                     latent_dim=latent_dim, ff_size=ff_size, num_heads=num_heads, cond_mask_prob=cond_mask_prob,
                     mask_frames=mask_frames, pos_embed_max_len=5000 if legacy_args else pos_embed_max_len,
                     use_ema=use_ema, diffusion_steps=diffusion_steps, sentence_token=sentence_token)
    raw = args_to_json_dict(args)
    if legacy_args:
        raw = {k: raw[k] for k in LEGACY_KEYS}
    raw.update(TRAINING_NOISE, save_dir=str(path), **(extra_args or {}))
    (path / "args.json").write_text(json.dumps(raw, indent=4, sort_keys=True))

    model = random_mdm(args, seed)
    ema = random_mdm(args, seed + 1000) if use_ema else None
    ckpt = path / checkpoint_name
    save_checkpoint(model, ckpt, ema)
    if clip_model_keys:
        blob = torch.load(ckpt, weights_only=True)
        sd = blob["model"] if use_ema else blob
        sd["clip_model.token_embedding.weight"] = torch.randn(10, 8)
        sd["clip_model.ln_final.weight"] = torch.ones(8)
        torch.save(blob, ckpt)
    if mean_std is not None:
        import numpy as np
        np.save(path / "Mean.npy", np.asarray(mean_std[0], np.float32))
        np.save(path / "Std.npy", np.asarray(mean_std[1], np.float32))
    return path


# ---------------------------------------------------------------------------------------------
# tiny text encoders
# ---------------------------------------------------------------------------------------------
WORDS = ("a", "person", "walks", "forward", "and", "then", "turns", "left", "right", "jumps", "runs", "in",
         "circle", "the", "waves", "hand", "sits", "down", "slowly", "kicks")


def _byte_symbols() -> list[str]:
    """CLIP/GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to 256 + n."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def write_tiny_clip(path, seed: int = 0) -> Path:
    """A 2-layer CLIP (text width 32, tiny vision tower) projecting to 512, with a byte-level BPE
    tokenizer (vocab.json + merges.txt) that knows a few whole words."""
    from transformers import CLIPConfig, CLIPModel
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab = symbols + [s + "</w>" for s in symbols]
    merges = []
    for word in WORDS:  # merge each word letter by letter into a whole-word token
        if len(word) < 2:
            continue
        current = word[0]
        for i, ch in enumerate(word[1:], start=1):
            piece = ch + ("</w>" if i == len(word) - 1 else "")
            merged = current + piece
            if f"{current} {piece}" not in merges:
                merges.append(f"{current} {piece}")
            if merged not in vocab:
                vocab.append(merged)
            current = merged
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (path / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}))
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77, bos_token_id=len(vocab) - 2,
                         eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1, projection_dim=512),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16, projection_dim=512),
        projection_dim=512)
    CLIPModel(config).save_pretrained(path)
    return path


def _write_wordpiece(path: Path, tokenizer_class: str, max_length: int) -> int:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "##s", "##ing", "##ly"] + list(WORDS)
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": tokenizer_class, "do_lower_case": True, "model_max_length": max_length,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}))
    return len(vocab)


def write_tiny_distilbert(path, seed: int = 0, max_positions: int = 64) -> Path:
    """A 1-layer DistilBERT with the 768-d output MDM's BERT models expect (max_positions tokens)."""
    from transformers import DistilBertConfig, DistilBertModel
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    n_vocab = _write_wordpiece(path, "DistilBertTokenizer", max_positions)
    torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=n_vocab, dim=768, n_layers=1, n_heads=2, hidden_dim=64,
                              max_position_embeddings=max_positions)
    DistilBertModel(config).save_pretrained(path)
    return path


def write_tiny_minilm(path, seed: int = 0, max_seq_length: int = 16) -> Path:
    """A 1-layer BERT with 384-d output plus a sentence-transformers config (mean pooling, normalise)."""
    from transformers import BertConfig, BertModel
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    n_vocab = _write_wordpiece(path, "BertTokenizer", 512)
    (path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=n_vocab, hidden_size=384, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(path)
    return path
