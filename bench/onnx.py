"""ONNX Runtime vs torch: seconds per sample, and export time against the number of diffusion steps.

    python bench/onnx.py                # export at 10/50/1000 steps; trans_enc 120 frames batch 1 + 196 batch 4
    python bench/onnx.py --quick        # export at 10 and 1000 steps; 120 frames, batch 1
    python bench/onnx.py --arch trans_dec --frames 196 --batch 1 --repeats 3 --device all

Model: full size (latent 512, 8 layers, ff 1024, 4 heads), random weights, mask_frames, CLIP-width
condition; the text encoder is the tests' tiny CLIP (text encoding runs once per prompt and is not
what is measured). Part 1 exports the SAME weights with diffusion_steps 10, 50 and 1000: export
time, graph node count and file size must be flat, because one denoiser call is exported, not the
loop. Part 2 runs ``generate`` (same prompt, seed, 50 steps, CFG 2.5) through the torch
``MotionGenerator`` and the ``OnnxMotionGenerator`` of that export, alternating, fastest of
``--repeats``; ``max|diff|`` compares the two normalised samples (same noise). GPU rows (torch CUDA vs
the CUDA execution provider of onnxruntime-gpu) appear only where both are available.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

# This file's folder must not be on the path: its name would shadow the onnx package.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402

from backend.mdm.pipeline import MotionGenerator  # noqa: E402
from backend.onnx_runtime.export import export_model  # noqa: E402
from backend.onnx_runtime.generator import OnnxMotionGenerator  # noqa: E402
from backend.onnx_runtime.manifest import read_manifest  # noqa: E402
from tests.helpers.tiny_models import write_tiny_clip, write_tiny_model_dir  # noqa: E402

PROMPT = "a person walks forward and then turns left"


def full_size_folders(root: Path, arch: str, steps_list: list[int]) -> dict[int, Path]:
    """One model folder per step count, all holding the same full-size weights."""
    first = write_tiny_model_dir(root / f"{arch}_{steps_list[0]}", arch=arch, latent_dim=512, layers=8,
                                 diffusion_steps=steps_list[0], pos_embed_max_len=max(steps_list), mask_frames=True,
                                 emb_trans_dec=arch == "trans_dec")
    folders = {steps_list[0]: first}
    for steps in steps_list[1:]:  # the same weights; only args.json's diffusion_steps differs
        folders[steps] = shutil.copytree(first, root / f"{arch}_{steps}")
        raw = json.loads((folders[steps] / "args.json").read_text())
        (folders[steps] / "args.json").write_text(json.dumps({**raw, "diffusion_steps": steps}))
    return folders


def bench_export(folders: dict[int, Path], clip: Path, root: Path) -> dict[int, Path]:
    print(f"\nexport (same full-size {'/'.join(str(s) for s in folders)}-step weights; one denoiser call each)")
    print(f"{'diffusion steps':>15} {'denoiser s':>10} {'text enc. s':>11} {'total s':>8} {'nodes':>6} {'MB':>6}")
    exports = {}
    for steps, folder in folders.items():
        start = time.perf_counter()
        out = export_model(folder, root / f"export_{steps}", clip)
        total = time.perf_counter() - start
        manifest = read_manifest(out)
        seconds = manifest.raw["exported_with"]["export_seconds"]
        graph = onnx.load(str(out / manifest.denoiser.file), load_external_data=False)
        size = sum(p.stat().st_size for p in out.glob("denoiser.onnx*")) / 2**20
        print(f"{steps:15d} {seconds['denoiser']:10.1f} {seconds['text_encoder']:11.1f} {total:8.1f} "
              f"{len(graph.graph.node):6d} {size:6.1f}", flush=True)
        exports[steps] = out
    return exports


def timed(gen, seconds: float, batch: int, seed: int):
    start = time.perf_counter()
    result = gen.generate(PROMPT, seconds=seconds, seed=seed, num_samples=batch, steps=50)
    return time.perf_counter() - start, gen.normalizer.normalize(result.features)


def bench_speed(model_dir: Path, export_dir: Path, clip: Path, configs, devices, repeats: int) -> None:
    print(f"\nseconds per sample, 50 steps, CFG 2.5 (fastest of {repeats}); torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__}")
    print(f"{'device':6} {'frames':>6} {'batch':>5} {'torch s':>8} {'onnx s':>8} {'torch/onnx':>10} {'max|diff|':>10}")
    for device in devices:
        torch_gen = MotionGenerator.load(model_dir, device, clip)
        onnx_gen = OnnxMotionGenerator.load(export_dir, device)
        for gen in (torch_gen, onnx_gen):  # warm-up: allocations, kernel selection, text encoding
            gen.generate(PROMPT, seconds=1.0, seed=0, steps=2)
        for frames, batch in configs:
            t_torch, t_onnx = [], []
            for r in range(repeats):
                t, a = timed(torch_gen, frames / 20, batch, r)
                t_torch.append(t)
                t, b = timed(onnx_gen, frames / 20, batch, r)
                t_onnx.append(t)
            ours, ref = min(t_onnx) / batch, min(t_torch) / batch
            print(f"{device:6} {frames:6d} {batch:5d} {ref:8.3f} {ours:8.3f} {ref / ours:9.2f}x "
                  f"{np.abs(a - b).max():10.2e}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="export at 10 and 1000 steps; 120 frames, batch 1")
    parser.add_argument("--arch", default="trans_enc", choices=("trans_enc", "trans_dec"))
    parser.add_argument("--export-steps", nargs="+", type=int, default=[10, 50, 1000])
    parser.add_argument("--frames", nargs="+", type=int, default=[120, 196])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="all",
                        help="cpu, cuda or all (cuda only when torch and onnxruntime have it)")
    args = parser.parse_args(argv)
    steps_list = [10, 1000] if args.quick else sorted(set(args.export_steps) | {50})
    configs = [(120, 1)] if args.quick else list(zip(args.frames, args.batch))
    devices = ["cpu"] if args.device in ("all", "cpu") else []
    if args.device in ("all", "cuda"):
        if torch.cuda.is_available() and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            devices.append("cuda")
        else:
            print("cuda: not measured (needs torch with CUDA and onnxruntime-gpu)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = write_tiny_clip(root / "clip")
        folders = full_size_folders(root, args.arch, steps_list)
        exports = bench_export(folders, clip, root)
        speed_steps = 50 if 50 in folders else max(folders)
        bench_speed(folders[speed_steps], exports[speed_steps], clip, configs, devices, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
