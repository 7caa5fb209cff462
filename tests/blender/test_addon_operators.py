"""Operators and UI: register/unregister, the modal generate driven by fake timer events to
completion and to cancellation, the blocking path, error paths that must change nothing, and the
panel drawn in every controller state through a recording fake layout."""
from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from addon_helpers import RecordingLayout, write_result

bpy = pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")
from blender_mdm_addon import controller, operators, panel

TIMER = SimpleNamespace(type='TIMER', value='NOTHING')
ESC = SimpleNamespace(type='ESC', value='PRESS')


def scene_state():
    """What 'nothing changed' compares: every object, action and armature by name."""
    return (sorted(o.name for o in bpy.data.objects), sorted(a.name for a in bpy.data.actions),
            sorted(a.name for a in bpy.data.armatures))


def drive(op, events=None, limit=100):
    """Feed timer events (and any scripted ones first) until the modal operator returns."""
    for event in list(events or []) + [TIMER] * limit:
        result = op.modal(bpy.context, event)
        if result != {'RUNNING_MODAL'}:
            return result
    raise AssertionError("the modal operator never finished")


@pytest.fixture
def modal(monkeypatch):
    monkeypatch.setattr(operators, "MODAL_IN_BACKGROUND", True)


def test_register_unregister_cleanly(addon):
    import addon_utils
    addon_utils.disable("blender_mdm_addon", default_set=True)
    assert not hasattr(bpy.types, "MDM_OT_generate") and not hasattr(bpy.types.Scene, "mdm")
    assert not hasattr(bpy.types, "MDM_PT_panel")
    assert not any(h.__module__.startswith("blender_mdm_addon") for h in bpy.app.handlers.load_pre)
    private = "blender_mdm_addon.backend"
    assert not any(name == private or name.startswith(private + ".") for name in sys.modules)
    assert addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None) is not None
    bpy.context.preferences.addons["blender_mdm_addon"].preferences.python_exe = sys.executable
    assert hasattr(bpy.types, "MDM_PT_panel") and hasattr(bpy.types.Scene, "mdm")
    assert "backend" not in sys.modules or "site-packages" not in str(sys.modules["backend"]), \
        "the add-on must load its backend privately"


def test_modal_generate_to_completion(scene, fake, modal, tmp_path):
    fake.result_path = str(write_result(tmp_path / "r.npz", num_samples=2, num_frames=20))
    assert bpy.ops.mdm.generate(prompt="a person waves", seconds=1.0, seed=7, num_samples=2,
                                upper_prompt=" a person claps ") == {'RUNNING_MODAL'}
    op = operators.ACTIVE_MODAL
    assert controller.CONTROLLER.busy and scene_state() == ([], [], [])  # nothing written while running
    op.modal(bpy.context, TIMER)
    assert controller.CONTROLLER.state == controller.LOADING and controller.CONTROLLER.label == "Loading model…"
    op.modal(bpy.context, TIMER)
    assert controller.CONTROLLER.label == "Diffusion step 1/5" and controller.CONTROLLER.fraction == pytest.approx(0.2)
    assert op.modal(bpy.context, SimpleNamespace(type='MOUSEMOVE', value='NOTHING')) == {'PASS_THROUGH'}
    assert drive(op) == {'FINISHED'}
    assert operators.ACTIVE_MODAL is None and controller.CONTROLLER.state == controller.DONE
    op_name, params = fake.submitted[0]
    assert op_name == "generate" and params["prompt"] == "a person waves" and params["num_samples"] == 2
    assert params["fit"] is True and params["model_dir"] is None and params["device"] == "auto"
    assert (params["upper_prompt"], params["foot_lock"]) == ("a person claps", True)
    assert len([o for o in bpy.data.objects if o.type == 'ARMATURE']) == 1 and len(bpy.data.actions) == 2


@pytest.mark.parametrize("how", ["esc", "button"])
def test_modal_generate_cancel(scene, fake, modal, tmp_path, how):
    fake.result_path = str(write_result(tmp_path / "r.npz", num_samples=1, num_frames=20))
    bpy.ops.mdm.generate(prompt="a person waves")
    op = operators.ACTIVE_MODAL
    for _ in range(3):
        op.modal(bpy.context, TIMER)
    if how == "esc":
        assert op.modal(bpy.context, ESC) == {'RUNNING_MODAL'}
    else:
        assert bpy.ops.mdm.cancel() == {'FINISHED'}
    assert fake.cancelled == ["job1"]
    assert drive(op) == {'CANCELLED'}
    assert controller.CONTROLLER.state == controller.CANCELLED
    assert scene_state() == ([], [], []), "a cancelled job must not touch the scene"
    assert not bpy.ops.mdm.cancel.poll()


