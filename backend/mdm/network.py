"""The MDM denoiser network, with parameter names identical to the official checkpoints.

Module tree (= state-dict key prefixes, in the official registration order):
    input_process.poseEmbedding            Linear(263 [+ d for gru], d)
    sequence_pos_encoder.pe                sinusoidal table [max_len, 1, d] (buffer, never loaded)
    seqTransEncoder.layers.i.* | seqTransDecoder.layers.i.* | gru.*
    embed_timestep.time_embed.{0,2}        Linear(d, d), SiLU, Linear(d, d)
    embed_text                             Linear(clip_dim, d)
    output_process.poseFinal               Linear(d, 263)

Internally everything is batch-first ([B, S, d]); the official layout [B, 263, 1, T] is used only at
the ``forward`` boundary. Attention goes through ``scaled_dot_product_attention``; the backbone is
post-norm with exact GELU and no final norm, like ``nn.TransformerEncoder/DecoderLayer`` defaults.

Version note: trans_dec with emb_trans_dec prepends the TIME embedding only, as the current official
code does (and as the golden vectors check); the 2022 code that trained humanml-decoder-with-emb-512
prepended time + text, so that one release behaves slightly differently here than when it was trained.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .args import ModelArgs

NFEATS = 263
DROPOUT = 0.1  # hard-coded by the official code (only active in training mode)


def sinusoid_table(max_len: int, d: int) -> torch.Tensor:
    """[max_len, 1, d] float32: sin on even channels, cos on odd ones (interleaved), computed in float32."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(max_len, d)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table[:, None, :]


def _with_condition_slot(frame_pad: torch.Tensor | None) -> torch.Tensor | None:
    """[B, T] frame padding -> [B, 1 + T]: the prepended condition token is never masked."""
    if frame_pad is None:
        return None
    return torch.cat([frame_pad.new_zeros(frame_pad.shape[0], 1), frame_pad], dim=1)


class PositionalEncoding(nn.Module):
    def __init__(self, d: int, max_len: int):
        super().__init__()
        self.register_buffer("pe", sinusoid_table(max_len, d))  # saved (official files hold it), never loaded

    def rows(self, n: int) -> torch.Tensor:
        if n > self.pe.shape[0]:
            raise ValueError(f"sequence of {n} positions exceeds pos_embed_max_len {self.pe.shape[0]}")
        return self.pe[:n, 0]  # [n, d]


class TimestepEmbedder(nn.Module):
    def __init__(self, d: int, pos: PositionalEncoding):
        super().__init__()
        self.sequence_pos_encoder = pos  # shared module: its buffer appears under both names
        self.time_embed = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:  # [B] int64 -> [B, d]
        return self.time_embed(self.sequence_pos_encoder.pe[timesteps, 0])


class InputProcess(nn.Module):
    def __init__(self, in_feats: int, d: int):
        super().__init__()
        self.poseEmbedding = nn.Linear(in_feats, d)


class OutputProcess(nn.Module):
    def __init__(self, d: int, out_feats: int):
        super().__init__()
        self.poseFinal = nn.Linear(d, out_feats)


