"""mdm.edit_range on a keyed SMPL animation (HumanML3D 012314 fitted and keyed, or a synthetic
stand-in), through the real backend server (one per module) with a tiny model.

The tiny model has random weights and a narrow motion space (Std x 0.05: its output stays near
the dataset's mean pose), so the regenerated range is a smooth motion that differs from the
original by decimetres: a stand-in for a trained model's in-fill, against which the joins must not
pop. (A plain random model emits white noise inside the range, where no join can be smooth.)
Under the bpy 4.2 venv (no torch) set MDM_BACKEND_PYTHON to the backend's interpreter."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from addon_helpers import NAMES
from edit_helpers import (SharedClient, backend_python, fcurves, joints_over, key_snapshot, keys_outside, same_keys,
                          write_keyed_motion, write_narrow_model)

bpy = pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")
from blender_mdm_addon import controller, editor  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LOWER = [0, 1, 2, 4, 5, 7, 8, 10, 11]
UPPER = [3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from backend.service.client import BackendClient
    python = backend_python()
    if python is None:
        pytest.skip("no backend Python with torch: set MDM_BACKEND_PYTHON (or create <repo>/.venv)")
    folder = write_narrow_model(python, tmp_path_factory.mktemp("edit_model"))
    shared = SharedClient(BackendClient(python, str(REPO), log_path=str(folder / "server.log"),
                                        server_args=("--threads", "1")))
    yield python, folder, shared
    shared.close()


@pytest.fixture
def backend(scene, server):
    """The add-on set up for the module's server and tiny model (what the preferences would say)."""
    python, folder, shared = server
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.python_exe, prefs.model_dir, prefs.text_encoder_dir, prefs.device = (python, str(folder / "model"),
                                                                               str(folder / "clip"), 'cpu')
    shared.submitted.clear()
    controller.CONTROLLER.client_factory = shared.connect
    yield shared
    prefs.python_exe, prefs.model_dir, prefs.text_encoder_dir, prefs.device = sys.executable, "", "", 'auto'


@pytest.fixture(params=["012314", "synthetic"])
def motion_file(request, tmp_path):
    shared = request.getfixturevalue("shared") if request.param == "012314" else None
    return write_keyed_motion(tmp_path / "motion.npz", request.param, shared)


def keyed_rig(path, fps=24, root_motion='WORLD'):
    """Key the motion onto a new SMPL rig at ``fps``; returns (rig, action renamed 'Walk', last frame)."""
    bpy.context.scene.render.fps = fps
    assert bpy.ops.mdm.import_result(filepath=str(path), root_motion=root_motion) == {'FINISHED'}
    rig = bpy.context.active_object
    action = rig.animation_data.action
    action.name = "Walk"
    return rig, action, int(action.frame_range[1])


def state():
    """Everything a refused edit must leave alone."""
    rigs = {o.name: (o.animation_data.action.name if o.animation_data and o.animation_data.action else None)
            for o in bpy.data.objects}
    return rigs, sorted(a.name for a in bpy.data.actions), {a.name: key_snapshot(a) for a in bpy.data.actions}


def same_state(a, b) -> bool:
    return a[:2] == b[:2] and all(same_keys(a[2][n], b[2][n]) == [] for n in a[2])


