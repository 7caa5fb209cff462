"""Run in a separate process by test_addon_edit.py (undo replaces Blender's data in place, so the
test process keeps no Python references into it): key a motion on an SMPL rig, edit frames 40-80
(through a backend server of its own) as one undo step, undo, and print what is left as one JSON
line. Arguments: backend python, the tiny model's folder (model/, clip/), the motion .npz."""
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
import bpy  # noqa: E402  (first: it makes addon_utils importable)
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402
from edit_helpers import joints_over, key_snapshot, same_keys  # noqa: E402

python, folder, motion = sys.argv[sys.argv.index("--") + 1:]
addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None)
prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
prefs.python_exe, prefs.model_dir, prefs.text_encoder_dir, prefs.device = (python, str(Path(folder) / "model"),
                                                                           str(Path(folder) / "clip"), 'cpu')
from blender_mdm_addon import controller  # noqa: E402

bpy.context.scene.render.fps = 24
bpy.ops.mdm.import_result(filepath=motion)
rig = bpy.context.active_object
rig.animation_data.action.name = "Walk"
rig_name = rig.name


def summary():
    rig = bpy.data.objects[rig_name]
    return {"objects": sorted(o.name for o in bpy.data.objects), "actions": sorted(a.name for a in bpy.data.actions),
            "active": rig.animation_data.action.name}


before, keys_before = summary(), key_snapshot(bpy.data.actions["Walk"])
joints_before = joints_over(rig, range(1, 120))
bpy.ops.ed.undo_push(message="before MDM")  # background mode starts with undo off; this turns it on
result = bpy.ops.mdm.edit_range('EXEC_DEFAULT', True, frame_start=40, frame_end=80, steps=3)
after_op = summary()
bpy.ops.ed.undo()
after_undo = summary()
joints_after = joints_over(bpy.data.objects[rig_name], range(1, 120))
controller.CONTROLLER.stop_backend()
print("PROBE " + json.dumps({
    "result": sorted(result), "before": before, "after_op": after_op, "after_undo": after_undo,
    "keys_unchanged": same_keys(keys_before, key_snapshot(bpy.data.actions["Walk"])) == [],
    "joints_unchanged": bool(np.array_equal(joints_before, joints_after))}), flush=True)