class Attention(nn.Module):
    """Multi-head attention with packed q/k/v weights (rows q, k, v) like ``nn.MultiheadAttention``."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split(self, x: torch.Tensor, parts: int) -> list[torch.Tensor]:
        b, s, _ = x.shape  # [B, S, parts*d] -> parts x [B, H, S, d/H]
        x = x.view(b, s, parts, self.heads, -1).permute(2, 0, 3, 1, 4)
        return list(x.unbind(0))

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None,
                key_pad: torch.Tensor | None = None, dropout: float = 0.0) -> torch.Tensor:
        """x [B, S, d] attends to itself (memory None) or to memory [B, L, d]; key_pad [B, keys] True = ignore."""
        d = x.shape[-1]
        if memory is not None and memory.shape[1] == 1 and key_pad is None and dropout == 0.0:
            # One memory token (pooled CLIP / MiniLM text): softmax over a single key is exactly 1, so
            # every query receives out_proj(v); skip the query projection and the attention itself.
            v = F.linear(memory, self.in_proj_weight[2 * d:], self.in_proj_bias[2 * d:])  # [B, 1, d]
            return self.out_proj(v).expand(x.shape)
        if memory is None:
            q, k, v = self._split(F.linear(x, self.in_proj_weight, self.in_proj_bias), 3)
        else:
            (q,) = self._split(F.linear(x, self.in_proj_weight[:d], self.in_proj_bias[:d]), 1)
            k, v = self._split(F.linear(memory, self.in_proj_weight[d:], self.in_proj_bias[d:]), 2)
        allowed = None if key_pad is None else ~key_pad[:, None, None, :]  # [B, 1, 1, keys] True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)  # [B, H, S, d/H]
        return self.out_proj(out.transpose(1, 2).reshape(x.shape))


class EncoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int):
        super().__init__()
        self.self_attn = Attention(d, heads)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)

    def feed_forward(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return F.dropout(self.linear2(F.dropout(F.gelu(self.linear1(x)), p, self.training)), p, self.training)

    def forward(self, x, pad=None):
        p = DROPOUT if self.training else 0.0
        x = self.norm1(x + F.dropout(self.self_attn(x, key_pad=pad, dropout=p), p, self.training))
        return self.norm2(x + self.feed_forward(x, p))


class DecoderLayer(EncoderLayer):
    def __init__(self, d: int, heads: int, ff: int):
        super().__init__(d, heads, ff)
        self.multihead_attn = Attention(d, heads)  # cross-attention to the text memory
        self.norm3 = nn.LayerNorm(d)

    def forward(self, x, pad=None, memory=None, memory_pad=None):
        p = DROPOUT if self.training else 0.0
        x = self.norm1(x + F.dropout(self.self_attn(x, key_pad=pad, dropout=p), p, self.training))
        x = self.norm2(x + F.dropout(self.multihead_attn(x, memory, memory_pad, dropout=p), p, self.training))
        return self.norm3(x + self.feed_forward(x, p))


class LayerStack(nn.Module):
    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class MDM(nn.Module):
    """Predicts the clean motion x0 from x_t. ``denoise`` is the fast batch-first entry point;
    ``forward(x, timesteps, y)`` mirrors the official signature (used by training and conformance)."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        d = args.latent_dim
        self.input_process = InputProcess(NFEATS + (d if args.arch == "gru" else 0), d)
        self.sequence_pos_encoder = PositionalEncoding(d, args.pos_embed_max_len)
        if args.arch == "trans_enc":
            self.seqTransEncoder = LayerStack([EncoderLayer(d, args.num_heads, args.ff_size) for _ in range(args.layers)])
        elif args.arch == "trans_dec":
            self.seqTransDecoder = LayerStack([DecoderLayer(d, args.num_heads, args.ff_size) for _ in range(args.layers)])
        else:
            self.gru = nn.GRU(d, d, num_layers=args.layers, batch_first=True)
        self.embed_timestep = TimestepEmbedder(d, self.sequence_pos_encoder)
        self.embed_text = nn.Linear(args.clip_dim, d)
        self.output_process = OutputProcess(d, NFEATS)

    @property
    def max_frames(self) -> int:
        return self.args.max_frames

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor,
                text_pad: torch.Tensor | None = None, drop_text: torch.Tensor | None = None,
                frame_pad: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, 263], timesteps [B] int64, text [B, L, clip_dim] (L = 1 for pooled encoders),
        text_pad [B, L] True = padding token, drop_text [B] bool (True = zero the condition: the
        unconditional pass), frame_pad [B, T] True = padded frame (used only if the model was trained
        with mask_frames). Returns x0 [B, T, 263]."""
        a = self.args
        b, n_frames, _ = x.shape
        time_emb = self.embed_timestep(timesteps)                      # [B, d]
        if drop_text is not None:
            text = text * (~drop_text).to(text.dtype)[:, None, None]   # official mask_cond: zeroed condition
        emb = self.embed_text(text) + time_emb[:, None]                # [B, L, d]
        if not a.mask_frames:
            frame_pad = None
        p = DROPOUT if self.training else 0.0

        if a.arch == "gru":
            x = torch.cat([x, emb.expand(b, n_frames, -1)], dim=-1)   # [B, T, 263 + d]
        h = self.input_process.poseEmbedding(x)                        # [B, T, d]

        if a.arch == "trans_enc":
            s = torch.cat([emb, h], dim=1)
            s = F.dropout(s + self.sequence_pos_encoder.rows(s.shape[1]), p, self.training)
            pad = _with_condition_slot(frame_pad)
            for layer in self.seqTransEncoder.layers:
                s = layer(s, pad)
            out = s[:, 1:]
        elif a.arch == "trans_dec":
            prepend = a.prepends_token_to_decoder
            if prepend:   # sentence_token: time + row 0 of the text (emb[:, 0]); emb_trans_dec: time only
                s = torch.cat([emb[:, :1] if a.sentence_token else time_emb[:, None], h], dim=1)
            else:
                s = h
            s = F.dropout(s + self.sequence_pos_encoder.rows(s.shape[1]), p, self.training)
            pad = _with_condition_slot(frame_pad) if prepend else frame_pad
            for layer in self.seqTransDecoder.layers:
                s = layer(s, pad, emb, text_pad)
            out = s[:, 1:] if prepend else s
        else:
            s = F.dropout(h + self.sequence_pos_encoder.rows(n_frames), p, self.training)
            # Official quirk: a batch_first GRU fed a [T, B, d] tensor recurs ACROSS THE SAMPLES of the
            # batch, independently per frame. Reproduced on purpose (gru checkpoints depend on it).
            out = self.gru(s.transpose(0, 1))[0].transpose(0, 1)
        return self.output_process.poseFinal(out)                      # [B, T, 263]

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, y: dict) -> torch.Tensor:
        """Official signature: x [B, 263, 1, T]; y = {'mask' [B,1,1,T] bool True = valid, 'text_embed':
        [1, B, D] or (tokens [L, B, 768], pad [B, L]), optional 'uncond'}. Returns x0 [B, 263, 1, T]."""
        b, n_frames = x.shape[0], x.shape[-1]
        embed = y["text_embed"]
        if isinstance(embed, (tuple, list)):
            text, text_pad = embed[0].permute(1, 0, 2), embed[1]
            if text_pad.shape[0] == 1 and b > 1:
                text_pad = text_pad.expand(b, -1)
        else:
            text, text_pad = embed.permute(1, 0, 2), None
        if y.get("uncond", False):
            drop = torch.ones(b, dtype=torch.bool, device=x.device)
        elif self.training and self.args.cond_mask_prob > 0:
            drop = torch.rand(b, device=x.device) < self.args.cond_mask_prob
        else:
            drop = None
        mask = y.get("mask")
        frame_pad = None if mask is None or mask.shape[-1] <= 1 else ~mask[..., :n_frames].reshape(b, n_frames)
        out = self.denoise(x[:, :, 0, :].transpose(1, 2), timesteps, text, text_pad, drop, frame_pad)
        return out.transpose(1, 2)[:, :, None, :]
