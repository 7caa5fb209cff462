"""Helpers for the add-on tests: a SMPL-like T-pose skeleton (HumanML3D bone lengths, no SMPL data),
smooth random poses and the result .npz the backend would write for them, an SMPL-sized stand-in
mesh with an LBS reference, the evaluated-joint / reference-joint comparison, and a fake backend
client that speaks the client contract of docs/DESIGN.md."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

import numpy as np

from backend.motion import quaternion as Q
from backend.motion.quaternion import axis_angle_to_matrix
from backend.motion.resample import resampled_length, source_positions
from backend.motion.skeleton import HML_TARGET_BONE_LENGTHS, SMPL_PARENTS
from backend.motion.smpl_skeleton import forward_kinematics, posed_joints

# T-pose bone directions (y-up, facing +z, left = +x) of SMPL joints 1..23 from their parents.
_TPOSE_DIRS = {1: (1, -0.3, 0), 2: (-1, -0.3, 0), 3: (0, 1, 0), 4: (0, -1, 0), 5: (0, -1, 0), 6: (0, 1, 0),
               7: (0, -1, 0), 8: (0, -1, 0), 9: (0, 1, 0), 10: (0, -0.5, 1), 11: (0, -0.5, 1), 12: (0, 1, 0),
               13: (1, 0.5, 0), 14: (-1, 0.5, 0), 15: (0, 1, 0.2), 16: (1, 0, 0), 17: (-1, 0, 0),
               18: (1, 0, 0), 19: (-1, 0, 0), 20: (1, 0, 0), 21: (-1, 0, 0), 22: (1, 0, 0), 23: (-1, 0, 0)}


Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # (x, y, z) -> (x, -z, y)
NAMES = ("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
         "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
         "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")


def evaluated_joints(obj, frame: int, bone_names=NAMES) -> np.ndarray:
    """World positions [22, 3] of the bone heads after frame_set (what the viewport shows)."""
    import bpy
    bpy.context.scene.frame_set(frame)
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mw = np.array(ev.matrix_world)
    heads = np.array([ev.pose.bones[name].head[:] for name in bone_names])
    return heads @ mw[:3, :3].T + mw[:3, 3]


def reference_joints(result_path, k: int, scene_fps: float) -> np.ndarray:
    """The fitted joints at each scene frame's time, independently of the add-on: exact frames
    from joints_fitted, in-between ones by FK of slerped SMPL rotations (z-up, world)."""
    data = np.load(result_path)
    n = int(data["lengths"][k])
    poses, trans, rest = data["poses"][k, :n].astype(float), data["trans"][k, :n].astype(float), data["rest_joints"]
    pos = source_positions(resampled_length(n, 20.0, scene_fps), 20.0, scene_fps)
    lo = np.floor(pos + 1e-9).astype(int)
    hi, frac = np.minimum(lo + 1, n - 1), pos - lo
    q = Q.axis_angle_to_quat(poses)
    q_t = Q.slerp(q[lo], q[hi], frac[:, None, None])
    t_t = trans[lo] * (1 - frac[:, None]) + trans[hi] * frac[:, None]
    joints = posed_joints(Q.quat_to_axis_angle(q_t), t_t, rest.astype(float))
    exact = np.isclose(frac, 0.0)
    joints[exact] = data["joints_fitted"][k, lo[exact]]
    return joints[:, :22] @ Z_UP.T


def tpose_rest_joints(pelvis_height: float = 0.93) -> np.ndarray:
    """[24, 3] an SMPL-T-pose-like rest skeleton, canonical frame."""
    lengths = np.concatenate([HML_TARGET_BONE_LENGTHS, [0.08, 0.08]])
    rest = np.zeros((24, 3))
    rest[0] = (0.0, pelvis_height, 0.0)
    for j in range(1, 24):
        d = np.asarray(_TPOSE_DIRS[j], float)
        rest[j] = rest[SMPL_PARENTS[j]] + lengths[j] * d / np.linalg.norm(d)
    return rest


def smooth_motion(num_frames: int, seed: int, amplitude: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """poses [T, 24, 3] and trans [T, 3]: sums of slow sines (at 20 fps), large enough to flip
    quaternion hemispheres on the root (a full turn) and to move 2 m."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None, None] / 20.0
    freq, phase = rng.uniform(0.2, 1.0, (1, 24, 3)), rng.uniform(0, 2 * np.pi, (1, 24, 3))
    poses = amplitude * rng.uniform(0.3, 1.0, (1, 24, 3)) * np.sin(2 * np.pi * freq * t + phase)
    poses[:, 0] = 0.0
    poses[:, 0, 1] = np.linspace(0.0, 2.2 * np.pi, num_frames)     # turn about the up axis
    poses[:, 0, 0] = 0.3 * np.sin(np.arange(num_frames) / 20.0)
    trans = np.stack([np.linspace(0, 2.0, num_frames), 0.05 * np.sin(np.arange(num_frames) / 3.0),
                      np.linspace(0, -1.0, num_frames)], axis=-1)
    return poses, trans