def test_opening_a_file_cancels_an_orphaned_job(scene, fake, modal):
    from blender_mdm_addon.operators import _on_load_pre
    bpy.ops.mdm.generate(prompt="a person waves")
    assert controller.CONTROLLER.busy
    _on_load_pre(None)  # what bpy.app.handlers.load_pre runs when another .blend opens
    assert fake.cancelled == ["job1"] and not controller.CONTROLLER.busy and operators.ACTIVE_MODAL is None
    assert _on_load_pre in bpy.app.handlers.load_pre


def test_blocking_generate_in_background(scene, fake, tmp_path, capsys):
    fake.result_path = str(write_result(tmp_path / "r.npz", num_samples=1, num_frames=20))
    assert bpy.ops.mdm.generate(prompt="a person waves", steps=5) == {'FINISHED'}
    assert fake.submitted[0][1]["steps"] == 5
    assert bpy.data.actions[0]["mdm_prompt"] == "a person waves"
    assert "MDM: diffusion 5/5" in capsys.readouterr().out
    assert controller.CONTROLLER.message == "Keyed 1 sample(s) on SMPL a person waves | seed 0"
    # words the model never saw (the backend hid them) are named in the status line
    fake.result_path = str(write_result(tmp_path / "u.npz", num_samples=1, num_frames=20,
                                        prompt="a person springs upward", unseen_words=["springs"]))
    assert bpy.ops.mdm.generate(prompt="a person springs upward") == {'FINISHED'}
    assert controller.CONTROLLER.message.startswith("Keyed 1 sample(s) on SMPL")
    assert "(Not in the model's vocabulary: springs; it followed the sentence's overall meaning)" in \
        capsys.readouterr().out
    note = ("label", "Not in the model's vocabulary: springs", 'INFO')
    springs_rig = bpy.context.view_layer.objects.active
    assert note in draw()
    fake.result_path = str(tmp_path / "r.npz")
    bpy.ops.mdm.generate(prompt="a person waves")                # the next result has no note
    assert bpy.context.view_layer.objects.active != springs_rig and note not in draw()
    bpy.context.view_layer.objects.active = springs_rig          # the note stays with its take
    assert note in draw()
    # words the backend read as a related word it knows: named as such, not as "not understood"
    fake.result_path = str(write_result(tmp_path / "w.npz", num_samples=1, num_frames=20,
                                        prompt="a person springs upward", unseen_words=[],
                                        reworded={"springs": "jumps"}))
    assert bpy.ops.mdm.generate(prompt="a person springs upward") == {'FINISHED'}
    out = capsys.readouterr().out
    assert "(Read springs as jumps)" in out and "overall meaning" not in out
    assert ("label", "Read springs as jumps", 'INFO') in draw()


def test_dead_backend_changes_nothing(scene, fake, modal):
    fake.steps = 50
    bpy.ops.mdm.generate(prompt="a person waves")
    op = operators.ACTIVE_MODAL
    op.modal(bpy.context, TIMER)
    fake.die()  # the process crashed mid-job
    assert drive(op) == {'CANCELLED'}
    assert controller.CONTROLLER.state == controller.ERROR and "exited" in controller.CONTROLLER.message
    assert "blender_mdm_backend.log" in controller.CONTROLLER.message
    assert scene_state() == ([], [], [])
    # the next job restarts it; in background mode the same failure is an operator error
    fake.steps = 1
    fake.error = {"code": "backend_died", "message": "the backend process exited (exit code 1)"}
    with pytest.raises(RuntimeError, match="the backend process exited"):
        bpy.ops.mdm.generate(prompt="again", blocking=True)
    assert fake.starts == 2 and fake.alive and scene_state() == ([], [], [])


def test_missing_backend_python_changes_nothing(scene, fake, tmp_path):
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.python_exe = str(tmp_path / "no" / "python")
    try:
        before = scene_state()
        with pytest.raises(RuntimeError, match="backend Python .*does not exist"):
            bpy.ops.mdm.generate(prompt="a person waves")
        assert scene_state() == before and fake.submitted == []
    finally:
        prefs.python_exe = sys.executable


def test_missing_model_folder_changes_nothing(scene, fake, tmp_path):
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.model_dir = str(tmp_path / "missing_model")
    try:
        with pytest.raises(RuntimeError, match="model folder .*missing_model does not exist"):
            bpy.ops.mdm.generate(prompt="a person waves")
        (tmp_path / "missing_model").mkdir()
        with pytest.raises(RuntimeError, match="has no args.json"):
            bpy.ops.mdm.generate(prompt="a person waves")
        assert scene_state() == ([], [], []) and fake.submitted == []
    finally:
        prefs.model_dir = ""


