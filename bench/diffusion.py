"""Seconds per generated sample, ours vs an official-style run with the same weights.

    python bench/diffusion.py                 # trans_enc + trans_dec, 120/196 frames, batch 1/8, 50 steps
    python bench/diffusion.py --quick         # trans_enc, 120 frames, batch 1 only
    python bench/diffusion.py --arch trans_dec --frames 196 --batch 8 --repeats 3
    python bench/diffusion.py --per-step 20    # busy machine: fastest single steps x 50

Models: full size (latent 512, 8 layers, ff 1024, 4 heads, CLIP-width condition), random weights,
mask_frames like the 50-step release. The baseline runs the network the way the official code does:
stock ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` modules on sequence-first tensors, an
(all-valid) frame padding mask passed in, and two separate cond / uncond calls per step (the CFG
wrapper), under ``no_grad`` (tests/helpers/official_style.py). Both go through the same sampling
loop and noise, so the printed ``max|diff|`` of the final samples shows the speed-up keeps the
numerics conformant. The machine is shared: compare ratios measured in the same run only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.mdm.args import ModelArgs  # noqa: E402
from backend.mdm.denoiser import GuidedDenoiser  # noqa: E402
from backend.mdm.diffusion import build_schedule  # noqa: E402
from backend.mdm.network import MDM  # noqa: E402
from backend.mdm.sampler import SeededNoise, sample_loop  # noqa: E402
from tests.helpers.official_style import OfficialStyleMDM, official_cfg  # noqa: E402


def timed_run(denoise, shape, schedule, device, seed, grad_mode):
    to_array = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    with grad_mode():
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        x = sample_loop(denoise, shape, schedule, SeededNoise(seed), to_array)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, x.float().cpu()


def per_step_estimate(ours_denoise, official_fn, shape, device, steps, calls):
    """Noise-robust estimate for a busy machine: min over interleaved single denoiser calls x steps."""
    x = torch.randn(shape, device=device)
    best = {"ours": float("inf"), "official": float("inf")}
    outs = {}
    for _ in range(calls):
        for name, fn, mode in (("ours", ours_denoise, torch.inference_mode), ("official", official_fn, torch.no_grad)):
            with mode():
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                outs[name] = fn(x, steps // 2)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best[name] = min(best[name], time.perf_counter() - start)
    diff = (outs["ours"] - outs["official"]).abs().max().item()
    return best["ours"] * steps / shape[0], best["official"] * steps / shape[0], diff


def bench_config(arch: str, n_frames: int, batch: int, steps: int, device: torch.device, repeats: int,
                 per_step: int = 0):
    torch.manual_seed(0)
    args = ModelArgs(arch=arch, mask_frames=True, diffusion_steps=steps, pos_embed_max_len=5000)
    ours = MDM(args).eval().requires_grad_(False).to(device)
    official = OfficialStyleMDM(ours)
    schedule = build_schedule("cosine", steps)
    shape = (batch, 263, 1, n_frames)
    text = torch.randn(1, batch, 512, device=device)
    ours_denoise = GuidedDenoiser(ours, text.permute(1, 0, 2), None, 2.5)
    frames_valid = torch.ones(batch, 1, 1, n_frames, dtype=torch.bool, device=device)
    official_fn = official_cfg(official, {"mask": frames_valid, "text_embed": text}, 2.5)
    timed_run(ours_denoise, (batch, 263, 1, n_frames), build_schedule("cosine", steps, 2), device, 0,
              torch.inference_mode)  # warm-up (allocator, kernels)
    if per_step:
        return per_step_estimate(ours_denoise, official_fn, shape, device, steps, per_step)
    t_ours, t_official = [], []
    for r in range(repeats):
        t, x_ours = timed_run(ours_denoise, shape, schedule, device, r, torch.inference_mode)
        t_ours.append(t)
        t, x_official = timed_run(official_fn, shape, schedule, device, r, torch.no_grad)
        t_official.append(t)
    diff = (x_ours - x_official).abs().max().item()
    return min(t_ours) / batch, min(t_official) / batch, diff


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="trans_enc, 120 frames, batch 1 only")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2, help="runs per config, ours and baseline alternating "
                        "(the fastest counts)")
    parser.add_argument("--device", default="all", help="cpu, cuda or all (cuda only when available)")
    parser.add_argument("--per-step", type=int, default=0, metavar="K",
                        help="estimate from the fastest of K interleaved single denoiser calls x steps (robust on a "
                             "busy machine); max|diff| is then that of one x0 prediction")
    parser.add_argument("--arch", nargs="+", default=["trans_enc", "trans_dec"])
    parser.add_argument("--frames", nargs="+", type=int, default=[120, 196])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8])
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    configs = [("trans_enc", 120, 1)] if args.quick else \
        [(a, n, b) for a in args.arch for n in args.frames for b in args.batch]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.steps} steps, "
          f"CFG scale 2.5; seconds per sample, " + (f"per-step estimate (fastest of {args.per_step} calls x steps)"
                                                    if args.per_step else f"full loop (fastest of {args.repeats})"))
    print(f"{'device':6} {'arch':9} {'frames':>6} {'batch':>5} {'ours s':>8} {'official-style s':>16} "
          f"{'speed-up':>8} {'max|diff|':>10}")
    for device in devices:
        for arch, n_frames, batch in configs:
            ours, official, diff = bench_config(arch, n_frames, batch, args.steps, device, args.repeats,
                                                args.per_step)
            print(f"{device.type:6} {arch:9} {n_frames:6d} {batch:5d} {ours:8.3f} {official:16.3f} "
                  f"{official / ours:7.2f}x {diff:10.2e}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
