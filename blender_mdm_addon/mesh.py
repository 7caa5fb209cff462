"""SMPL mesh output: a skinned mesh on the rig, or vertex animation without an armature.

Vertex animation uses a PC2 point cache read by a Mesh Cache modifier rather than one shape key
per frame. Measured with bench/keying.py at 196 frames x 6,890 vertices (bpy 5.0.1, 2 shared
cores, noisy): creating it takes ~0.16 s vs ~0.48 s for 196 keyed shape keys, and playback costs
~0.8 ms per frame vs ~5.6 ms (shape keys make every evaluation walk all 196 key blocks), and shape
keys would put 16 MB per sample inside the .blend. The modifier also maps 20 fps onto the scene
rate itself (frame_scale, linear interpolation), so no resampled copy is stored. The cost is an
external file: it goes to ``//mdm_cache/`` beside a saved .blend (relative path), else to the
add-on's user folder.
"""
from __future__ import annotations

import re
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from . import backend_link, rig, setup_check
from .result_file import MotionResult


@dataclass
class Body:
    """What mesh output needs from an SMPL model file (canonical frame, metres)."""
    path: Path
    v_template: np.ndarray               # [V, 3]
    faces: np.ndarray                    # [F, 3] int
    weights: np.ndarray                  # [V, 24] LBS weights
    shapedirs: np.ndarray | None = None  # [V, 3, B]

    def rest_vertices(self, betas: np.ndarray | None = None) -> np.ndarray:
        if betas is None or self.shapedirs is None or not np.any(betas):
            return self.v_template
        b = min(len(betas), self.shapedirs.shape[-1])
        return self.v_template + self.shapedirs[..., :b] @ np.asarray(betas[:b], np.float64)


def load_body(smpl_dir: str) -> Body:
    """The user's SMPL file through the backend's numpy loader (no chumpy, no torch)."""
    errors = backend_link.load("errors")
    path = setup_check.resolve_smpl_file(setup_check.Settings(smpl_dir=smpl_dir))
    if path is None:
        raise errors.SMPLFileError(
            f"no SMPL model file in {smpl_dir or backend_link.default_smpl_dir()}: mesh output needs "
            "SMPL_NEUTRAL.pkl (smpl.is.tue.mpg.de) there, or choose output 'Armature'")
    model = backend_link.load("fitting.smpl_file").load_smpl(path)  # SMPLFileError names what is wrong
    return Body(path, model.v_template, model.faces, model.weights, model.shapedirs)


def check_vertices(result: MotionResult, body: Body) -> None:
    errors = backend_link.load("errors")
    if result.vertices is None:
        raise errors.InputError(f"{result.path} holds no mesh vertices: vertex animation needs a result "
                                "generated with an SMPL file (vertices on); choose output 'Armature' or regenerate")
    if result.vertices.shape[2] != len(body.v_template):
        raise errors.InputError(f"{result.path} has {result.vertices.shape[2]} vertices per frame but the SMPL "
                                f"file {body.path} has {len(body.v_template)}; use the same SMPL model")


def new_mesh_object(context, name: str, vertices: np.ndarray, faces: np.ndarray):
    """A mesh object from vertices [V, 3] and triangles [F, 3], built with foreach_set."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, np.float32).ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.astype(np.int32).ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), bool))
    mesh.update()
    obj = bpy.data.objects.new(name, mesh)
    context.collection.objects.link(obj)
    return obj


def create_skinned_mesh(context, body: Body, rig_obj, binding, result: MotionResult):
    """The SMPL mesh in the rig's rest pose, parented to it, LBS weights as vertex groups."""
    betas = result.betas[0] if result.betas is not None else None
    verts = binding.to_armature(body.rest_vertices(betas))  # mesh space = armature space
    obj = new_mesh_object(context, f"{rig_obj.name} body", verts, body.faces)
    obj.parent = rig_obj
    weights = body.weights.copy()
    for j in range(weights.shape[1] - 1, 0, -1):  # joints the rig lacks (hands) go to the parent
        if binding.bone_names[j] is None:
            weights[:, rig.SMPL_PARENTS[j]] += weights[:, j]
            weights[:, j] = 0.0
    for j, bone in enumerate(binding.bone_names):
        if bone is None:
            continue
        group = obj.vertex_groups.new(name=bone)
        for v in np.flatnonzero(weights[:, j] > 1e-6).tolist():
            group.add((v,), float(weights[v, j]), 'REPLACE')
    modifier = obj.modifiers.new("Armature", 'ARMATURE')
    modifier.object = rig_obj
    return obj


def cache_dir() -> Path:
    if bpy.data.filepath:
        folder = Path(bpy.path.abspath("//mdm_cache"))
    else:
        try:
            folder = Path(bpy.utils.extension_path_user(__package__, path="cache", create=True))
        except (AttributeError, ValueError):  # a legacy add-on: no extension user folder
            folder = Path(tempfile.gettempdir()) / "blender_mdm_cache"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_pc2(path: Path, frames: np.ndarray, sample_rate: float) -> None:
    """frames [T, V, 3] -> a PC2 point cache (header + float32 little-endian samples)."""
    header = np.zeros(1, dtype=[("magic", "S12"), ("version", "<i4"), ("points", "<i4"), ("start", "<f4"),
                                ("rate", "<f4"), ("samples", "<i4")])
    header[0] = (b"POINTCACHE2\0", 1, frames.shape[1], 0.0, sample_rate, frames.shape[0])
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(np.ascontiguousarray(frames, "<f4").tobytes())


def create_vertex_animation(context, body: Body, result: MotionResult, names: list, start_frame: int,
                            scene_fps: float) -> list:
    """One mesh object per sample, each playing its PC2 cache from ``start_frame`` at scene rate."""
    objects = []
    for k, name in enumerate(names):
        n = int(result.lengths[k])
        frames = result.vertices[k, :n] @ rig.Y_UP_TO_Z_UP.T          # [n, V, 3] z-up world
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:40]
        path = cache_dir() / f"{safe}_{uuid.uuid4().hex[:8]}.pc2"
        write_pc2(path, frames, 1.0 / result.fps)
        obj = new_mesh_object(context, name, frames[0], body.faces)
        cache = obj.modifiers.new("MDM motion", 'MESH_CACHE')
        cache.cache_format = 'PC2'
        cache.filepath = bpy.path.relpath(str(path)) if bpy.data.filepath else str(path)
        cache.time_mode, cache.play_mode, cache.interpolation = 'FRAME', 'SCENE', 'LINEAR'
        # cache index = frame_scale * scene_frame - frame_start = (frame - start) * 20 / fps
        cache.frame_scale = result.fps / scene_fps
        cache.frame_start = start_frame * result.fps / scene_fps
        obj.hide_viewport = obj.hide_render = k > 0
        objects.append(obj)
    return objects