def fitted_world_joints(rig, start: int, end: int) -> dict:
    """{scene frame: [22, 3]} the service's fitted joints of the last edit, in world space, at the
    frames of the range that fall on a model frame and lie past the cross-fade (weight 1)."""
    from backend.editing import blend_weights, plan_edit
    result = np.load(controller.CONTROLLER.result_path)
    binding, action = editor.smpl_binding(rig), rig.animation_data.action
    plan = plan_edit(*action["mdm_frame_range"], start, end, bpy.context.scene.render.fps)
    full = blend_weights(end - start + 1, (end - start) // 3) == 1.0   # the longest ramp there can be
    mw = np.array(rig.matrix_world)
    out = {}
    for f in np.arange(start, end + 1)[full]:
        pos = plan.window_position([f])[0]
        if abs(pos - round(pos)) < 1e-6:
            arm = binding.to_armature(result["joints_fitted"][0, int(round(pos)), :22].astype(np.float64))
            out[int(f)] = arm @ mw[:3, :3].T + mw[:3, 3]
    assert len(out) >= 3
    return out


def join_jumps(joints: np.ndarray, first: int, start: int, end: int) -> np.ndarray:
    """Frame-to-frame velocity change (max over joints) at the two frames of each join:
    where the last untouched frame meets the first edited one and vice versa."""
    accel = np.linalg.norm(np.diff(joints, 2, axis=0), axis=-1).max(-1)   # [k] centred on frame first + k + 1
    return accel[[start - 1 - first - 1, start - first - 1, end - first - 1, end + 1 - first - 1]]


# --------------------------------------------------------------------------------------------
# acceptance 1 and 2
# --------------------------------------------------------------------------------------------
def test_in_between_edit_rewrites_only_the_range_and_joins_smoothly(scene, backend, motion_file):
    rig, source, last = keyed_rig(motion_file)
    snapshot = key_snapshot(source)
    frames = np.arange(1, last + 1)
    before = joints_over(rig, frames)
    assert bpy.ops.mdm.edit_range(frame_start=40, frame_end=80, mode='IN_BETWEEN', seed=1, steps=4) == {'FINISHED'}

    new = rig.animation_data.action
    assert new != source and new.name == "Walk | edit 40-80"
    assert bpy.data.actions.get("Walk") == source and source.use_fake_user
    assert same_keys(snapshot, key_snapshot(source)) == [], "the original action changed"
    edited = key_snapshot(new)
    assert same_keys(keys_outside(snapshot, 40, 80), keys_outside(edited, 40, 80)) == []
    for (path, index), keys in edited.items():  # inside: written bones changed, leaf bones kept
        old_inside = snapshot[(path, index)]["co"][39:80]
        changed = np.mean(keys["co"][39:80, 1] != old_inside[:, 1])
        leaf = any(f'"{b}"' in path for b in ("head", "left_foot", "right_foot", "left_wrist", "right_wrist",
                                             "left_hand", "right_hand"))
        assert changed == 0 if leaf else changed > 0.9, (path, index, changed)
        assert np.array_equal(keys["co"][39:80, 0], np.arange(40, 81)), "one key per frame on the range"

    after = joints_over(rig, frames)
    assert np.array_equal(after[:39], before[:39]) and np.array_equal(after[80:], before[80:])
    assert np.linalg.norm(after[39:80] - before[39:80], axis=-1).max() > 0.1
    for f, fitted in fitted_world_joints(rig, 40, 80).items():  # the new motion itself, where it is not blended
        assert np.abs(after[f - 1] - fitted).max() < 1e-3, f"frame {f}"
    untouched = np.linalg.norm(np.diff(before, 2, axis=0), axis=-1).max()
    jumps = join_jumps(after, 1, 40, 80)
    assert jumps.max() <= untouched, f"join velocity jumps {jumps.round(3)} vs {untouched:.3f} in the original"

    assert (new["mdm_mode"], list(new["mdm_edit_range"]), new["mdm_source_action"]) == ("in_between", [40, 80], "Walk")
    assert (new["mdm_seed"], new["mdm_prompt"], new["mdm_steps"]) == (1, "", 4)
    recipe = json.loads(new["mdm_recipe"])
    assert recipe["op"] == "edit" and recipe["input"] == "joints" and recipe["guidance_used"] == 0.0
    assert recipe["edit_range"] == [40, 80] and recipe["source_action"] == "Walk"
    op, params = backend.submitted[-1]
    assert op == "edit" and params["mode"] == "in_between" and params["fit"] is True
    assert not os.path.exists(params["input_path"]), "the input file must be removed"
    assert editor.timeline_range(bpy.context) == (40, 80, "selected keys"), "the edited keys come selected"


def test_an_in_place_clip_stays_in_place_when_a_range_is_edited(scene, backend, tmp_path):
    rig, source, last = keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"), root_motion='IN_PLACE')
    frames = np.arange(1, last + 1)
    before = joints_over(rig, frames)
    spot = before[0, 0, :2]                                       # world x/y of the pelvis (z-up)
    assert np.abs(before[:, 0, :2] - spot).max() < 1e-4
    assert bpy.ops.mdm.edit_range(frame_start=40, frame_end=80, mode='IN_BETWEEN', seed=1, steps=4) == {'FINISHED'}
    new = rig.animation_data.action
    assert new != source and json.loads(new["mdm_recipe"])["root_motion"] == 'IN_PLACE'
    after = joints_over(rig, frames)
    assert np.abs(after[:, 0, :2] - spot).max() < 1e-4, "the edited range travels"
    assert np.linalg.norm(after[39:80] - before[39:80], axis=-1).max() > 0.05      # but the body did change


def test_upper_body_edit_keeps_the_lower_body(scene, backend, motion_file):
    rig, source, last = keyed_rig(motion_file)
    snapshot = key_snapshot(source)
    frames = np.arange(1, last + 1)
    before = joints_over(rig, frames)
    assert bpy.ops.mdm.edit_range(frame_start=40, frame_end=80, mode='UPPER_BODY', prompt="a person waves",
                                  seed=2, steps=4) == {'FINISHED'}
    new = rig.animation_data.action
    after = joints_over(rig, frames)
    lower_error = np.linalg.norm(after[:, LOWER] - before[:, LOWER], axis=-1).max()
    assert lower_error < 0.01, f"lower body moved {lower_error * 100:.2f} cm"
    assert np.linalg.norm(after[39:80, UPPER] - before[39:80, UPPER], axis=-1).max() > 0.05
    for f, fitted in fitted_world_joints(rig, 40, 80).items():  # the new upper body, on the user's pelvis
        posed = after[f - 1, UPPER] - after[f - 1, 3]
        assert np.abs(posed - (fitted[UPPER] - fitted[3])).max() < 1e-3, f"frame {f}"
    assert np.array_equal(after[:39], before[:39]) and np.array_equal(after[80:], before[80:])
    edited = key_snapshot(new)
    lower_bones = {f'pose.bones["{NAMES[j]}"]' for j in LOWER}
    for channel in snapshot:
        if channel[0].rsplit(".", 1)[0] in lower_bones:
            assert same_keys({channel: snapshot[channel]}, {channel: edited[channel]}) == [], channel
    assert same_keys(keys_outside(snapshot, 40, 80), keys_outside(edited, 40, 80)) == []
    assert new["mdm_mode"] == "upper_body" and new["mdm_prompt"] == "a person waves"
    assert max(join_jumps(after, 1, 40, 80)) <= np.linalg.norm(np.diff(before, 2, axis=0), axis=-1).max()


def test_extend_continues_past_the_last_key_and_leaves_every_earlier_frame(scene, backend, tmp_path):
    from backend.editing import extend_range
    rig, source, last = keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"))
    snapshot = key_snapshot(source)
    before = joints_over(rig, np.arange(1, last + 1))
    assert bpy.ops.mdm.edit_range(extend_seconds=2.0, seed=1, steps=4) == {'FINISHED'}
    start, end = extend_range(1, last, 2.0, 24)
    assert (start, end) == (last - 7, last + 48)                      # 0.3 s of overlap, 2 s of new motion
    new = rig.animation_data.action
    assert new.name == f"Walk | extend {start}-{end}" and source.use_fake_user
    assert same_keys(snapshot, key_snapshot(source)) == [], "the original action changed"
    edited = key_snapshot(new)
    assert same_keys(keys_outside(snapshot, start, end), keys_outside(edited, start, end)) == []
    assert max(k["co"][:, 0].max() for k in edited.values()) == end
    after = joints_over(rig, np.arange(1, end + 1))
    assert np.array_equal(after[:start - 1], before[:start - 1])    # every frame before the overlap as it was
    # it moves on to the end, not back to the held last pose
    assert np.linalg.norm(after[-1] - before[-1], axis=-1).max() > 0.05
    untouched = np.linalg.norm(np.diff(before, 2, axis=0), axis=-1).max()
    jumps = join_jumps(after, 1, start, end - 2)[:2]                   # where the continuation fades in
    assert jumps.max() <= untouched, f"join velocity jumps {jumps.round(3)} vs {untouched:.3f} in the original"
    assert list(new["mdm_frame_range"]) == [1, end] and list(new["mdm_edit_range"]) == [start, end]
    assert new.frame_range[1] >= end                                  # the action's range covers the new keys
    recipe = json.loads(new["mdm_recipe"])
    assert recipe["extend_seconds"] == 2.0 and recipe["edit_range"] == [start, end]
    assert not new.use_cyclic
    # the whole body only: past the keys there are no legs for an upper-body edit to keep
    before_state = state()
    with pytest.raises(RuntimeError, match="Extend continues the whole body"):
        bpy.ops.mdm.edit_range(extend_seconds=2.0, mode='UPPER_BODY')
    assert same_state(before_state, state())


def test_extending_a_loop_makes_it_play_once(scene, backend, tmp_path):
    bpy.context.scene.render.fps = 24
    path = write_keyed_motion(tmp_path / "m.npz", "synthetic")
    assert bpy.ops.mdm.import_result(filepath=str(path), loop=True) == {'FINISHED'}
    rig = bpy.context.active_object
    looped = rig.animation_data.action
    assert looped.use_cyclic
    assert bpy.ops.mdm.edit_range(extend_seconds=1.0, steps=3) == {'FINISHED'}
    extended = rig.animation_data.action
    assert extended != looped and looped.use_cyclic                   # the loop itself is kept as it was
    assert not extended.use_cyclic and not any(m.type == 'CYCLES' for c in fcurves(extended) for m in c.modifiers)


# --------------------------------------------------------------------------------------------
# acceptance 3: edge cases
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["start", "end", "whole"])
def test_ranges_touching_the_ends_of_the_action(scene, backend, tmp_path, where):
    rig, source, last = keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"))
    start, end = {"start": (1, 30), "end": (last - 29, last), "whole": (1, last)}[where]
    snapshot = key_snapshot(source)
    before = joints_over(rig, np.arange(1, last + 1))
    assert bpy.ops.mdm.edit_range(frame_start=start, frame_end=end, steps=3) == {'FINISHED'}
    edited = key_snapshot(rig.animation_data.action)
    assert same_keys(keys_outside(snapshot, start, end), keys_outside(edited, start, end)) == []
    assert all(k["co"][:, 0].min() >= 1 and k["co"][:, 0].max() <= last for k in edited.values()), \
        "no keys may be added outside the animation"
    after = joints_over(rig, np.arange(1, last + 1))
    outside = np.r_[0:start - 1, end:last]
    assert np.array_equal(after[outside], before[outside])
    assert np.linalg.norm(after[start - 1:end] - before[start - 1:end], axis=-1).max() > 0.05


