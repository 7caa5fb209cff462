"""Run inside bpy: ``python rig_motion_probe.py FILE.blend [FRAMES_AFTER]`` prints one JSON line
about the SMPL rig's active action, evaluated from its first key to FRAMES_AFTER frames past its
last one (a loop's next cycles): the key span, the edit range if any, whether it is cyclic, the
pelvis height per frame and the largest bone acceleration per frame (m per frame², world space;
entry i belongs to frame first + i + 1)."""
import json
import sys

import bpy
import numpy as np

bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
after = int(sys.argv[2]) if len(sys.argv) > 2 else 0
rig = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
action = rig.animation_data.action
first, last = (int(x) for x in action["mdm_frame_range"])
mw = np.array(rig.matrix_world)
heads = []
for frame in range(first, last + after + 1):
    bpy.context.scene.frame_set(frame)
    heads.append([mw[:3, :3] @ np.array(b.head) + mw[:3, 3] for b in rig.pose.bones])
joints = np.array(heads)                                              # [F, bones, 3], z up
accel = np.linalg.norm(np.diff(joints, 2, axis=0), axis=-1).max(-1)
print("PROBE " + json.dumps({"span": [first, last],
                             "edit": list(action["mdm_edit_range"]) if "mdm_edit_range" in action else None,
                             "cyclic": bool(action.use_cyclic), "pelvis": joints[:, 0, 2].tolist(),
                             "accel": accel.tolist()}))
