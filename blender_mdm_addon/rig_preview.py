"""A contact-sheet PNG of a keyed rig as Blender evaluates it (what the viewport would show).

The background ``bpy`` module has no GPU context for Workbench/EEVEE, so instead of rendering we
read the evaluated bone heads of the 22 SMPL joints at a few frames (world space, z-up), turn them
into the y-up canonical frame and draw the shared stick-figure sheet of ``backend.motion.preview``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import backend_link, rig

Z_UP_TO_Y_UP = rig.Y_UP_TO_Z_UP.T  # (x, y, z) Blender -> (x, z, -y) canonical


def evaluated_world_joints(context, obj, frames) -> np.ndarray:
    """[F, 22, 3] world positions (Blender axes) of the rig's SMPL joints at ``frames``."""
    bones = rig.find_smpl_bones(obj)
    names = [bones[j].name for j in range(rig.NUM_BODY)]
    scene = context.scene
    current = scene.frame_current
    out = np.empty((len(frames), rig.NUM_BODY, 3))
    try:
        for i, frame in enumerate(frames):
            scene.frame_set(int(frame))
            evaluated = obj.evaluated_get(context.evaluated_depsgraph_get())
            world = np.array(evaluated.matrix_world)
            heads = np.array([evaluated.pose.bones[n].head[:] for n in names])
            out[i] = heads @ world[:3, :3].T + world[:3, 3]
    finally:
        scene.frame_set(current)
    return out


def write_rig_preview(context, obj, path: str | Path, frame_range: tuple[int, int], frames_shown: int = 8) -> Path:
    """Draw ``frames_shown`` evenly spaced frames of ``frame_range`` (inclusive) into a PNG."""
    preview = backend_link.load("motion.preview")
    first, last = frame_range
    frames = np.arange(first, last + 1)
    joints = evaluated_world_joints(context, obj, frames) @ Z_UP_TO_Y_UP.T
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    preview.write_contact_sheet(str(path), joints, frames=frames_shown)
    return path
