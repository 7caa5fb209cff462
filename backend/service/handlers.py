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

from ..errors import InputError
from ..motion.hml_codec import FPS
from ..motion.skeleton import FEATURE_DIM, FOOT_CONTACT


def resolve_device(device: str, model_dir: str | None = None) -> str:
    """"auto" -> "cuda" or "cpu" for the runtime that serves ``model_dir`` (the cache key must name the
    real device); DeviceError if unusable."""
    from ..runtimes import resolve_device as runtime_device
    return runtime_device(device, model_dir)


def load_generator(model_dir: str | None, device: str, text_encoder_dir: str | None):
    """The model cache's loader: torch for a checkpoint folder, ONNX Runtime for an exported one."""
    from ..runtimes import load_generator as load
    return load(model_dir, device, text_encoder_dir)


def warm_up(threads: int | None = None) -> None:
    """Import the heavy modules while the client is still typing its first prompt."""
    from ..runtimes import torch_installed
    if not torch_installed():  # an ONNX Runtime environment
        from ..onnx_runtime import generator  # noqa: F401
        return
    import torch
    if threads:
        torch.set_num_threads(threads)
    from ..mdm import pipeline  # noqa: F401  (transformers, the network)


def _model(params: dict, job):
    job.progress("load", 0, 1)
    model, cached = job.cache.get(params["model_dir"], resolve_device(params["device"], params["model_dir"]),
                                  params["text_encoder_dir"])
    job.progress("load", 1, 1)
    job.check_cancel()
    return model, cached


def _model_info(model, cached: bool) -> dict:
    return {"model_id": getattr(model, "model_id", None), "device": str(getattr(model, "device", "")),
            "cached_model": cached}


def _fit_arrays(joints: np.ndarray, lengths: np.ndarray, params: dict, job, rest_joints=None,
                foot_contacts=None) -> dict:
    from ..fitting.results import fit_result_arrays
    job.progress("fit", 0, 1)
    arrays = fit_result_arrays(joints, lengths, smpl_path=params["smpl_path"], fit_betas=params["fit_betas"],
                               vertices=params["vertices"], rest_joints=rest_joints, foot_contacts=foot_contacts)
    job.progress("fit", 1, 1)
    job.check_cancel()
    return arrays


def load_model(params: dict, job):
    model, cached = _model(params, job)
    return None, _model_info(model, cached)


def _finish(result, params: dict, job, model, cached: bool, t0: float, t1: float, t2: float, rest_joints=None):
    """GenerationResult -> (result arrays incl. the fit when asked, info)."""
    result.recipe["fit"] = params["fit"]
    result.recipe["foot_lock"] = bool(params["fit"] and params["foot_lock"])
    arrays = result.to_arrays()
    if params["fit"]:
        contacts = arrays["features"][..., FOOT_CONTACT] if params["foot_lock"] else None
        arrays.update(_fit_arrays(arrays["joints"], arrays["lengths"], params, job, rest_joints, contacts))
    t3 = time.perf_counter()
    info = {**_model_info(model, cached), "recipe": result.recipe, "shape": list(arrays["joints"].shape),
            "lengths": arrays["lengths"].tolist(),
            "timings": {"load": round(t1 - t0, 4), "diffusion": round(t2 - t1, 4), "fit": round(t3 - t2, 4)}}
    return arrays, info


def _diffusion_progress(job):
    return lambda step, total: job.progress("diffusion", step, total)


def generate(params: dict, job):
    t0 = time.perf_counter()
    model, cached = _model(params, job)
    t1 = time.perf_counter()
    upper = params["upper_prompt"].strip()
    passes = 2 if upper else 1     # the upper body is a second diffusion pass

    def progress(done_passes):
        return lambda step, total: job.progress("diffusion", done_passes * total + step, passes * total)

    sampling = dict(guidance=params["guidance"], steps=params["steps"], cancel=job.cancelled)
    result = model.generate(params["prompt"], params["seconds"], params["seed"], num_samples=params["num_samples"],
                            progress=progress(0), **sampling)
    if upper:
        from ..editing import with_upper_body
        result = with_upper_body(model, result, upper, progress=progress(1), **sampling)
    return _finish(result, params, job, model, cached, t0, t1, time.perf_counter())


def _load_features(arrays: dict, path: str) -> np.ndarray:
    """Known motion [K, T, 263] (de-normalised HumanML3D features at 20 fps)."""
    array = arrays["features"]
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[2] != FEATURE_DIM or 0 in array.shape:
        raise InputError(f"{path}: features must have shape [T, {FEATURE_DIM}] or [K, T, {FEATURE_DIM}], "
                         f"got {list(array.shape)}")
    return array