def test_an_onnx_export_folder_is_a_model_folder(scene, fake, modal, tmp_path):
    """A folder written by `python -m backend export-onnx` passes the pre-flight check and goes to the
    backend as model_dir (the backend then runs it on ONNX Runtime)."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "onnx_manifest.json").write_text("{}")
    fake.result_path = str(write_result(tmp_path / "r.npz", num_samples=1, num_frames=20))
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.model_dir = str(export)
    try:
        assert bpy.ops.mdm.generate(prompt="a person waves") == {'RUNNING_MODAL'}
        assert drive(operators.ACTIVE_MODAL) == {'FINISHED'}
        assert fake.submitted[0][1]["model_dir"] == str(export)
    finally:
        prefs.model_dir = ""


def test_non_smpl_armature_target_changes_nothing(scene, fake, tmp_path):
    arm = bpy.data.armatures.new("Robot")
    obj = bpy.data.objects.new("Robot", arm)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    for name in ("root", "spine", "arm"):
        arm.edit_bones.new(name).tail = (0, 0, 1)
    bpy.ops.object.mode_set(mode='OBJECT')
    before = scene_state()
    with pytest.raises(RuntimeError, match="'Robot' is not an SMPL rig: no bone for pelvis"):
        bpy.ops.mdm.generate(prompt="a person waves", target='SELECTED')
    assert fake.submitted == []
    path = write_result(tmp_path / "r.npz", num_samples=1, num_frames=10)
    with pytest.raises(RuntimeError, match="not an SMPL rig"):
        bpy.ops.mdm.import_result(filepath=str(path), target='SELECTED')
    assert scene_state() == before and obj.animation_data is None


def test_bad_result_file_is_reported(scene, tmp_path):
    import numpy as np
    np.savez(tmp_path / "joints_only.npz", joints=np.zeros((1, 5, 22, 3), np.float32))
    with pytest.raises(RuntimeError, match="missing poses, trans, rest_joints .*generate with --fit"):
        bpy.ops.mdm.import_result(filepath=str(tmp_path / "joints_only.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(RuntimeError, match="junk.npz: not a readable .npz"):
        bpy.ops.mdm.import_result(filepath=str(tmp_path / "junk.npz"))
    assert scene_state() == ([], [], [])


# --- the panel ---------------------------------------------------------------------------------
def draw(context=None):
    log = []
    panel.draw_panel(RecordingLayout(log), context or bpy.context)
    return log


def test_panel_draws_in_every_state(scene, fake, modal, tmp_path, monkeypatch):
    log = draw()  # no backend
    assert ("label", "Backend: not running (starts on Generate)", 'UNLINKED') in log and ("operator", "mdm.generate") in log
    assert {("set", "mdm.generate", k) for k in ("prompt", "seconds", "seed", "guidance", "steps", "num_samples",
                                                 "output", "target", "start_frame")} <= set(log)
    fake.result_path = str(write_result(tmp_path / "r.npz", num_samples=2, num_frames=10))
    bpy.ops.mdm.generate(prompt="a person waves")
    op = operators.ACTIVE_MODAL
    op.modal(bpy.context, TIMER)
    log = draw()  # loading
    assert ("progress", 0.0, "Loading model…") in log and ("operator", "mdm.cancel") in log
    assert ("operator", "mdm.generate") not in log
    op.modal(bpy.context, TIMER)
    op.modal(bpy.context, TIMER)
    assert ("progress", 0.4, "Diffusion step 2/5") in draw()  # running
    drive(op)
    log = draw()  # done, with the sample picker for the new rig (active object)
    assert ("label", "Keyed 2 sample(s) on SMPL a person waves | seed 0", "CHECKMARK") in log
    assert [e for e in log if e[:2] == ("set", "mdm.pick_sample")] == [("set", "mdm.pick_sample", "action")] * 2
    fake.error = {"code": "bad_checkpoint", "message": "model.pt is truncated; download it again"}
    bpy.ops.mdm.generate(prompt="a person waves")
    drive(operators.ACTIVE_MODAL)
    assert ("label", "model.pt is truncated; download it again", 'ERROR') in draw()  # error
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.python_exe = ""
    setup_check = sys.modules["blender_mdm_addon.setup_check"]
    monkeypatch.setattr(setup_check, "dev_venv_python", lambda: tmp_path / "no-venv" / "python")
    try:
        log = draw()
    finally:
        prefs.python_exe = sys.executable
    assert any(e[0] == "label" and e[2] == 'ERROR' and "backend Python" in e[1] for e in log)
    scene.mdm.output, prefs.smpl_dir = 'VERTEX', str(tmp_path)  # mesh output without an SMPL file
    try:
        assert any(e[0] == "label" and e[2] == 'ERROR' and "no SMPL model file" in e[1] for e in draw())
    finally:
        scene.mdm.output, prefs.smpl_dir = 'ARMATURE', ""


def test_pick_sample_switches_active_action(scene, tmp_path):
    path = write_result(tmp_path / "r.npz", num_samples=3, num_frames=10)
    bpy.ops.mdm.import_result(filepath=str(path))
    rig = bpy.context.active_object
    first = rig.animation_data.action
    third = next(a for a in bpy.data.actions if a["mdm_sample"] == 2)
    assert bpy.ops.mdm.pick_sample(action=third.name) == {'FINISHED'}
    assert rig.animation_data.action == third and first.use_fake_user
