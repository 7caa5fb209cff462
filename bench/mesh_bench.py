"""Mesh timings for bench/keying.py: skinned-mesh creation and two vertex-animation designs at
196 frames x 6,890 vertices (a synthetic SMPL-sized body; no SMPL data is needed)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from addon_helpers import lbs, synthetic_body


def shape_key_animation(bpy, mesh_mod, frames: np.ndarray, faces: np.ndarray):
    """The alternative we did not choose: one shape key per frame, each keyed 0 -> 1 -> 0."""
    obj = mesh_mod.new_mesh_object(bpy.context, "ShapeKeyAnim", frames[0], faces)
    obj.shape_key_add(name="Basis")
    action = bpy.data.actions.new("ShapeKeyAnimKeys")
    key = obj.data.shape_keys
    key.animation_data_create()
    key.animation_data.action = action
    for i, co in enumerate(frames):
        block = obj.shape_key_add(name=f"f{i:03d}", from_mix=False)
        block.data.foreach_set("co", co.astype(np.float32).ravel())
    path_of = lambda i: f'key_blocks["f{i:03d}"].value'  # noqa: E731
    for i in range(len(frames)):
        if hasattr(action, "fcurve_ensure_for_datablock"):
            fc = action.fcurve_ensure_for_datablock(key, path_of(i))
        else:
            fc = action.fcurves.new(path_of(i))
        fc.keyframe_points.add(3)
        fc.keyframe_points.foreach_set("co", np.array([i, 0, i + 1, 1, i + 2, 0], np.float32))
    return obj


def playback_ms(bpy, obj, frames) -> float:
    scene = bpy.context.scene
    t0 = time.perf_counter()
    for f in frames:
        scene.frame_set(int(f))
        obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data.vertices[0].co
    return (time.perf_counter() - t0) * 1000.0 / len(frames)


def bench_meshes(bpy, result, timed, clear):
    from blender_mdm_addon import mesh, rig
    rest = result.rest_joints
    v, faces, weights = synthetic_body(rest, 6890)
    body = mesh.Body(Path("synthetic"), v, faces, weights)
    verts = lbs(v, weights, result.poses[0], result.trans[0], rest)[None].astype(np.float32)  # [1, 196, V, 3]
    result.vertices = verts
    scene = bpy.context.scene
    scene.render.fps = 20

    def skinned():
        clear()
        obj = rig.create_armature(bpy.context, "Rig", rest)
        binding = rig.bind_armature(obj, rest)
        mesh.create_skinned_mesh(bpy.context, body, obj, binding, result)

    skin_med, _ = timed(skinned, repeats=3)
    clear()
    mesh.cache_dir = lambda: Path(tempfile.mkdtemp())
    pc2_med, _ = timed(lambda: mesh.create_vertex_animation(bpy.context, body, result, ["pc2"], 1, 20.0), repeats=3)
    clear()
    pc2_obj = mesh.create_vertex_animation(bpy.context, body, result, ["pc2"], 1, 20.0)[0]
    pc2_play = playback_ms(bpy, pc2_obj, range(1, 197, 5))
    frames = verts[0] @ rig.Y_UP_TO_Z_UP.T
    t0 = time.perf_counter()
    sk_obj = shape_key_animation(bpy, mesh, frames, faces)
    sk_create = (time.perf_counter() - t0) * 1000.0
    pc2_obj.hide_viewport = True
    sk_play = playback_ms(bpy, sk_obj, range(1, 197, 5))
    print(f"skinned mesh (6890 verts, 24 vertex groups + modifier):  {skin_med:8.1f} ms median")
    print(f"vertex animation, PC2 + Mesh Cache (chosen):  create {pc2_med:8.1f} ms, playback {pc2_play:6.2f} ms/frame")
    print(f"vertex animation, 196 shape keys (rejected):  create {sk_create:8.1f} ms, playback {sk_play:6.2f} ms/frame")