def test_two_frame_range_changes_just_those_frames(scene, backend, tmp_path):
    rig, source, last = keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"), fps=60)
    snapshot = key_snapshot(source)
    before = joints_over(rig, np.arange(1, last + 1))
    assert bpy.ops.mdm.edit_range(frame_start=100, frame_end=101, steps=3) == {'FINISHED'}
    after = joints_over(rig, np.arange(1, last + 1))
    moved = np.nonzero(np.abs(after - before).max(axis=(1, 2)) > 0)[0] + 1
    assert moved.tolist() == [100, 101]  # both half-way between the old pose and the new one
    edited = key_snapshot(rig.animation_data.action)
    assert same_keys(keys_outside(snapshot, 100, 101), keys_outside(edited, 100, 101)) == []


@pytest.mark.parametrize("start,end,message", [
    (40, 40, "single frame; select at least 2 frames"),
    (80, 40, "is empty"),
    (150, 260, r"goes outside the animation's keys \(1-203\)"),
])
def test_bad_ranges_change_nothing(scene, backend, tmp_path, start, end, message):
    keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"))
    before = state()
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.mdm.edit_range(frame_start=start, frame_end=end)
    assert same_state(before, state()) and backend.submitted == []


def test_a_range_longer_than_the_window_is_refused(scene, backend, tmp_path):
    from backend.fitting.rest_skeleton import builtin_rest_joints
    from backend.motion.skeleton import SMPL_PARENTS
    from tests.helpers.synthetic_motion import random_motion
    poses, trans = random_motion(np.random.default_rng(1), frames=400, keys=20)     # 20 s at 20 fps
    np.savez(tmp_path / "long.npz", poses=poses[None].astype(np.float32), trans=trans[None].astype(np.float32),
             rest_joints=builtin_rest_joints().astype(np.float32), parents=SMPL_PARENTS, fps=np.float32(20))
    keyed_rig(tmp_path / "long.npz")
    before = state()
    with pytest.raises(RuntimeError, match=r"frame range 40-300 is 10.83 s long; an edit regenerates at most 8.80 s"):
        bpy.ops.mdm.edit_range(frame_start=40, frame_end=300)
    assert same_state(before, state()) and backend.submitted == []
    assert bpy.ops.mdm.edit_range(frame_start=200, frame_end=360, steps=2) == {'FINISHED'}   # 6.7 s: fine
    from backend.editing import plan_edit
    plan = plan_edit(1, 479, 200, 360, 24)
    sent = backend.submitted[-1][1]
    assert (sent["edit_start"], sent["edit_end"]) == (plan.edit_start, plan.edit_end)
    assert plan.num_frames == 196 and plan.edit_end - plan.edit_start == 136


