"""Keying a result .npz (mdm.import_result, the path generate uses too): the evaluated joints of the
keyed rig must reproduce the fitted SMPL joints, for our rig and for a user's differently-built one."""
from __future__ import annotations

import json

import numpy as np
import pytest
from addon_helpers import NAMES, evaluated_joints, reference_joints, tpose_rest_joints, write_result

bpy = pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")


@pytest.mark.parametrize("fps", [20, 24, 30])
def test_import_matches_fitted_joints_at_every_frame(scene, tmp_path, fps):
    path = write_result(tmp_path / "r.npz", num_samples=2, num_frames=50, lengths=[50, 37])
    scene.render.fps = fps
    assert bpy.ops.mdm.import_result(filepath=str(path), start_frame=5) == {'FINISHED'}
    rig = next(o for o in scene.objects if o.type == 'ARMATURE')
    from backend.motion.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS
    assert sorted(b.name for b in rig.data.bones) == sorted(SMPL_JOINT_NAMES)
    for j, name in enumerate(SMPL_JOINT_NAMES):
        parent = rig.data.bones[name].parent
        assert (parent.name if parent else None) == (SMPL_JOINT_NAMES[SMPL_PARENTS[j]] if j else None)
    assert scene.render.fps == fps, "the scene fps must never change"
    for k, action in enumerate(sorted((a for a in bpy.data.actions), key=lambda a: a["mdm_sample"])):
        bpy.ops.mdm.pick_sample(action=action.name) if k else None
        assert rig.animation_data.action == action
        ref = reference_joints(path, k, fps)
        assert action.frame_range[:] == pytest.approx((5, 5 + len(ref) - 1))
        errors = [np.abs(evaluated_joints(rig, 5 + i) - ref[i]).max() for i in range(len(ref))]
        assert max(errors) < 0.01, f"sample {k}: worst joint error {max(errors) * 100:.2f} cm"


def test_in_place_root_motion_keys_the_same_body_without_its_travel(scene, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=40)
    scene.render.fps = 20
    assert bpy.ops.mdm.import_result(filepath=str(path), root_motion='IN_PLACE') == {'FINISHED'}
    rig = bpy.context.active_object
    assert json.loads(rig.animation_data.action["mdm_recipe"])["root_motion"] == 'IN_PLACE'
    ref = reference_joints(path, 0, 20)                                   # world, z-up: x/y horizontal
    travel = ref[:, 0] - ref[0, 0]
    assert np.abs(travel[:, :2]).max() > 1.0                             # the result itself walks ~2 m
    travel[:, 2] = 0.0
    for frame in (1, 13, 27, 40):
        joints = evaluated_joints(rig, frame)
        assert np.abs(joints - (ref[frame - 1] - travel[frame - 1])).max() < 0.01, f"frame {frame}"
        assert np.abs(joints[0, :2] - ref[0, 0, :2]).max() < 1e-3      # the pelvis stays over its first spot
    with pytest.raises(TypeError):
        bpy.ops.mdm.import_result(filepath=str(path), root_motion='SIDEWAYS')


@pytest.mark.parametrize("fps", [24, 30])
def test_loop_keys_one_closed_cycle_that_repeats_with_its_travel(scene, tmp_path, fps):
    path = write_result(tmp_path / "r.npz", num_samples=2, num_frames=80, lengths=[80, 60])
    scene.render.fps = fps
    assert bpy.ops.mdm.import_result(filepath=str(path), loop=True) == {'FINISHED'}
    rig = bpy.context.active_object
    pelvis_location = f'pose.bones["{NAMES[0]}"].location'
    for action in sorted(bpy.data.actions, key=lambda a: a["mdm_sample"]):
        rig.animation_data.action = action
        assert action.use_cyclic and json.loads(action["mdm_recipe"])["loop"] is True
        start, end = action["mdm_loop_source_frames"]
        first, last = (int(x) for x in action["mdm_frame_range"])
        period = last - first
        assert period == round((end - start) * fps / 20) and end - start >= 20       # at least a 1 s cycle
        curves = fcurves_of(action, rig)
        assert curves and all(len(c.modifiers) == 1 and c.modifiers[0].type == 'CYCLES' for c in curves)
        assert {c.modifiers[0].mode_after for c in curves if c.data_path == pelvis_location} == {'REPEAT_OFFSET'}
        assert {c.modifiers[0].mode_after for c in curves if c.data_path != pelvis_location} == {'REPEAT'}
        joints = np.array([evaluated_joints(rig, first + i) for i in range(3 * period + 1)])
        travel = joints[period, 0] - joints[0, 0]
        assert abs(travel[2]) < 1e-4                                          # the height comes back
        # the next cycles are the first one moved on by the travel: the same poses, no seam
        for c in (1, 2):
            np.testing.assert_allclose(joints[c * period:(c + 1) * period] - c * travel, joints[:period], atol=1e-4)
    # (seam smoothness on a real walk: tests/test_demo_command.py; this random motion does not repeat)
    from blender_mdm_addon import importer
    recipe = json.loads(rig.animation_data.action["mdm_recipe"])
    assert isinstance(recipe["loop_seam_cm"], float) and recipe["loop_seam_cm"] >= 0
    assert "does not repeat well" in importer.loop_note({"loop": True, "loop_seam_cm": 12.0})
    assert importer.loop_note({"loop": True, "loop_seam_cm": 1.0}) == importer.loop_note({"loop_seam_cm": 12.0}) == ""
    # vertex animation cannot loop; too short a motion has no cycle: refused, nothing created
    before = sorted(a.name for a in bpy.data.actions), sorted(o.name for o in bpy.data.objects)
    with pytest.raises(RuntimeError, match="choose output Armature or Armature \\+ Mesh"):
        bpy.ops.mdm.import_result(filepath=str(path), loop=True, output='VERTEX')
    with pytest.raises(RuntimeError, match="a loop needs a motion longer than"):
        bpy.ops.mdm.import_result(filepath=str(write_result(tmp_path / "s.npz", num_samples=1, num_frames=15)),
                                  loop=True)
    assert (sorted(a.name for a in bpy.data.actions), sorted(o.name for o in bpy.data.objects)) == before


