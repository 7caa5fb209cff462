"""``python -m backend.conformance DIR``: replay golden vectors of the official MDM code.

DIR is laid out like ../shared/mdm_compat (see its README): ``configs/<name>/`` (args.json +
checkpoint), ``forward_inputs.npz`` + ``forward_<name>.npz`` (cond / uncond / CFG outputs),
``sample_ddpm_<name>.npz`` and ``edit_inbetween_<name>.npz`` (whole sampling runs, replayed with their
recorded noise), ``diffusion_schedules.npz`` (``<schedule><N>_<array>`` groups) and
``hml_features[_<variant>].npz`` (joints -> features, features -> joints). Every case found is
checked; nothing is keyed on particular case names. One line per case, then ``N passed, M failed``;
the exit status is 1 when anything failed.
"""
from __future__ import annotations

import argparse
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOL_FORWARD, TOL_SAMPLE, TOL_SCHEDULE, TOL_JOINTS, TOL_FEATURES = 1e-5, 1e-4, 1e-12, 1e-5, 1e-4


@dataclass
class CaseResult:
    name: str
    error: float          # max abs error (schedules: max error relative to max(1, |value|))
    tolerance: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.error)) and self.error <= self.tolerance

    def line(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        err = "   n/a   " if not np.isfinite(self.error) else f"{self.error:9.2e}"
        return f"{status}  {self.name:<58} max|err| {err}  tol {self.tolerance:.0e}" + (f"  {self.note}" if self.note else "")


def _max_abs(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} != expected {b.shape}")
    return float(np.abs(a - b).max()) if a.size else 0.0


def _failure(name: str, tol: float, exc: BaseException) -> CaseResult:
    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    return CaseResult(name, float("nan"), tol, f"error: {message}")


# ---------------------------------------------------------------------------------------------
# model cases
# ---------------------------------------------------------------------------------------------
def _text_condition(data, kind: str, batch: int):
    """(text [B, L, D], pad [B, L] or None) from a golden file's cached embeddings."""
    import torch
    key = f"{kind}_text_embed"
    if key not in data.files:
        raise ValueError(f"the file has no '{key}' for this {kind} model")
    text = torch.from_numpy(data[key].astype(np.float32)).permute(1, 0, 2)        # [L, B, D] -> [B, L, D]
    pad = torch.from_numpy(data[f"{kind}_text_mask"]) if f"{kind}_text_mask" in data.files else None
    if pad is not None and pad.shape[0] == 1 and batch > 1:
        pad = pad.expand(batch, -1)
    return text, pad


def _frame_pad(mask: np.ndarray):
    """y['mask'] [B, 1, 1, T] (True = valid) -> frame padding [B, T] or None when all are valid."""
    import torch
    pad = ~mask.reshape(mask.shape[0], mask.shape[-1])
    return torch.from_numpy(pad) if pad.any() else None


def forward_cases(name: str, loaded, inputs, data) -> list[CaseResult]:
    import torch
    from .mdm.denoiser import GuidedDenoiser
    x = torch.from_numpy(inputs["x_t"].astype(np.float32))
    t = torch.from_numpy(data["timesteps"].astype(np.int64))
    text, pad = _text_condition(inputs, loaded.args.text_encoder_type, x.shape[0])
    frame_pad = _frame_pad(inputs["mask"])
    runs = {"out_cond": dict(scale=1.0), "out_uncond": dict(conditional=False),
            "out_cfg": dict(scale=float(data["cfg_scale"]) if "cfg_scale" in data.files else 2.5)}
    results = []
    for key, kwargs in runs.items():
        if key not in data.files:
            continue
        case = f"forward_{name}:{key}"
        try:
            with torch.inference_mode():
                out = GuidedDenoiser(loaded.model, text, pad, frame_pad=frame_pad, **kwargs)(x, t)
            results.append(CaseResult(case, _max_abs(out.numpy(), data[key]), TOL_FORWARD))
        except Exception as exc:
            results.append(_failure(case, TOL_FORWARD, exc))
    return results


def sampling_case(case: str, loaded, data, edit: bool) -> list[CaseResult]:
    import torch
    from .mdm.denoiser import GuidedDenoiser
    from .mdm.diffusion import build_schedule
    from .mdm.sampler import RecordedNoise, inbetween_mask, sample_loop, to_model_layout
    a = loaded.args
    shape = tuple(int(s) for s in data["shape"]) if "shape" in data.files else data["final_sample"].shape
    schedule = build_schedule(a.noise_schedule, a.diffusion_steps, len(data["timesteps"]), a.sigma_small)
    order = schedule.timestep_map[::-1]
    if not np.array_equal(order, data["timesteps"]):
        raise ValueError(f"recorded timesteps {data['timesteps'].tolist()} differ from ours {order.tolist()}")
    text, pad = _text_condition(data, a.text_encoder_type, shape[0])
    scale = float(data["scale"]) if "scale" in data.files else 1.0
    denoiser = GuidedDenoiser(loaded.model, text, pad, scale, frame_pad=_frame_pad(data["mask"]))
    known = dict(known=data["inpainted_motion"], known_mask=data["inpainting_mask"]) if edit else {}
    with torch.inference_mode():
        out = sample_loop(denoiser, shape, schedule, RecordedNoise(data["noise"]), torch.from_numpy, **known)
    results = [CaseResult(case, _max_abs(out.numpy(), data["final_sample"]), TOL_SAMPLE)]
    if edit and "prefix_end" in data.files:
        ours = to_model_layout(inbetween_mask(data["lengths"], shape[-1], float(data["prefix_end"]),
                                              float(data["suffix_start"])))
        results.append(CaseResult(f"{case}:inpainting_mask", float((ours != data["inpainting_mask"]).sum()), 0.0,
                                  "entries that differ"))
    return results


def model_cases(folder: Path) -> list[CaseResult]:
    from .mdm.checkpoint import load_model
    results: list[CaseResult] = []
    configs = sorted(p for p in (folder / "configs").iterdir() if p.is_dir()) if (folder / "configs").is_dir() else []
    inputs = np.load(folder / "forward_inputs.npz") if (folder / "forward_inputs.npz").is_file() else None
    loaded_by_name = {}
    for config in configs:
        try:
            loaded_by_name[config.name] = load_model(config)
        except Exception as exc:
            results.append(_failure(f"load configs/{config.name}", 0.0, exc))
    patterns = (("forward_", "forward"), ("sample_ddpm_", "sample"), ("edit_inbetween_", "edit"))
    for path in sorted(folder.glob("*.npz")):
        for prefix, kind in patterns:
            if not path.stem.startswith(prefix) or path.stem == "forward_inputs":
                continue
            name = path.stem[len(prefix):]
            tol = TOL_FORWARD if kind == "forward" else TOL_SAMPLE
            if name not in loaded_by_name:
                results.append(CaseResult(path.stem, float("nan"), tol, f"error: no loadable configs/{name}"))
                continue
            data = np.load(path)
            try:
                if kind == "forward":
                    if inputs is None:
                        raise ValueError("forward_inputs.npz is missing")
                    results += forward_cases(name, loaded_by_name[name], inputs, data)
                else:
                    results += sampling_case(path.stem, loaded_by_name[name], data, edit=kind == "edit")
            except Exception as exc:
                results.append(_failure(path.stem, tol, exc))
    return results


# ---------------------------------------------------------------------------------------------
# schedules and the feature codec
# ---------------------------------------------------------------------------------------------
def schedule_cases(folder: Path) -> list[CaseResult]:
    from .mdm.diffusion import build_schedule, raw_betas
    path = folder / "diffusion_schedules.npz"
    if not path.is_file():
        return []
    data = np.load(path)
    groups: dict[tuple[str, int], list[str]] = {}
    for key in data.files:
        m = re.match(r"^([a-z]+?)(\d+)_(\w+)$", key)
        groups.setdefault((m.group(1), int(m.group(2))) if m else ("?", 0), []).append(key)
    results = []
    for (kind, n), keys in sorted(groups.items()):
        case = f"diffusion_schedules:{kind}{n}"
        try:
            schedule = build_schedule(kind, n)
            worst, worst_key = 0.0, ""
            for key in keys:
                array = key[len(f"{kind}{n}_"):]
                ours = raw_betas(kind, n) if array == "raw_betas" else getattr(schedule, array, None)
                if ours is None:
                    raise ValueError(f"unknown array '{key}'")
                ref = np.asarray(data[key], np.float64)
                if ref.shape != ours.shape:
                    raise ValueError(f"'{key}' has shape {ref.shape}, ours {ours.shape}")
                err = float((np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))).max())
                if err >= worst:
                    worst, worst_key = err, array
            results.append(CaseResult(case, worst, TOL_SCHEDULE, f"{len(keys)} arrays, worst {worst_key}"))
        except Exception as exc:
            results.append(_failure(case, TOL_SCHEDULE, exc))
    return results