def _armature(name, bones=("root", "spine", "arm")):
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    for bone in bones:
        arm.edit_bones.new(bone).tail = (0, 0, 1)
    bpy.ops.object.mode_set(mode='OBJECT')
    return obj


@pytest.mark.parametrize("target,message", [
    ("nothing", "but nothing is active; select the SMPL armature"),
    ("mesh", r"but 'Cube' \(mesh\) is active"),
    ("robot", "'Robot' is not an SMPL rig: no bone for pelvis.*Edit Range and Extend need an SMPL rig"),
    ("unkeyed", "has no keyed animation to edit"),
    ("empty action", "has no keyed animation to edit"),
])
def test_wrong_targets_are_refused_with_a_reason(scene, backend, tmp_path, target, message):
    keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"))
    rig = bpy.context.active_object
    if target == "nothing":
        bpy.context.view_layer.objects.active = None
    elif target == "mesh":
        obj = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
        scene.collection.objects.link(obj)
        bpy.context.view_layer.objects.active = obj
    elif target == "robot":
        _armature("Robot")
    elif target == "unkeyed":
        rig.animation_data.action = None
    else:
        rig.animation_data.action = bpy.data.actions.new("Empty")
    before = state()
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.mdm.edit_range(frame_start=40, frame_end=80)
    assert same_state(before, state()) and backend.submitted == []


