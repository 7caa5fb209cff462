"""Run inside bpy: ``python rig_motion_probe.py FILE.blend`` prints one JSON line about the SMPL rig's
active action — its key span, its edit range, the pelvis height and the largest per-frame bone
acceleration (m per frame², world space) before the edit and around its start."""
import json
import sys

import bpy
import numpy as np

bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
rig = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
action = rig.animation_data.action
first, last = (int(x) for x in action["mdm_frame_range"])
start, end = (int(x) for x in action["mdm_edit_range"])
mw = np.array(rig.matrix_world)
heads = []
for frame in range(first, last + 1):
    bpy.context.scene.frame_set(frame)
    heads.append([mw[:3, :3] @ np.array(b.head) + mw[:3, 3] for b in rig.pose.bones])
joints = np.array(heads)                                           # [F, bones, 3], z up
accel = np.linalg.norm(np.diff(joints, 2, axis=0), axis=-1).max(-1)   # entry k: frame first + k + 1
join = slice(start - first - 2, start - first + 12)                # the fade-in and just after
print("PROBE " + json.dumps({"span": [first, last], "edit": [start, end],
                             "pelvis": joints[:, 0, 2].tolist(),
                             "accel_before": float(accel[:start - first - 2].max()),
                             "accel_join": float(accel[join].max())}))