def feature_cases(folder: Path) -> list[CaseResult]:
    from .motion.hml_codec import VARIANTS, extract_features_from_joints, recover_joints_from_features
    base = folder / "hml_features.npz"
    inputs = np.load(base) if base.is_file() else None
    results = []
    for path in sorted(folder.glob("hml_features*.npz")):
        variant = path.stem[len("hml_features_"):] if path.stem != "hml_features" else "current"
        data = np.load(path)
        src = data if "joints_in" in data.files else inputs
        checks: list[tuple[str, Callable[[], float], float]] = []
        if variant in VARIANTS and src is not None:
            holder = {}

            def extracted(_src=src, _variant=variant, _holder=holder):
                if "out" not in _holder:
                    _holder["out"] = extract_features_from_joints(
                        _src["joints_in"], variant=_variant, tgt_offsets=_src["tgt_offsets"],
                        feet_thre=float(_src["feet_thre"]))
                return _holder["out"]
            checks.append(("features", lambda d=data, e=extracted: _max_abs(e().features, d["features"]), TOL_FEATURES))
            for key in ("global_positions", "local_positions", "l_velocity"):
                if key in data.files:
                    checks.append((key, lambda d=data, e=extracted, k=key: _max_abs(getattr(e(), k), d[k]), TOL_JOINTS))
        elif variant not in VARIANTS:
            results.append(CaseResult(path.stem, float("nan"), TOL_FEATURES, f"error: unknown variant '{variant}'"))
        if "recovered_joints" in data.files:
            checks.append(("recovered_joints", lambda d=data: _max_abs(
                recover_joints_from_features(d["features"].astype(np.float32)), d["recovered_joints"]), TOL_JOINTS))
        for key, fn, tol in checks:
            try:
                results.append(CaseResult(f"{path.stem}:{key}", fn(), tol))
            except Exception as exc:
                results.append(_failure(f"{path.stem}:{key}", tol, exc))
    return results


def run_conformance(folder: str | Path, echo: Callable[[str], None] | None = None) -> list[CaseResult]:
    folder = Path(folder)
    results: list[CaseResult] = []
    for group in (schedule_cases, feature_cases, model_cases):
        try:
            found = group(folder)
        except Exception as exc:  # a broken folder must still produce a FAIL line, not a traceback
            traceback.print_exc(file=sys.stderr)
            found = [_failure(group.__name__, 0.0, exc)]
        for result in found:
            if echo is not None:
                echo(result.line())
        results += found
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder laid out like ../shared/mdm_compat")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder", file=sys.stderr)
        return 2
    results = run_conformance(folder, echo=lambda line: print(line, flush=True))
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