# --------------------------------------------------------------------------------------------
# a user's rig: centimetres, y-up data, Euler bones, sparse hand keys, no hand bones
# --------------------------------------------------------------------------------------------
def test_user_rig_with_euler_bones_and_sparse_keys(scene, backend):
    from backend.fitting.rest_skeleton import builtin_rest_joints
    from backend.motion.skeleton import SMPL_PARENTS
    rest = builtin_rest_joints()
    names = [f"m_avg_{n.replace('left_', 'L_').replace('right_', 'R_').title()}" for n in NAMES]
    obj = _armature("UserRig", bones=())
    bpy.ops.object.mode_set(mode='EDIT')
    bones = []
    for j, name in enumerate(names):
        b = obj.data.edit_bones.new(name)
        b.head, b.tail = rest[j] * 100.0, rest[j] * 100.0 + np.array([0.0, 8.0, 0.0])
        if SMPL_PARENTS[j] >= 0:
            b.parent = bones[SMPL_PARENTS[j]]
        bones.append(b)
    bpy.ops.object.mode_set(mode='OBJECT')
    obj.rotation_euler, obj.scale, obj.location = (np.pi / 2, 0.0, 0.4), (0.01,) * 3, (2.0, 1.0, 0.0)
    action = bpy.data.actions.new("HandKeys")
    obj.animation_data_create().action = action
    pelvis, shoulder, knee = obj.pose.bones[names[0]], obj.pose.bones[names[16]], obj.pose.bones[names[4]]
    for pb in obj.pose.bones:
        pb.rotation_mode = 'XYZ'
    shoulder.rotation_mode = 'ZXY'
    for frame, (x, z, angle) in {1: (0, 0, 0.0), 30: (20, 40, 0.6), 70: (40, 90, -0.4), 100: (60, 120, 0.9)}.items():
        pelvis.location = (x, 0.0, z)
        pelvis.keyframe_insert("location", frame=frame)
        shoulder.rotation_euler = (angle, 0.3 * angle, -angle)
        shoulder.keyframe_insert("rotation_euler", frame=frame)
        knee.rotation_euler = (abs(angle), 0.0, 0.0)
        knee.keyframe_insert("rotation_euler", frame=frame)
    bpy.context.view_layer.objects.active = obj
    snapshot = key_snapshot(action)
    before = joints_over(obj, np.arange(1, 101), names)
    assert bpy.ops.mdm.edit_range(frame_start=40, frame_end=60, steps=3) == {'FINISHED'}
    new = obj.animation_data.action
    after = joints_over(obj, np.arange(1, 101), names)
    outside = np.r_[0:39, 60:100]
    assert np.abs(after[outside] - before[outside]).max() < 1e-4, "frames outside the range must not move"
    assert np.abs(after[39:60] - before[39:60]).max() > 0.05
    edited = key_snapshot(new)
    for channel, keys in snapshot.items():  # the hand keys themselves are untouched
        old_frames, new_frames = keys["co"][:, 0], edited[channel]["co"][:, 0]
        kept = np.isin(new_frames, old_frames[(old_frames < 40) | (old_frames > 60)])
        assert np.array_equal(edited[channel]["co"][kept], keys["co"][(old_frames < 40) | (old_frames > 60)])
    paths = {c[0] for c in edited}
    assert f'pose.bones["{names[16]}"].rotation_euler' in paths
    assert not any("rotation_quaternion" in p for p in paths), "Euler bones are keyed in Euler"