def _load_rig_motion(arrays: dict, path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """A rig's animation: joints [W, 22, 3] (y-up metres, 20 fps, the rig's frame) and optionally
    the rig's rest_joints [24, 3] to fit on."""
    joints, rest = arrays["joints"], arrays.get("rest_joints")
    if joints.ndim != 3 or joints.shape[1:] != (22, 3) or len(joints) < 2:
        raise InputError(f"{path}: joints must have shape [W >= 2, 22, 3] (one motion at 20 fps), "
                         f"got {list(joints.shape)}")
    if rest is not None and rest.shape != (24, 3):
        raise InputError(f"{path}: rest_joints must have shape [24, 3], got {list(rest.shape)}")
    return joints.astype(np.float64), None if rest is None else rest.astype(np.float64)


def edit(params: dict, job):
    """Inpainting on the user's motion: frames [edit_start, edit_end) of the input are regenerated
    (all of them, or only the upper body), every other value is kept exactly.

    The input is either HumanML3D features (kept and returned in the canonical frame), or a rig's
    joints without features (a .npz with 'joints' [W, 22, 3] and optionally 'rest_joints'): those
    are encoded here and the result's joints (and fit, on rest_joints) are re-anchored into the
    rig's own frame (backend/editing.py)."""
    from .. import editing
    path = params["input_path"]
    arrays = _load_arrays(path, "features", ("joints", "rest_joints"), alternative="joints")
    start, end = params["edit_start"], params["edit_end"]
    rig_motion = "features" not in arrays
    if rig_motion:
        joints, rest = _load_rig_motion(arrays, path)
        if rest is not None and params["smpl_path"] is not None:
            raise InputError(f"{path} holds the rig's rest_joints, which the fit uses: leave 'smpl_path' empty")
        n_frames = len(joints)
    else:
        features, rest = _load_features(arrays, path), None
        n_frames = features.shape[1]
    if end > n_frames:
        raise InputError(f"edit range {start}..{end} goes past the {n_frames} frames of {path}")
    if not rig_motion:
        if features.shape[0] == 1:
            features = np.repeat(features, params["num_samples"], axis=0)
        elif features.shape[0] != params["num_samples"]:
            raise InputError(f"{path} holds {features.shape[0]} motions but num_samples is "
                             f"{params['num_samples']}; give one motion or exactly num_samples")
    t0 = time.perf_counter()
    model, cached = _model(params, job)
    t1 = time.perf_counter()
    sampling = dict(seed=params["seed"], guidance=params["guidance"], steps=params["steps"],
                    progress=_diffusion_progress(job), cancel=job.cancelled)
    if rig_motion:
        result = editing.edit_motion(model, joints, params["mode"], start, end, params["prompt"],
                                     num_samples=params["num_samples"], **sampling)
    else:
        known = model.normalizer.normalize(features).astype(np.float32)
        mask = editing.edit_mask(params["mode"], start, end, n_frames, features.shape[0])
        result = model.edit(known, mask, params["prompt"], **sampling)
        result.recipe.update(mode=params["mode"], edit_start=start, edit_end=end)
    return _finish(result, params, job, model, cached, t0, t1, time.perf_counter(), rest)


def _load_arrays(path: str, main: str, optional: tuple[str, ...] = (),
                 alternative: str | None = None) -> dict[str, np.ndarray]:
    """The array of a .npy (as ``main``), or ``main`` (or, without it, ``alternative``) plus any
    ``optional`` arrays of a .npz; float32 and finite, with clear errors for anything else."""
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                if main not in data.files and (alternative is None or alternative not in data.files):
                    wanted = f"'{main}'" + (f" or '{alternative}'" if alternative else "")
                    raise InputError(f"{path}: no {wanted} array inside (found {', '.join(data.files) or 'nothing'})")
                arrays = {key: data[key] for key in (main, *optional) if key in data.files}
        else:
            arrays = {main: data}
    except InputError:
        raise
    except Exception as exc:  # not a numpy file, truncated, pickled objects
        raise InputError(f"{path}: cannot read '{main}' ({type(exc).__name__}: {str(exc)[:120]}); "
                         "write it with numpy.save or numpy.savez") from None
    for key, array in arrays.items():
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
            raise InputError(f"{path}: '{key}' must be a numeric array")
        arrays[key] = array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise InputError(f"{path}: '{key}' contains NaN or infinite values")
    return arrays


def _load_joints(path: str) -> tuple[np.ndarray, np.ndarray]:
    """joints [K, T, 22, 3] and lengths [K] from a .npy ([T, 22, 3] or [K, T, 22, 3]) or a .npz with
    'joints' (and optionally 'lengths', e.g. an earlier result)."""
    arrays = _load_arrays(path, "joints", ("lengths",))
    joints = arrays["joints"]
    if joints.ndim == 3:
        joints = joints[None]
    if joints.ndim != 4 or joints.shape[2:] != (22, 3) or 0 in joints.shape:
        raise InputError(f"{path}: joints must have shape [T, 22, 3] or [K, T, 22, 3], got {list(joints.shape)}")
    k, t = joints.shape[:2]
    lengths = arrays.get("lengths", np.full(k, t))
    if lengths.shape != (k,) or (lengths != np.round(lengths)).any() or (lengths < 1).any() or (lengths > t).any():
        raise InputError(f"{path}: 'lengths' must be {k} whole numbers in 1..{t}")
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
