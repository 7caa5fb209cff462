"""Run in a separate process by test_addon_headless.py (undo replaces Blender's data in place, so
the test process keeps no Python references into it): key a result / run generate as one undo step
on a scene with a user's animated SMPL rig, undo, and print what is left as one JSON line."""
import json
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
import bpy  # noqa: E402  (first: it makes addon_utils importable)
import addon_utils  # noqa: E402
from addon_helpers import FakeClient, write_result  # noqa: E402

mode, result_path = sys.argv[sys.argv.index("--") + 1:]
addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None)
bpy.context.preferences.addons["blender_mdm_addon"].preferences.python_exe = sys.executable
from blender_mdm_addon import controller  # noqa: E402

write_result(Path(result_path), num_samples=2, num_frames=20)
bpy.ops.mdm.import_result(filepath=result_path)             # a first generation: the "user's" rig
rig = bpy.context.active_object
user_action = rig.animation_data.action
user_action.name = "UserAction"
rig_name = rig.name
fcurves = user_action.layers[0].strips[0].channelbags[0].fcurves if hasattr(user_action, "layers") else user_action.fcurves
fingerprint = lambda: [p.co[1] for fc in fcurves for p in fc.keyframe_points][:200]  # noqa: E731
before = {"objects": sorted(o.name for o in bpy.data.objects), "actions": sorted(a.name for a in bpy.data.actions)}
keys_before = fingerprint()

bpy.ops.ed.undo_push(message="before MDM")  # background mode starts with undo off; this turns it on
if mode == "import":
    bpy.ops.mdm.import_result('EXEC_DEFAULT', True, filepath=result_path, target='SELECTED')
else:
    fake = FakeClient()
    fake.result_path = result_path
    controller.CONTROLLER.client_factory = fake.connect
    bpy.ops.mdm.generate('EXEC_DEFAULT', True, prompt="a person waves", target='NEW')
after_op = {"objects": sorted(o.name for o in bpy.data.objects), "actions": sorted(a.name for a in bpy.data.actions)}
bpy.ops.ed.undo()
rig = bpy.data.objects[rig_name]
after_undo = {"objects": sorted(o.name for o in bpy.data.objects), "actions": sorted(a.name for a in bpy.data.actions)}
user_action = bpy.data.actions["UserAction"]
fcurves = user_action.layers[0].strips[0].channelbags[0].fcurves if hasattr(user_action, "layers") else user_action.fcurves
print("PROBE " + json.dumps({"before": before, "after_op": after_op, "after_undo": after_undo,
                             "keys_unchanged": fingerprint() == keys_before,
                             "active_action": rig.animation_data.action.name}), flush=True)