def test_axis_angle_bones_are_refused(scene, backend, tmp_path):
    rig, _, _ = keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"))
    rig.pose.bones["left_elbow"].rotation_mode = 'AXIS_ANGLE'
    before = state()
    with pytest.raises(RuntimeError, match="bone 'left_elbow' uses Axis Angle rotation"):
        bpy.ops.mdm.edit_range(frame_start=40, frame_end=80)
    assert same_state(before, state())


def run_probe(script: str, server, tmp_path) -> dict:
    """Run a probe script in a Blender process of its own on a keyed synthetic motion; its PROBE json."""
    python, folder, _ = server
    write_keyed_motion(tmp_path / "m.npz", "synthetic")
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name(script)), "--", python,
                           str(folder), str(tmp_path / "m.npz")], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])


# --------------------------------------------------------------------------------------------
# GUI: modal with progress and cancel, the panel's range
# --------------------------------------------------------------------------------------------
@pytest.mark.slow  # a Blender process and a backend server of its own
def test_modal_edit_cancel_and_completion(server, tmp_path):
    """The GUI path, in a process of its own (see edit_modal_probe.py)."""
    checks = run_probe("edit_modal_probe.py", server, tmp_path)
    assert [name for name, ok in checks.items() if not ok] == [] and len(checks) == 13


