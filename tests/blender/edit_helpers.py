"""Helpers for the Edit Range tests: a keyed SMPL animation (HumanML3D 012314 fitted, or a
synthetic stand-in), a client that runs the real service handlers in this process (a tiny model,
no server start), and snapshots of an action's keys and of a rig's evaluated joints."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from addon_helpers import NAMES, evaluated_joints

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


class _Job:
    def __init__(self, generator, events):
        self.generator, self.events, self.cache = generator, events, self

    def get(self, *_):
        return self.generator, True

    def progress(self, phase, step, total):
        self.events.append({"event": "progress", "phase": phase, "step": step, "total": total})

    def cancelled(self):
        return False

    def check_cancel(self):
        pass


class LocalClient:
    """The client contract of docs/DESIGN.md, answered by the real service handlers in this process
    with one preloaded generator (whatever model_dir the request names). ``submit`` runs the job at
    once; ``poll`` hands out its events one by one, like a server would."""

    def __init__(self, generator, result_dir: Path):
        self.generator, self.result_dir = generator, Path(result_dir)
        self.alive, self.submitted, self.cancelled, self._queue = False, [], [], []
        self._ids = itertools.count(1)

    def connect(self, python_exe, backend_root, log_path=None):
        self.alive = True
        return self

    def _run(self, op, params) -> list:
        from backend.errors import BackendError
        from backend.service import handlers, protocol
        job_id, events = f"job{next(self._ids)}", []
        try:
            checked = protocol.validate_params(op, params)
            arrays, info = handlers.HANDLERS[op](checked, _Job(self.generator, events))
            path = self.result_dir / f"result-{job_id}.npz"
            np.savez(path, **arrays)
            events.append({"event": "result", "result_path": str(path), "info": info})
        except BackendError as exc:
            events.append({"event": "error", "code": exc.code, "message": exc.message})
        return [{**e, "job": job_id} for e in events]

    def submit(self, op, params):
        self.alive = True
        self.submitted.append((op, params))
        self._queue = self._run(op, params)
        return self._queue[0]["job"]

    def poll(self):
        return [self._queue.pop(0)] if self._queue else []

    def cancel(self, job):
        self.cancelled.append(job)
        self._queue = [{"event": "error", "job": job, "code": "cancelled", "message": "cancelled by the user"}]

    def request(self, op, params, progress=None, timeout=None):
        from addon_helpers import FakeClientError
        self.submit(op, params)
        for event in self._queue:
            if event["event"] == "progress" and progress:
                progress(event)
            elif event["event"] == "result":
                self._queue = []
                return event
            elif event["event"] == "error":
                self._queue = []
                raise FakeClientError(event["code"], event["message"])
        raise AssertionError("the local job ended without a result")

    def stop(self):
        self.alive = False
