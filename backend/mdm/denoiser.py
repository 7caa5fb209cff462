"""The torch ``denoise_x0(x_t, t)`` callable the sampler drives: network + classifier-free guidance.

Guidance follows the official ``ClassifierFreeSampleModel``: ``uncond + scale * (cond - uncond)`` in
float32; which passes run (and whether as one batch) is ``sampler.plan_guidance``.
"""
from __future__ import annotations

import torch

from .network import MDM
from .sampler import guided, plan_guidance


class GuidedDenoiser:
    def __init__(self, model: MDM, text: torch.Tensor, text_pad: torch.Tensor | None = None,
                 scale: float = 2.5, conditional: bool = True, frame_pad: torch.Tensor | None = None):
        """text [B, L, clip_dim]; text_pad [B, L] True = padding token; frame_pad [B, T] True = padded
        frame (pass None when every frame is valid: no attention mask is built then)."""
        self.model, self.batch = model, text.shape[0]
        self.plan = plan_guidance(scale, conditional, model.args.arch)
        self.scale, self.passes, self.batched = self.plan.scale, self.plan.passes, self.plan.batched
        b, device = self.batch, text.device
        if self.batched:
            double = lambda a: None if a is None else torch.cat([a, a])  # noqa: E731
            self.text, self.text_pad, self.frame_pad = double(text), double(text_pad), double(frame_pad)
            self.drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(device)
        else:
            self.text, self.text_pad, self.frame_pad = text, text_pad, frame_pad
            self.drop = torch.ones(b, dtype=torch.bool, device=device)
        self._timesteps: dict[int, torch.Tensor] = {}

    def _t(self, t: int | torch.Tensor, n: int) -> torch.Tensor:
        if isinstance(t, torch.Tensor):  # per-sample timesteps [B]
            return torch.cat([t, t]) if n == 2 * self.batch else t
        if (t, n) not in self._timesteps:
            self._timesteps[(t, n)] = torch.full((n,), t, dtype=torch.int64, device=self.text.device)
        return self._timesteps[(t, n)]

    def __call__(self, x_t: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """x_t [B, 263, 1, T], t (one step for all, or [B] int64) -> guided x0 prediction [B, 263, 1, T]."""
        x = x_t[:, :, 0, :].transpose(1, 2)                             # [B, T, 263]
        b, m = self.batch, self.model
        if self.batched:
            out = m.denoise(torch.cat([x, x]), self._t(t, 2 * b), self.text, self.text_pad, self.drop, self.frame_pad)
            cond, uncond = out[:b], out[b:]
            x0 = guided(cond, uncond, self.scale)
        else:
            runs = {p: m.denoise(x, self._t(t, b), self.text, self.text_pad, self.drop if p == "uncond" else None,
                                 self.frame_pad) for p in self.passes}
            if len(runs) == 1:
                x0 = next(iter(runs.values()))
            else:
                x0 = guided(runs["cond"], runs["uncond"], self.scale)
        return x0.transpose(1, 2)[:, :, None, :]
