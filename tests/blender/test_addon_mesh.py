"""Mesh output: the skinned mesh deforms like SMPL's linear blend skinning, and the vertex-animation
cache replays the result's vertices at the scene frame rate. A synthetic SMPL file stands in for the
user's (no SMPL data is in the repository)."""
from __future__ import annotations

import numpy as np
import pytest
from addon_helpers import lbs, tpose_rest_joints, write_result, write_synthetic_smpl

bpy = pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")

Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@pytest.fixture
def body(tmp_path):
    """A synthetic SMPL_NEUTRAL.npz (SMPL's keys and shapes, made-up values) in the SMPL folder, read
    by the backend's real loader. Its first 24 vertices sit on the rest joints (J_regressor picks them)."""
    folder = tmp_path / "smpl"
    v, faces, weights = write_synthetic_smpl(folder / "SMPL_NEUTRAL.npz", tpose_rest_joints())
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.smpl_dir = str(folder)
    yield v, faces, weights
    prefs.smpl_dir = ""


def evaluated_vertices(obj, frame):
    bpy.context.scene.frame_set(frame)
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.empty(len(ev.data.vertices) * 3, np.float32)
    ev.data.vertices.foreach_get("co", co)
    mw = np.array(ev.matrix_world)
    return co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3]


def test_skinned_mesh_follows_lbs(scene, body, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=30)
    scene.render.fps = 20
    assert bpy.ops.mdm.import_result(filepath=str(path), output='ARMATURE_MESH') == {'FINISHED'}
    skin = next(o for o in scene.objects if o.type == 'MESH')
    assert skin.parent.type == 'ARMATURE' and skin.modifiers[0].object == skin.parent
    assert len(skin.vertex_groups) == 24
    data = np.load(path)
    for frame in (1, 11, 30):
        expected = lbs(body[0], body[2], data["poses"][0, frame - 1:frame].astype(float),
                       data["trans"][0, frame - 1:frame].astype(float), data["rest_joints"].astype(float))[0] @ Z_UP.T
        assert np.abs(evaluated_vertices(skin, frame) - expected).max() < 1e-3


@pytest.mark.parametrize("fps", [24, 30])
def test_vertex_animation_replays_the_result(scene, body, tmp_path, fps):
    path = write_result(tmp_path / "r.npz", num_samples=2, num_frames=21, body=body)
    scene.render.fps = fps
    assert bpy.ops.mdm.import_result(filepath=str(path), output='VERTEX', start_frame=3) == {'FINISHED'}
    assert not any(o.type == 'ARMATURE' for o in scene.objects)
    first, second = sorted((o for o in scene.objects if o.type == 'MESH'), key=lambda o: o["mdm_sample"])
    assert not first.hide_viewport and second.hide_viewport
    assert list(first["mdm_frame_range"]) == [3, 3 + fps]  # 1 s of motion
    verts = np.load(path)["vertices"][0] @ Z_UP.T
    for frame in range(3, 3 + fps + 1):
        s = (frame - 3) * 20.0 / fps
        lo, frac = int(np.floor(s + 1e-9)), s - np.floor(s + 1e-9)
        expected = verts[lo] * (1 - frac) + verts[min(lo + 1, 20)] * frac
        assert np.abs(evaluated_vertices(first, frame) - expected).max() < 1e-4, f"frame {frame}"
    assert bpy.ops.mdm.pick_sample(object=second.name) == {'FINISHED'}
    assert first.hide_viewport and not second.hide_viewport


def test_vertex_animation_in_place_moves_every_vertex_with_the_root(scene, body, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=21, body=body)
    scene.render.fps = 20
    assert bpy.ops.mdm.import_result(filepath=str(path), output='VERTEX', root_motion='IN_PLACE') == {'FINISHED'}
    mesh = next(o for o in scene.objects if o.type == 'MESH')
    data = np.load(path)
    travel = data["trans"][0] - data["trans"][0, :1]
    travel[:, 1] = 0.0                                                  # y-up: only x/z travel goes
    assert np.abs(travel).max() > 0.5
    for frame in (1, 8, 21):
        expected = (data["vertices"][0, frame - 1] - travel[frame - 1]) @ Z_UP.T
        assert np.abs(evaluated_vertices(mesh, frame) - expected).max() < 1e-4, f"frame {frame}"


def test_mesh_output_without_smpl_file_changes_nothing(scene, tmp_path):
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    (tmp_path / "smpl").mkdir()
    prefs.smpl_dir = str(tmp_path / "smpl")  # an empty folder
    try:
        path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=10)
        with pytest.raises(RuntimeError, match="no SMPL model file in .*mesh output needs SMPL_NEUTRAL.pkl"):
            bpy.ops.mdm.import_result(filepath=str(path), output='ARMATURE_MESH')
        assert len(bpy.data.objects) == 0 and len(bpy.data.actions) == 0
    finally:
        prefs.smpl_dir = ""


def test_vertex_output_needs_vertices_in_the_result(scene, body, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=10)
    with pytest.raises(RuntimeError, match="holds no mesh vertices"):
        bpy.ops.mdm.import_result(filepath=str(path), output='VERTEX')
    assert len(bpy.data.objects) == 0
