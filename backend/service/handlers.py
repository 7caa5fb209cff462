"""The job ops of the service: load_model, generate, edit, fit.

Each handler is ``handler(params, job) -> (arrays | None, info)``: ``params`` are already validated by
protocol.py, ``job`` reports progress and cancellation (server.Job), ``arrays`` become the result
.npz (format of docs/DESIGN.md) that the server writes. They run in-process too, which is how
bench/service_overhead.py measures what the protocol itself costs.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..errors import DeviceError, InputError

FPS = 20.0


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; "cuda" without a GPU -> DeviceError."""
    if device == "cpu":
        return "cpu"
    try:
        import torch
        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if not has_cuda:
        raise DeviceError("device 'cuda' was requested but no CUDA GPU is usable by this backend's torch; "
                          "choose 'auto' or 'cpu' in the preferences")
    return "cuda"


def load_generator(model_dir: str | None, device: str, text_encoder_dir: str | None):
    """The model cache's loader."""
    from ..mdm.pipeline import MotionGenerator
    return MotionGenerator.load(model_dir, device=device, text_encoder_dir=text_encoder_dir)


def warm_up(threads: int | None = None) -> None:
    """Import the heavy modules while the client is still typing its first prompt."""
    import torch
    if threads:
        torch.set_num_threads(threads)
    from ..mdm import pipeline  # noqa: F401  (transformers, the network)


def _model(params: dict, job):
    job.progress("load", 0, 1)
    model, cached = job.cache.get(params["model_dir"], resolve_device(params["device"]),
                                  params["text_encoder_dir"])
    job.progress("load", 1, 1)
    job.check_cancel()
    return model, cached


def _model_info(model, cached: bool) -> dict:
    return {"model_id": getattr(model, "model_id", None), "device": str(getattr(model, "device", "")),
            "cached_model": cached}


def _fit_arrays(joints: np.ndarray, lengths: np.ndarray, params: dict, job) -> dict:
    from ..fitting import fit_result_arrays
    job.progress("fit", 0, 1)
    arrays = fit_result_arrays(joints, lengths, smpl_path=params["smpl_path"],
                               fit_betas=params["fit_betas"], vertices=params["vertices"])
    job.progress("fit", 1, 1)
    job.check_cancel()
    return arrays


def _generation_arrays(result, extra_recipe: dict) -> dict:
    recipe = {**result.recipe, **extra_recipe}
    return {"joints": np.asarray(result.joints, np.float32),
            "features": np.asarray(result.features, np.float32),
            "lengths": np.asarray(result.lengths, np.int64),
            "fps": np.float32(FPS),
            "recipe": np.array(json.dumps(recipe))}


def load_model(params: dict, job):
    model, cached = _model(params, job)
    return None, _model_info(model, cached)


def generate(params: dict, job):
    t0 = time.perf_counter()
    model, cached = _model(params, job)
    t1 = time.perf_counter()
    result = model.generate(params["prompt"], params["seconds"], params["seed"],
                            num_samples=params["num_samples"], guidance=params["guidance"],
                            steps=params["steps"], progress=lambda s, n: job.progress("diffusion", s, n),
                            cancel=job.cancelled)
    t2 = time.perf_counter()
    arrays = _generation_arrays(result, {"fit": params["fit"]})
    if params["fit"]:
        arrays.update(_fit_arrays(arrays["joints"], arrays["lengths"], params, job))
    t3 = time.perf_counter()
    info = {**_model_info(model, cached), "recipe": json.loads(str(arrays["recipe"])),
            "shape": list(arrays["joints"].shape), "lengths": arrays["lengths"].tolist(),
            "timings": {"load": round(t1 - t0, 4), "diffusion": round(t2 - t1, 4), "fit": round(t3 - t2, 4)}}
    return arrays, info


def edit(params: dict, job):
    raise InputError("edit is not available in this backend yet")


def _load_joints(path: str) -> tuple[np.ndarray, np.ndarray]:
    """joints [K, T, 22, 3] float32 and lengths [K] from a .npy ([T,22,3] or [K,T,22,3]) or a .npz
    with a 'joints' array (and optionally 'lengths')."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if isinstance(data, np.lib.npyio.NpzFile):
                if "joints" not in data.files:
                    raise InputError(f"{path}: no 'joints' array inside (found {', '.join(data.files) or 'none'})")
                joints = data["joints"]
                lengths = data["lengths"] if "lengths" in data.files else None
            else:
                joints, lengths = data, None
    except InputError:
        raise
    except Exception as exc:  # not a numpy file, truncated, pickled objects
        raise InputError(f"{path}: cannot read joints ({type(exc).__name__}: {str(exc)[:120]}); "
                         "write them with numpy.save or numpy.savez") from None
    if isinstance(joints, np.lib.npyio.NpzFile):
        joints = None
    if joints is None or joints.dtype.kind not in "fiu":
        raise InputError(f"{path}: joints must be a numeric array")
    if joints.ndim == 3:
        joints = joints[None]
    if joints.ndim != 4 or joints.shape[2:] != (22, 3) or joints.shape[1] < 1:
        raise InputError(f"{path}: joints must have shape [T, 22, 3] or [K, T, 22, 3], got {list(joints.shape)}")
    joints = joints.astype(np.float32)
    if not np.isfinite(joints).all():
        raise InputError(f"{path}: joints contain NaN or infinite values")
    k, t = joints.shape[:2]
    if lengths is None:
        lengths = np.full(k, t, np.int64)
    lengths = np.asarray(lengths)
    if lengths.shape != (k,) or lengths.dtype.kind not in "iu" or (lengths < 1).any() or (lengths > t).any():
        raise InputError(f"{path}: 'lengths' must be {k} integers in 1..{t}")
    return joints, lengths.astype(np.int64)


def fit(params: dict, job):
    t0 = time.perf_counter()
    joints, lengths = _load_joints(params["input_path"])
    arrays = {"joints": joints, "lengths": lengths, "fps": np.float32(FPS)}
    arrays.update(_fit_arrays(joints, lengths, params, job))
    recipe = {"op": "fit", "source": Path(params["input_path"]).name, "smpl_path": params["smpl_path"],
              "fit_betas": params["fit_betas"]}
    arrays["recipe"] = np.array(json.dumps(recipe))
    return arrays, {"shape": list(joints.shape), "timings": {"fit": round(time.perf_counter() - t0, 4)}}


HANDLERS = {"load_model": load_model, "generate": generate, "edit": edit, "fit": fit}
