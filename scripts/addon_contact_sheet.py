"""Contact sheet of a keyed rig, from Blender's *evaluated* bones (what the viewport shows).

    python scripts/addon_contact_sheet.py -- RESULT.npz OUT.png [--fps 24] [--frames 8]

Keys RESULT.npz with the add-on (mdm.import_result), reads the 22 joint positions after
``frame_set`` at every scene frame, turns them back into the y-up canonical frame and draws them with
the shared ``backend.motion.preview`` (the background bpy module has no GPU context for
Workbench/EEVEE; Cycles on CPU works but a stick figure says more here).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import bpy  # noqa: E402
import addon_utils  # noqa: E402
import numpy as np  # noqa: E402

from backend.motion.preview import write_contact_sheet  # noqa: E402
from backend.motion.skeleton import HML_JOINT_NAMES  # noqa: E402

Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # Blender (x, y, z) -> (x, z, -y)


def main():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    p = argparse.ArgumentParser()
    p.add_argument("result")
    p.add_argument("out")
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args(argv)
    addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None)
    scene = bpy.context.scene
    scene.render.fps = args.fps
    bpy.ops.mdm.import_result(filepath=str(Path(args.result).resolve()))
    rig = bpy.context.active_object
    first, last = (int(x) for x in rig.animation_data.action["mdm_frame_range"])
    joints = []
    for f in range(first, last + 1):
        scene.frame_set(f)
        ev = rig.evaluated_get(bpy.context.evaluated_depsgraph_get())
        mw = np.array(ev.matrix_world)
        heads = np.array([ev.pose.bones[name].head[:] for name in HML_JOINT_NAMES]) @ mw[:3, :3].T + mw[:3, 3]
        joints.append(heads @ Z_UP_TO_Y_UP.T)
    write_contact_sheet(args.out, np.array(joints), frames=args.frames)
    print(f"wrote {args.out}: {len(joints)} scene frames at {args.fps} fps, {args.frames} shown")


if __name__ == "__main__":
    main()
