"""Helpers for the Edit Range tests: a keyed SMPL animation (HumanML3D 012314 fitted, or a
synthetic stand-in), a tiny "narrow" model and one real backend server shared by a test module,
and snapshots of an action's keys and of a rig's evaluated joints."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from addon_helpers import backend_python, NAMES, evaluated_joints

REPO = Path(__file__).resolve().parents[2]

KEY_ATTRS = (("co", 2), ("handle_left", 2), ("handle_right", 2), ("interpolation", 1), ("handle_left_type", 1),
             ("handle_right_type", 1), ("easing", 1), ("type", 1))


def fcurves(action):
    if hasattr(action, "layers"):
        return [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags
                for fc in bag.fcurves]
    return list(action.fcurves)


def key_snapshot(action) -> dict:
    """{(data_path, index): {attribute: array [n, w]}} of every key of every F-curve."""
    out = {}
    for fc in fcurves(action):
        n, keys = len(fc.keyframe_points), {}
        for attr, width in KEY_ATTRS:
            buf = np.empty(n * width, np.float32 if width == 2 else np.int32)
            fc.keyframe_points.foreach_get(attr, buf)
            keys[attr] = buf.reshape(n, width)
        out[(fc.data_path, fc.array_index)] = keys
    return out


def keys_outside(snapshot: dict, lo: float, hi: float) -> dict:
    """The snapshot restricted to keys with frame < lo or > hi."""
    out = {}
    for channel, keys in snapshot.items():
        frames = keys["co"][:, 0]
        keep = (frames < lo) | (frames > hi)
        out[channel] = {attr: values[keep] for attr, values in keys.items()}
    return out


def same_keys(a: dict, b: dict) -> list:
    """Channels whose keys differ (bit-exact comparison)."""
    bad = [c for c in set(a) | set(b) if c not in a or c not in b]
    bad += [c for c in set(a) & set(b) if any(not np.array_equal(a[c][k], b[c][k]) for k in a[c])]
    return sorted(bad)


def joints_over(rig, frames, names=NAMES) -> np.ndarray:
    """[N, 22, 3] world joints of the rig at each frame."""
    return np.stack([evaluated_joints(rig, int(f), names) for f in frames])


def write_keyed_motion(path: Path, source: str, shared=None) -> Path:
    """A result .npz of a real or synthetic motion, fitted on the built-in skeleton (20 fps)."""
    from backend.fitting.fitter import fit_joints
    from backend.fitting.rest_skeleton import builtin_rest_joints
    from backend.motion.skeleton import SMPL_PARENTS
    from backend.motion.smpl_skeleton import posed_joints
    if source == "012314":
        joints = np.load(shared / "humanml3d/new_joints/012314.npy").astype(np.float64)
    else:
        from tests.helpers.synthetic_motion import random_motion
        poses, trans = random_motion(np.random.default_rng(11), frames=170, keys=12)
        joints = posed_joints(poses, trans, builtin_rest_joints())[:, :22]
    fit = fit_joints(joints)
    np.savez(path, poses=fit.poses[None].astype(np.float32), trans=fit.trans[None].astype(np.float32),
             rest_joints=fit.rest_joints.astype(np.float32), parents=SMPL_PARENTS, lengths=np.array([len(joints)]),
             fps=np.float32(20.0), joints_fitted=fit.joints_fitted[None].astype(np.float32),
             recipe=np.array(json.dumps({"prompt": source, "seed": 0})))
    return path


def write_narrow_model(python: str, folder: Path, steps: int = 6) -> Path:
    """A tiny random MDM (+ tiny CLIP) whose motion space is narrow: Mean/Std x 0.05 stored in the
    model folder, so what it generates stays near the dataset's mean pose and changes smoothly.
    Written by the backend interpreter (it needs torch)."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; "
            "from backend.motion.hml_codec import MotionNormalizer as N; "
            "from tests.helpers.tiny_models import write_tiny_model_dir, write_tiny_clip; s = N.from_dir(); "
            "f = Path(sys.argv[2]); write_tiny_model_dir(f / 'model', diffusion_steps=int(sys.argv[3]), "
            "mean_std=(s.mean, s.std * 0.05)); write_tiny_clip(f / 'clip')")
    subprocess.run([python, "-c", code, str(REPO), str(folder), str(steps)], check=True, timeout=300,
                   capture_output=True)
    return folder


class SharedClient:
    """One real backend server for many tests: the add-on's controller stops its client between
    tests, which this wrapper ignores (``close`` really stops it). Records what was submitted and
    the events polled."""

    def __init__(self, client):
        self.client, self.submitted, self.polled = client, [], []

    def poll(self):
        events = self.client.poll()
        self.polled += events
        return events

    def connect(self, python_exe, backend_root, log_path=None):
        return self

    def submit(self, op, params):
        self.submitted.append((op, params))
        return self.client.submit(op, params)

    def request(self, op, params, progress=None, timeout=None):
        self.submitted.append((op, params))
        return self.client.request(op, params, progress=progress, timeout=timeout)

    def __getattr__(self, name):  # cancel, alive, busy, pid, log_tail, ...
        return getattr(self.client, name)

    def stop(self):
        pass

    def close(self):
        self.client.stop()