def test_panel_takes_the_range_from_the_timeline(scene, backend, tmp_path):
    from test_addon_operators import draw
    rig, source, _ = keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"))
    assert editor.timeline_range(bpy.context) is None
    log = draw()
    assert ("label", "Set a preview range or select keys", 'INFO') in log
    assert ("set", "mdm.edit_range", "extend_seconds") in log      # Extend needs no range, only keys
    for fc in fcurves(source)[:3]:
        for point in fc.keyframe_points:
            point.select_control_point = 52 <= point.co[0] <= 75
    assert editor.timeline_range(bpy.context) == (52, 75, "selected keys")
    scene.use_preview_range, scene.frame_preview_start, scene.frame_preview_end = True, 30, 90
    try:
        assert editor.timeline_range(bpy.context) == (30, 90, "preview range")
        scene.mdm.edit_mode, scene.mdm.edit_prompt, scene.mdm.seed = 'UPPER_BODY', "a person waves", 5
        log = draw()
    finally:
        scene.use_preview_range = False
    assert ("label", "Frames 30-90 (preview range)", 'NONE') in log and ("operator", "mdm.edit_range") in log
    assert {("set", "mdm.edit_range", k) for k in ("frame_start", "frame_end", "mode", "prompt", "seed",
                                                   "guidance", "steps")} <= set(log)
    bpy.context.view_layer.objects.active = None
    assert ("label", "Select an SMPL rig to edit its animation", 'INFO') in draw()


# --------------------------------------------------------------------------------------------
# undo (fresh process) and the real backend
# --------------------------------------------------------------------------------------------
@pytest.mark.slow  # a Blender process and a backend server of its own
def test_one_undo_step_restores_the_previous_state(server, tmp_path):
    probe = run_probe("edit_undo_probe.py", server, tmp_path)
    assert probe["result"] == ["FINISHED"]
    assert probe["after_op"]["actions"] == ["Walk", "Walk | edit 40-80"] and probe["after_op"]["active"] != "Walk"
    assert probe["after_undo"] == probe["before"] and probe["keys_unchanged"] and probe["joints_unchanged"]


@pytest.mark.slow  # a Blender process and a backend server of its own
def test_headless_script_edits_a_saved_scene(scene, server, tmp_path):
    python, folder, _ = server
    keyed_rig(write_keyed_motion(tmp_path / "m.npz", "synthetic"))
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "scene.blend"))
    rig_name = bpy.context.active_object.name
    proc = subprocess.run([sys.executable, str(REPO / "blender_mdm_addon" / "headless.py"), "--", "--edit", "30", "70",
                           "--rig", rig_name, "--edit-mode", "UPPER_BODY", "--steps", "3", "--python", python,
                           "--model-dir", str(folder / "model"), "--text-encoder-dir", str(folder / "clip"),
                           "--device", "cpu", "--open", str(tmp_path / "scene.blend"),
                           "--save", str(tmp_path / "e.blend")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("MDM_RESULT "))[11:])
    assert summary["actions"] == ["Walk | upper body 30-70"] and summary["edit_range"] == [30, 70]
    assert (tmp_path / "e.blend").is_file()


def test_rig_frame_snaps_to_the_axes_and_inverts(addon):
    from blender_mdm_addon.rig import RigBinding
    from backend.motion.quaternion import axis_angle_to_matrix
    z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    names, eye = [None] * 24, np.tile(np.eye(3), (24, 1, 1))
    tilted = RigBinding(names, eye, np.zeros((24, 3)), axis_angle_to_matrix(np.array([0.03, 0.0, 0.02])) @ z_up,
                        100.0, np.array([1.0, 2.0, 3.0]))
    assert np.array_equal(tilted.snapped_to_axes().align_rot, z_up)      # 2 degrees off: snapped
    skewed = RigBinding(names, eye, np.zeros((24, 3)), axis_angle_to_matrix(np.array([0.0, 0.0, 0.3])), 1.0, np.zeros(3))
    assert skewed.snapped_to_axes() is skewed                            # 17 degrees: a rotated rig, kept
    points = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(tilted.from_armature(tilted.to_armature(points)), points, atol=1e-12)
