"""Edit Range, the Blender side (bpy module): reading the rig over a full 196-frame model window and
writing an edited range back, on a bare SMPL rig and on one with a 6,890-vertex skinned mesh.

    /work/main/.venv/bin/python bench/edit_range.py        # or: blender -b --python bench/edit_range.py

Baseline, measured in the same run: keying the same window as a new action (what mdm.generate
costs Blender-side; bench/keying.py). Reading evaluates the whole scene once per model frame
(frame_set), so it is also compared with evaluating the action's F-curves alone for the same
samples (the floor any own-FK reader would start from, before its FK and without constraints,
drivers or NLA). Target: read + write <= 10 x the baseline keying on the bare rig.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "blender")]

import bpy  # noqa: E402
import addon_utils  # noqa: E402
from addon_helpers import tpose_rest_joints, write_result, write_synthetic_smpl  # noqa: E402

FRAMES, RANGE, TARGET_RATIO = 196, (60, 140), 10.0


def timed(fn, repeats=5):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


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
        baseline = timed(lambda: bpy.data.actions.remove(keying.write_action(rig, "base", binding, tracks)))

        job = editor.prepare_edit(bpy.context, rig, *RANGE, 'IN_BETWEEN', {"prompt": "", "seed": 0,
                                                                          "guidance": 2.5, "steps": None})
        times = job.plan.window_times
        read = timed(lambda: editor.sample_joints(bpy.context, rig, binding, times))
        curves = list(keying.Channels(source, rig).curves)
        fcurves_only = timed(lambda: [[fc.evaluate(t) for fc in curves] for t in times])
        fake = load_result(path)
        fake.joints_fitted = result.joints_fitted

        def write():
            keying.assign_action(rig, source)
            bpy.data.actions.remove(editor.apply_edit(bpy.context, job, fake))
        written = timed(write)
        job.cleanup()
        ratio = (read + written) / baseline
        verdict = "" if output != 'ARMATURE' else "OK" if ratio <= TARGET_RATIO else "SLOW"
        print(f"  {output:13s} read {read:6.1f} ms ({read / len(times) * 1000:.0f} us/frame; F-curves alone "
              f"{fcurves_only:5.1f} ms)  write {written:5.1f} ms  baseline keying {baseline:5.1f} ms  "
              f"(read + write) / baseline = {ratio:4.1f}  {verdict}")


if __name__ == "__main__":
    main()
