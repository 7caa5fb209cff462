"""Keying speed inside Blender (bpy module): a 196-frame, 24-bone result (+ root location).

    /work/main/.venv/bin/python bench/keying.py            # or: blender -b --python bench/keying.py

Prints the bulk writer (keyframe_points.add + foreach_set, what the add-on uses) against a baseline
measured in the same run (per-key keyframe_insert, the common add-on pattern), the whole import
(rig creation + 1 sample), and, when mesh support is present, skinned-mesh creation and the
vertex-animation options (PC2 + Mesh Cache vs shape keys) at 6,890 vertices. Target: keying <= 20 ms.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "blender")]

import bpy  # noqa: E402
import addon_utils  # noqa: E402
from timing import timed_ms  # noqa: E402
import numpy as np  # noqa: E402
from addon_helpers import write_result  # noqa: E402

FRAMES, TARGET_MS = 196, 20.0


def clear():
    for collection in (bpy.data.objects, bpy.data.actions, bpy.data.armatures, bpy.data.meshes):
        for block in list(collection):
            collection.remove(block)


def main():
    addon_utils.enable("blender_mdm_addon", default_set=True, handle_error=None)
    from blender_mdm_addon import importer, keying, rig
    from blender_mdm_addon.result_file import load_result
    import tempfile
    tmp = Path(tempfile.mkdtemp())
    result = load_result(write_result(tmp / "r.npz", num_samples=1, num_frames=FRAMES))
    scene = bpy.context.scene
    scene.render.fps = 20  # one key per source frame: 196 keys per channel
    clear()
    obj = rig.create_armature(bpy.context, "BenchRig", result.rest_joints)
    binding = rig.bind_armature(obj, result.rest_joints)
    tracks = keying.bone_tracks(result.poses[0], result.trans[0], result.rest_joints, binding, 20.0, 20.0, 1)
    channels = 24 * 4 + 3

    def bulk():
        keying.assign_action(obj, keying.write_action(obj, "bulk", binding, tracks))

    def math_and_bulk():
        t = keying.bone_tracks(result.poses[0], result.trans[0], result.rest_joints, binding, 20.0, 24.0, 1)
        keying.write_action(obj, "bulk24", binding, t)

    def per_key():
        obj.animation_data_clear()
        for i, frame in enumerate(tracks.frames):
            for j, name in enumerate(binding.bone_names):
                pb = obj.pose.bones[name]
                pb.rotation_quaternion = tracks.quats[i, j]
                pb.keyframe_insert("rotation_quaternion", frame=frame, group=name)
            pb0 = obj.pose.bones[binding.bone_names[0]]
            pb0.location = tracks.root_loc[i]
            pb0.keyframe_insert("location", frame=frame, group=binding.bone_names[0])

    bulk_med, bulk_min = timed_ms(bulk)
    resampled_med, _ = timed_ms(math_and_bulk)
    base_med, _ = timed_ms(per_key, repeats=2)

    def full_import():
        clear()
        importer.import_result(bpy.context, result, importer.ImportOptions())

    import_med, _ = timed_ms(full_import)
    print(f"bpy {bpy.app.version_string}; {FRAMES} frames x {channels} channels ({FRAMES * channels} keys); "
          "machine shared with other jobs: timings are noisy")
    print(f"bulk keying (foreach_set), 20 fps:        {bulk_med:8.2f} ms median ({bulk_min:.2f} min)  "
          f"target <= {TARGET_MS:.0f} ms: {'OK' if bulk_med <= TARGET_MS else 'MISSED'}")
    print(f"bone math + resample to 24 fps + keying:  {resampled_med:8.2f} ms median")
    print(f"baseline per-key keyframe_insert:         {base_med:8.2f} ms median  -> bulk is {base_med / bulk_med:.0f}x faster")
    print(f"full import (new rig + 1 sample):         {import_med:8.2f} ms median")
    try:
        from mesh_bench import bench_meshes  # noqa: E402  (bench/mesh_bench.py, with the mesh support)
    except ImportError:
        return
    bench_meshes(bpy, result, timed_ms, clear)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
