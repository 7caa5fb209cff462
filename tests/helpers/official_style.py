"""An independent reference of the official MDM forward pass, built from stock torch modules.

It follows the documented official computation (../shared/mdm_compat/README.md section 3) the way
the official code does it: sequence-first tensors, ``nn.TransformerEncoder`` / ``nn.TransformerDecoder``
/ ``nn.GRU(batch_first=True)``, one call per pass (CFG = two calls). It shares nothing with
``backend.mdm.network`` except the weights (loaded by state-dict key), so the tests and
``bench/diffusion.py`` can compare our fused implementation against it.
"""
from __future__ import annotations

import torch
from torch import nn

from backend.mdm.network import MDM, sinusoid_table


class OfficialStyleMDM(nn.Module):
    def __init__(self, ours: MDM):
        super().__init__()
        a = self.args = ours.args
        d = a.latent_dim
        self.poseEmbedding = nn.Linear(263 + (d if a.arch == "gru" else 0), d)
        self.time_embed = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.embed_text = nn.Linear(a.clip_dim, d)
        self.poseFinal = nn.Linear(d, 263)
        if a.arch == "trans_enc":
            layer = nn.TransformerEncoderLayer(d, a.num_heads, a.ff_size, 0.1, "gelu")
            self.backbone = nn.TransformerEncoder(layer, a.layers, enable_nested_tensor=False)
        elif a.arch == "trans_dec":
            layer = nn.TransformerDecoderLayer(d, a.num_heads, a.ff_size, 0.1, "gelu")
            self.backbone = nn.TransformerDecoder(layer, a.layers)
        else:
            self.backbone = nn.GRU(d, d, num_layers=a.layers, batch_first=True)
        self.register_buffer("pe", sinusoid_table(a.pos_embed_max_len, d))
        sd = ours.state_dict()
        renamed = {}
        for key, value in sd.items():
            for src, dst in (("input_process.poseEmbedding.", "poseEmbedding."),
                             ("embed_timestep.time_embed.", "time_embed."), ("embed_text.", "embed_text."),
                             ("output_process.poseFinal.", "poseFinal."), ("seqTransEncoder.", "backbone."),
                             ("seqTransDecoder.", "backbone."), ("gru.", "backbone.")):
                if key.startswith(src):
                    renamed[dst + key[len(src):]] = value
        self.load_state_dict(renamed, strict=False)
        self.to(next(ours.parameters()).device).eval().requires_grad_(False)

    def forward(self, x, timesteps, y):
        """x [B, 263, 1, T]; y = {'mask' [B,1,1,T], 'text_embed' [1,B,D] or (tokens [L,B,D], pad [B,L]), 'uncond'}."""
        a = self.args
        bs, _, _, n = x.shape
        time_emb = self.time_embed(self.pe[timesteps]).permute(1, 0, 2)           # [1, B, d]
        embed = y["text_embed"]
        tokens, text_pad = (embed[0], embed[1]) if isinstance(embed, tuple) else (embed, None)
        if y.get("uncond", False):
            tokens = torch.zeros_like(tokens)
        emb = self.embed_text(tokens) + time_emb                                  # [L, B, d]
        if a.arch == "gru":
            x = torch.cat([x, emb.repeat(n, 1, 1).permute(1, 2, 0).reshape(bs, -1, 1, n)], dim=1)
        h = self.poseEmbedding(x.permute(3, 0, 1, 2).reshape(n, bs, -1))        # [T, B, d]
        pad = None
        if a.mask_frames and y["mask"].shape[-1] > 1:
            pad = ~y["mask"][..., :n].reshape(bs, n)
            if a.arch == "trans_enc" or a.prepends_token_to_decoder:
                pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)
        if a.arch == "trans_enc":
            s = torch.cat([emb, h])
            out = self.backbone(s + self.pe[:len(s)], src_key_padding_mask=pad)[1:]
        elif a.arch == "trans_dec":
            # our extension sentence_token (args.json key; official checkpoints never have it): the first
            # token is the first text row + time, where emb_trans_dec puts time alone
            first = emb[:1] if a.sentence_token else time_emb if a.emb_trans_dec else None
            s = h if first is None else torch.cat([first, h])
            out = self.backbone(s + self.pe[:len(s)], memory=emb, tgt_key_padding_mask=pad,
                                memory_key_padding_mask=text_pad)
            out = out if first is None else out[1:]
        else:
            out = self.backbone(h + self.pe[:n])[0]
        return self.poseFinal(out).reshape(n, bs, 263, 1).permute(1, 2, 3, 0)


def official_cfg(net: OfficialStyleMDM, y: dict, scale: float):
    """The official ClassifierFreeSampleModel as a ``denoise_x0(x, t)``: two separate calls per step."""
    def denoise(x, t):
        tt = torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device) if isinstance(t, int) else t
        out = net(x, tt, y)
        out_uncond = net(x, tt, dict(y, uncond=True))
        return out_uncond + scale * (out - out_uncond)
    return denoise