def test_an_in_place_loop_is_a_cycle_on_the_spot(scene, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=80)
    scene.render.fps = 30
    assert bpy.ops.mdm.import_result(filepath=str(path), loop=True, root_motion='IN_PLACE') == {'FINISHED'}
    rig = bpy.context.active_object
    first, last = (int(x) for x in rig.animation_data.action["mdm_frame_range"])
    period = last - first
    joints = np.array([evaluated_joints(rig, first + i) for i in range(2 * period + 1)])
    np.testing.assert_allclose(joints[period:2 * period], joints[:period], atol=1e-4)   # no travel between cycles
    assert np.abs(joints[:, 0, :2] - joints[0, 0, :2]).max() < 1e-3                   # the pelvis stays on its spot


def fcurves_of(action, obj):
    from blender_mdm_addon import keying
    return list(keying.Channels(action, obj).curves)


def test_recipe_names_and_samples(scene, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=3, num_frames=20, prompt="a person  jumps\nhigh")
    bpy.ops.mdm.import_result(filepath=str(path))
    actions = sorted(bpy.data.actions, key=lambda a: a["mdm_sample"])
    assert [a.name for a in actions] == [f"a person jumps high | seed 7 #{k}" for k in (1, 2, 3)]
    for a in actions:
        assert (a["mdm_prompt"], a["mdm_seed"], a["mdm_steps"], a["mdm_guidance"]) == ("a person  jumps\nhigh", 7, 10, 2.5)
        assert a["mdm_model_id"] == "synthetic" and a["mdm_backend_version"] == "0.1.0"
        assert list(a["mdm_frame_range"]) == [1, 23]  # 19 / 20 s at 24 fps and a.use_fake_user
    assert len({a["mdm_batch"] for a in actions}) == 1
    import json
    assert json.loads(actions[0]["mdm_recipe"])["model_id"] == "synthetic"


def test_big_cli_seed_is_kept(scene, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=5)
    data = dict(np.load(path))
    data["recipe"] = np.array('{"prompt": "x", "seed": 9007199254740993}')
    np.savez(path, **data)
    assert bpy.ops.mdm.import_result(filepath=str(path)) == {'FINISHED'}
    assert bpy.data.actions[0]["mdm_seed"] == "9007199254740993"


def _user_rig(rest: np.ndarray, names, rotate_deg: float, scale: float, rolls: bool):
    """A user's SMPL rig built differently from ours: y-up armature data turned by an object
    rotation, centimetre units via object scale, random bone rolls, tails along +y."""
    arm = bpy.data.armatures.new("UserRig")
    obj = bpy.data.objects.new("UserRig", arm)
    bpy.context.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    rng = np.random.default_rng(3)
    from backend.motion.skeleton import SMPL_PARENTS
    bones = []
    for j, name in enumerate(names):
        b = arm.edit_bones.new(name)
        b.head = rest[j] * 100.0
        b.tail = rest[j] * 100.0 + np.array([0.0, 6.0, 1.0])
        b.roll = float(rng.uniform(-3, 3)) if rolls else 0.0
        if SMPL_PARENTS[j] >= 0:
            b.parent = bones[SMPL_PARENTS[j]]
        bones.append(b)
    bpy.ops.object.mode_set(mode='OBJECT')
    obj.rotation_euler = (np.radians(90.0), 0.0, np.radians(rotate_deg))
    obj.scale = (scale,) * 3
    obj.location = (1.0, 2.0, 0.0)
    return obj


