"""Run in a separate process by test_addon_edit.py: the modal (GUI) path of mdm.edit_range, driven
by fake timer events. In the background bpy module the window manager never removes a modal
handler, and on Blender 4.2 a handler left over from one test crashes a later add-on unregister,
so these runs get a process of their own. Prints the checks as one JSON line.
Arguments: backend python, the tiny model's folder (model/, clip/), the motion .npz."""
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
import bpy  # noqa: E402  (first: it makes addon_utils importable)
import addon_utils  # noqa: E402
from addon_helpers import FakeClient  # noqa: E402
from edit_helpers import key_snapshot, same_keys  # noqa: E402

python, folder, motion = sys.argv[sys.argv.index("--") + 1:]
addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None)
from blender_mdm_addon import controller, operators  # noqa: E402

TIMER, ESC = SimpleNamespace(type='TIMER', value='NOTHING'), SimpleNamespace(type='ESC', value='PRESS')
operators.MODAL_IN_BACKGROUND = True
prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
bpy.context.scene.render.fps = 24
bpy.ops.mdm.import_result(filepath=motion)
rig = bpy.context.active_object
rig.animation_data.action.name = "Walk"
checks = {}


def snapshot():
    return sorted(a.name for a in bpy.data.actions), rig.animation_data.action.name, key_snapshot(bpy.data.actions["Walk"])


def unchanged(before) -> bool:
    now = snapshot()
    return before[:2] == now[:2] and same_keys(before[2], now[2]) == []


# --- cancel (scripted fake backend): nothing written, the input file removed -----------------
prefs.python_exe = sys.executable
fake = FakeClient()
controller.CONTROLLER.client_factory = fake.connect
before = snapshot()
checks["starts modal"] = bpy.ops.mdm.edit_range(frame_start=40, frame_end=80) == {'RUNNING_MODAL'}
op = operators.ACTIVE_MODAL
for _ in range(3):
    op.modal(bpy.context, TIMER)
checks["progress label"] = controller.CONTROLLER.label == "Diffusion step 2/5"
checks["nothing written while running"] = unchanged(before)
input_path = fake.submitted[-1][1]["input_path"]
checks["input file while running"] = fake.submitted[-1][0] == "edit" and os.path.exists(input_path)
checks["esc keeps running"] = op.modal(bpy.context, ESC) == {'RUNNING_MODAL'}
checks["cancelled"] = (op.modal(bpy.context, TIMER) == {'CANCELLED'}
                       and controller.CONTROLLER.state == controller.CANCELLED)
checks["cancel changes nothing"] = unchanged(before) and not os.path.exists(input_path)
bpy.ops.mdm.edit_range(frame_start=40, frame_end=80)     # opening another file drops the operator
operators._on_load_pre(None)
checks["file load cancels"] = not controller.CONTROLLER.busy and fake.cancelled == ["job1", "job2"]
checks["file load removes the input"] = not os.path.exists(fake.submitted[-1][1]["input_path"])

# --- to completion (the real backend server) ------------------------------------------------
controller.CONTROLLER.stop_backend()  # drop the fake client
controller.CONTROLLER.client_factory = controller.default_client_factory
prefs.python_exe, prefs.model_dir, prefs.text_encoder_dir, prefs.device = (python, str(Path(folder) / "model"),
                                                                           str(Path(folder) / "clip"), 'cpu')
checks["starts modal (real)"] = bpy.ops.mdm.edit_range(frame_start=40, frame_end=80, steps=5) == {'RUNNING_MODAL'}
op, deadline, labels = operators.ACTIVE_MODAL, time.monotonic() + 120, set()
while (result := op.modal(bpy.context, TIMER)) == {'RUNNING_MODAL'} and time.monotonic() < deadline:
    labels.add(controller.CONTROLLER.label)
    time.sleep(0.002)
checks["finished"] = result == {'FINISHED'}
checks["showed diffusion progress"] = any(label.startswith("Diffusion step") for label in labels)
checks["new action assigned"] = rig.animation_data.action.name == "Walk | edit 40-80"
controller.CONTROLLER.stop_backend()
print("PROBE " + json.dumps(checks), flush=True)
