"""Edit Range, the Blender side (bpy module): reading the rig over a full 196-frame model window and
writing an edited range back, on a bare SMPL rig and on one with a 6,890-vertex skinned mesh.

    /work/main/.venv/bin/python bench/edit_range.py        # or: blender -b --python bench/edit_range.py

Baselines, measured in the same run: reading is compared with a bare frame_set loop over the same
times (evaluating the scene is the unavoidable cost of reading whatever drives the rig: keys, NLA,
constraints, drivers; evaluating the action's F-curves alone is printed too, the floor an own-FK
reader would start from), writing with keying the same window as a new action (what mdm.generate
costs Blender-side; bench/keying.py). Targets on the bare rig: read <= 1.5 x frame_set,
write <= 6 x keying.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "blender")]

import bpy  # noqa: E402
import addon_utils  # noqa: E402
from timing import timed_ms  # noqa: E402
from addon_helpers import tpose_rest_joints, write_result, write_synthetic_smpl  # noqa: E402

FRAMES, RANGE, READ_TARGET, WRITE_TARGET = 196, (60, 140), 1.5, 6.0


def main():
    addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None)
    from blender_mdm_addon import editor, keying
    from blender_mdm_addon.result_file import load_result
    tmp = Path(tempfile.mkdtemp())
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.smpl_dir = str(tmp / "smpl")
    write_synthetic_smpl(tmp / "smpl" / "SMPL_NEUTRAL.npz", tpose_rest_joints(), num_vertices=6890)
    path = write_result(tmp / "r.npz", num_samples=1, num_frames=FRAMES)
    result = load_result(path)
    scene = bpy.context.scene
    scene.render.fps = 20  # one scene frame per model frame: the window is the whole clip
    print(f"Edit Range Blender side: {FRAMES}-frame window, range {RANGE[0]}-{RANGE[1]} "
          f"(median of 5; the machine is shared, absolute times are noisy)")
    for output in ('ARMATURE', 'ARMATURE_MESH'):
        for block in list(bpy.data.objects) + list(bpy.data.actions):
            (bpy.data.objects if isinstance(block, bpy.types.Object) else bpy.data.actions).remove(block)
        bpy.ops.mdm.import_result(filepath=str(path), output=output)
        rig = next(o for o in scene.objects if o.type == 'ARMATURE')
        bpy.context.view_layer.objects.active = rig
        source = rig.animation_data.action
        binding = editor.smpl_binding(rig)
        tracks = keying.bone_tracks(result.poses[0], result.trans[0], result.rest_joints, binding, 20.0, 20.0, 1)
        baseline = timed_ms(lambda: bpy.data.actions.remove(keying.write_action(rig, "base", binding, tracks)))[0]

        job = editor.prepare_edit(bpy.context, rig, *RANGE, 'IN_BETWEEN', {"prompt": "", "seed": 0,
                                                                          "guidance": 2.5, "steps": None})
        times = job.plan.window_times
        read = timed_ms(lambda: editor.sample_joints(bpy.context, rig, binding, times))[0]
        frame_set = timed_ms(lambda: [scene.frame_set(int(t), subframe=float(t - int(t))) for t in times])[0]
        curves = list(keying.Channels(source, rig).curves)
        fcurves_only = timed_ms(lambda: [[fc.evaluate(t) for fc in curves] for t in times])[0]
        fake = load_result(path)

        def write():
            keying.assign_action(rig, source)
            bpy.data.actions.remove(editor.apply_edit(bpy.context, job, fake))
        written = timed_ms(write)[0]
        job.cleanup()
        read_ratio, write_ratio = read / frame_set, written / baseline
        verdict = "" if output != 'ARMATURE' else \
            "OK" if read_ratio <= READ_TARGET and write_ratio <= WRITE_TARGET else "SLOW"
        print(f"  {output:13s} read {read:6.1f} ms ({read / len(times) * 1000:.0f} us/frame) = {read_ratio:4.2f} x "
              f"frame_set ({frame_set:.1f} ms; F-curves alone {fcurves_only:.1f} ms)   write {written:5.1f} ms = "
              f"{write_ratio:4.1f} x keying ({baseline:.1f} ms)  {verdict}")

if __name__ == "__main__":
    main()