def synthetic_body(rest: np.ndarray, num_vertices: int = 6890, seed: int = 0):
    """An SMPL-sized stand-in mesh (no SMPL data): vertices scattered along the bones, each weighted
    between its bone's joint and that joint's parent, random triangles. Returns (v [V, 3], faces, weights [V, 24])."""
    rng = np.random.default_rng(seed)
    joint = rng.integers(1, 24, num_vertices)
    parent = SMPL_PARENTS[joint]
    along = rng.uniform(0, 1, num_vertices)[:, None]
    v = rest[parent] * (1 - along) + rest[joint] * along + rng.normal(0, 0.03, (num_vertices, 3))
    weights = np.zeros((num_vertices, 24))
    weights[np.arange(num_vertices), joint] = along[:, 0]
    weights[np.arange(num_vertices), parent] += 1 - along[:, 0]
    faces = np.stack([np.arange(num_vertices - 2), np.arange(1, num_vertices - 1), np.arange(2, num_vertices)], -1)
    return v, faces[: 2 * num_vertices - 4 : 1][: num_vertices - 2], weights


def write_synthetic_smpl(path: Path, rest: np.ndarray, num_vertices: int = 2000):
    """An .npz with SMPL's keys and shapes but made-up values (the backend's loader reads it): the
    first 24 vertices sit on ``rest`` and J_regressor picks them. Returns (v, faces, weights)."""
    v, faces, weights = synthetic_body(rest, num_vertices=num_vertices)
    v[:24] = rest
    regressor = np.zeros((24, len(v)))
    regressor[np.arange(24), np.arange(24)] = 1.0
    kintree = np.stack([np.where(SMPL_PARENTS < 0, 4294967295, SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, v_template=v, f=faces, weights=weights, J_regressor=regressor,
             shapedirs=np.zeros((len(v), 3, 10)), posedirs=np.zeros((len(v), 3, 207)), kintree_table=kintree)
    return v, faces, weights


def lbs(v_rest: np.ndarray, weights: np.ndarray, poses: np.ndarray, trans: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Linear blend skinning reference: [T, V, 3] canonical frame."""
    joints, rot = forward_kinematics(axis_angle_to_matrix(poses), trans, rest)          # [T, 24, 3], [T, 24, 3, 3]
    local = v_rest[None, :, None, :] - rest[None, None]                                  # [1, V, 24, 3]
    per_joint = np.einsum("tjab,tvjb->tvja", rot, np.broadcast_to(local, (len(poses),) + local.shape[1:])) + joints[:, None]
    return np.einsum("vj,tvja->tva", weights, per_joint)


def write_result(path: Path, num_samples: int = 2, num_frames: int = 60, lengths=None,
                 rest: np.ndarray | None = None, seed: int = 0, prompt: str = "a person waves",
                 body=None, **recipe_extra) -> Path:
    rest = tpose_rest_joints() if rest is None else rest
    motions = [smooth_motion(num_frames, seed + k) for k in range(num_samples)]
    poses = np.stack([m[0] for m in motions]).astype(np.float32)
    trans = np.stack([m[1] for m in motions]).astype(np.float32)
    joints_fitted = posed_joints(poses.astype(np.float64), trans.astype(np.float64), rest).astype(np.float32)
    lengths = np.full(num_samples, num_frames) if lengths is None else np.asarray(lengths)
    recipe = {"prompt": prompt, "seed": 7, "steps": 10, "guidance": 2.5, "model_id": "synthetic",
              "backend_version": "0.1.0", **recipe_extra}
    np.savez(path, poses=poses, trans=trans, betas=np.zeros((num_samples, 10), np.float32),
             joints=joints_fitted[:, :, :22], joints_fitted=joints_fitted, lengths=lengths.astype(np.int64),
             fps=np.float32(20.0), rest_joints=rest.astype(np.float32), parents=SMPL_PARENTS,
             fit_error=np.zeros((num_samples, num_frames), np.float32), recipe=np.array(json.dumps(recipe)),
             **({} if body is None else {"vertices": np.stack([lbs(body[0], body[2], p.astype(float), t.astype(float), rest)
                                                               for p, t in zip(poses, trans)]).astype(np.float32)}))
    return path


class FakeClientError(Exception):
    """Like the real client's BackendClientError: ``code`` + ``message``."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class FakeClient:
    """Speaks the client contract of docs/DESIGN.md. ``plan`` is the list of events one job emits
    (one per poll); ``result_path`` fills the result event."""

    def __init__(self):
        self.alive, self.submitted, self.cancelled, self.stopped, self.starts = False, [], [], False, 0
        self.result_path, self.error, self.steps, self._queue = None, None, 5, []

    def connect(self, python_exe, backend_root, log_path=None):
        self.python_exe, self.backend_root = python_exe, backend_root
        self.alive, self.starts = True, self.starts + 1
        return self

    def _plan(self, job):
        events = [{"event": "progress", "job": job, "phase": "load", "step": 0, "total": 0}]
        events += [{"event": "progress", "job": job, "phase": "diffusion", "step": i, "total": self.steps}
                   for i in range(1, self.steps + 1)]
        if self.error:
            events.append({"event": "error", "job": job, **self.error})
        else:
            events.append({"event": "result", "job": job, "result_path": self.result_path, "info": {}})
        return events

    def submit(self, op, params):
        job = f"job{len(self.submitted) + 1}"
        if not self.alive:  # like the real client: submit restarts a dead server
            self.alive, self.starts = True, self.starts + 1
        self.submitted.append((op, params))
        self._queue = self._plan(job)
        return job

    def die(self):
        """The server crashed: like the real client, report backend_died for the job in flight."""
        self.alive = False
        job = self._queue[0]["job"] if self._queue else None
        self._queue = [{"event": "error", "job": job, "code": "backend_died",
                        "message": "the backend process exited (exit code -9) while running 'generate'"}]

    def poll(self):
        return [self._queue.pop(0)] if self._queue else []

    def cancel(self, job):
        self.cancelled.append(job)
        self._queue = [{"event": "error", "job": job, "code": "cancelled", "message": "cancelled by the user"}]

    def request(self, op, params, progress=None, timeout=None):
        job = self.submit(op, params)
        while self._queue:
            event = self._queue.pop(0)
            if event["event"] == "progress" and progress:
                progress(event)
            elif event["event"] == "result":
                return event
            elif event["event"] == "error":
                raise FakeClientError(event["code"], event["message"])
        raise AssertionError(f"fake job {job} ended without a result")

    def stop(self):
        self.stopped, self.alive = True, False


class RecordingLayout:
    """Stands in for bpy.types.UILayout: records every call and checks that each property,
    operator and operator argument the panel names really exists."""

    def __init__(self, log):
        self.log, self.enabled = log, True

    def _sub(self, *args, **kwargs):
        return RecordingLayout(self.log)

    column = row = box = split = _sub

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{data} has no property {name!r}"
        self.log.append(("prop", name))

    def label(self, text="", icon='NONE', **kwargs):
        self.log.append(("label", text, icon))

    def progress(self, factor=0.0, type='BAR', text=""):
        assert 0.0 <= factor <= 1.0
        self.log.append(("progress", round(factor, 3), text))

    def operator(self, idname, **kwargs):
        module, name = idname.split(".")
        import bpy
        props = getattr(getattr(bpy.ops, module), name).get_rna_type().properties
        self.log.append(("operator", idname))
        log = self.log

        class Props:
            def __setattr__(self, key, value):
                assert key in props, f"{idname} has no argument {key!r}"
                log.append(("set", idname, key))
        return Props()


def backend_python() -> str | None:
    """The backend environment (torch): $MDM_BACKEND_PYTHON, the repository's .venv, else this
    interpreter if it has torch (the bpy 4.2 venv has none: point MDM_BACKEND_PYTHON at one)."""
    if os.environ.get("MDM_BACKEND_PYTHON"):
        return os.environ["MDM_BACKEND_PYTHON"]
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    if venv.is_file():
        return str(venv)
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    return sys.executable