def test_user_rig_with_other_axes_units_and_rolls(scene, tmp_path):
    rest = tpose_rest_joints()
    names = [f"m_avg_{n.replace('left_', 'L_').replace('right_', 'R_').title()}" for n in NAMES]
    rig = _user_rig(rest, names, rotate_deg=30.0, scale=0.01, rolls=True)
    old = bpy.data.actions.new("UserWalk")
    rig.animation_data_create()
    rig.animation_data.action = old
    path_ = 'pose.bones["m_avg_Pelvis"].location'
    fc = old.fcurve_ensure_for_datablock(rig, path_, index=2) if hasattr(old, "slots") else old.fcurves.new(path_, index=2)
    fc.keyframe_points.insert(1, 0.5)
    snapshot = [(p.co[:], p.handle_left[:]) for p in fc.keyframe_points]

    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=30, rest=rest)
    rig.select_set(True)
    bpy.context.view_layer.objects.active = rig
    assert bpy.ops.mdm.import_result(filepath=str(path), target='SELECTED') == {'FINISHED'}
    assert [o.name for o in scene.objects] == ["UserRig"], "keying a selected rig must not add objects"
    new = rig.animation_data.action
    assert new != old and old.use_fake_user and old.users >= 1
    assert [(p.co[:], p.handle_left[:]) for p in fc.keyframe_points] == snapshot, "the user's action changed"

    # The rig is y-up data under an object transform: world = M_obj @ (100 * rest-frame point).
    m = np.array(rig.matrix_world)
    data = np.load(path)
    for f in (1, 13, 24):  # scene fps 24 -> source frame (f - 1) * 20 / 24
        s = (f - 1) * 20 / 24
        if not np.isclose(s, round(s)):
            continue
        fitted = data["joints_fitted"][0, round(s), :22] * 100.0
        # Our result maps canonical y-up onto the rig's measured frame: here the rig's armature
        # space *is* canonical (scaled 100), so expected world = M_obj @ fitted.
        expected = fitted @ m[:3, :3].T + m[:3, 3]
        got = evaluated_joints(rig, f, names)
        assert np.abs(got - expected).max() < 0.01


@pytest.mark.shared
def test_real_humanml3d_motion_lands_on_its_joints(scene, tmp_path, sample_012314):
    """A real motion (HumanML3D 012314), fitted by the backend's numpy fitter and keyed at 30 fps:
    the rig's evaluated joints sit on the dataset's joints (z-up) at every frame that coincides with
    a source frame."""
    import json

    from backend.fitting.fitter import fit_joints
    from backend.motion.skeleton import SMPL_PARENTS
    _, joints = sample_012314
    fit = fit_joints(joints)
    path = tmp_path / "real.npz"
    np.savez(path, poses=fit.poses[None], trans=fit.trans[None], rest_joints=fit.rest_joints, parents=SMPL_PARENTS,
             lengths=np.array([len(joints)]), fps=np.float32(20.0), recipe=np.array(json.dumps({"prompt": "012314"})))
    scene.render.fps = 30
    assert bpy.ops.mdm.import_result(filepath=str(path)) == {'FINISHED'}
    rig = bpy.context.active_object
    z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    for src in range(0, len(joints), 2):  # source frame 2i is scene frame 1 + 3i at 30 fps
        got = evaluated_joints(rig, 1 + src * 3 // 2)
        assert np.abs(got - joints[src] @ z_up.T).max() < 0.01, f"source frame {src}"


def test_rig_not_in_t_pose_is_refused_and_untouched(scene, tmp_path):
    rest = tpose_rest_joints()
    a_pose = rest.copy()
    for side, chain in ((1.0, (16, 18, 20, 22)), (-1.0, (17, 19, 21, 23))):  # arms 50 degrees down
        c, s = np.cos(np.radians(50)), np.sin(np.radians(50)) * side
        shoulder = a_pose[chain[0]].copy()
        for j in chain[1:]:
            d = rest[j] - shoulder
            a_pose[j] = shoulder + np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]])
    rig = _user_rig(a_pose, NAMES + ("left_hand", "right_hand"), rotate_deg=0.0, scale=1.0, rolls=False)
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=10, rest=rest)
    bpy.context.view_layer.objects.active = rig
    with pytest.raises(RuntimeError, match="'UserRig' is not in SMPL's T-pose at rest: joint '(left|right)_(hand|wrist)'"):
        bpy.ops.mdm.import_result(filepath=str(path), target='SELECTED')
    assert rig.animation_data is None and len(bpy.data.actions) == 0
