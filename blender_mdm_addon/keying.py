"""SMPL parameters -> bone-local quaternion and root location keys, written in bulk.

Math (column vectors, all 3x3): a bone's posed armature-space orientation is
``G_j = G_parent B_parent^T B_j L_j`` where B is the rest orientation and L the pose-bone rotation.
We want ``G_j = S_j B_j`` with S the SMPL global rotation carried into armature space by the rig's
alignment A (``S = A R_global A^T``), which gives ``L_j = M_j R_j M_j^T`` with ``M_j = B_j^T A`` and
R_j the SMPL parent-relative rotation. So any SMPL-T-posed rig works, whatever its bone rolls.

Writing: one F-curve per channel, ``keyframe_points.add(n)`` + ``foreach_set`` (no per-key
``keyframe_insert``), linear interpolation (keys are dense, every frame). Blender 4.4+ layered
actions (5.x has no ``Action.fcurves``) go through slot -> layer -> keyframe strip -> channelbag;
4.2/4.3 use ``Action.fcurves``.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from . import backend_link

Q = backend_link.load("motion.quaternion")
resample = backend_link.load("motion.resample")
_LINEAR = 1  # index of 'LINEAR' in Keyframe.interpolation (CONSTANT, LINEAR, BEZIER, ...)


@dataclass
class BoneTracks:
    quats: np.ndarray       # [N, 24, 4] bone-local rotation keys (w, x, y, z), hemisphere-continuous
    root_loc: np.ndarray    # [N, 3] pelvis pose-bone location keys
    frames: np.ndarray      # [N] scene frames of the keys


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def bone_tracks(poses: np.ndarray, trans: np.ndarray, rest_joints: np.ndarray, binding,
                src_fps: float, dst_fps: float, start_frame: int) -> BoneTracks:
    """poses [T, 24, 3] axis-angle + trans [T, 3] at src_fps -> keys at dst_fps from start_frame."""
    local = Q.axis_angle_to_quat(poses)                                          # [T, 24, 4]
    m = Q.matrix_to_quat(np.swapaxes(binding.rest_rot, -1, -2) @ binding.align_rot)  # [24, 4]
    bone_q = Q.qmul(Q.qmul(m, local), Q.qinv(m))
    pelvis = binding.to_armature(rest_joints[0] + trans)                          # [T, 3]
    root_loc = (pelvis - binding.rest_head[0]) @ binding.rest_rot[0]               # B0^T (p - h0)
    n = resample.resampled_length(len(poses), src_fps, dst_fps)
    at = resample.source_positions(n, src_fps, dst_fps)
    quats = Q.quat_continuity(resample.sample_slerp(Q.quat_continuity(bone_q), at))
    return BoneTracks(quats, resample.sample_linear(root_loc, at), start_frame + np.arange(n, dtype=np.float64))


def _channel_factory(action, obj):
    """A function (data_path, index, group) -> new F-curve, for either action API."""
    if hasattr(action, "slots"):  # Blender 4.4+ layered actions
        slot = action.slots.new(id_type='OBJECT', name=obj.name)
        strip = action.layers.new("Layer").strips.new(type='KEYFRAME')
        bag = strip.channelbag(slot, ensure=True)
        return lambda path, index, group: bag.fcurves.new(path, index=index, group_name=group)
    return lambda path, index, group: action.fcurves.new(path, index=index, action_group=group)


def _write_curve(fcurve, frames: np.ndarray, values: np.ndarray) -> None:
    points = fcurve.keyframe_points
    points.add(len(frames))
    co = np.empty((len(frames), 2), np.float32)
    co[:, 0], co[:, 1] = frames, values
    points.foreach_set("co", co.ravel())
    points.foreach_set("interpolation", np.full(len(frames), _LINEAR, np.int32))


def write_action(obj, name: str, binding, tracks: BoneTracks):
    """A new action on ``obj`` holding ``tracks`` (not assigned; see ``assign_action``)."""
    action = bpy.data.actions.new(name)
    new_curve = _channel_factory(action, obj)
    for j, bone in enumerate(binding.bone_names):
        if bone is None:
            continue
        path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].rotation_quaternion'
        for c in range(4):
            _write_curve(new_curve(path, c, bone), tracks.frames, tracks.quats[:, j, c])
        if j == 0:
            path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].location'
            for c in range(3):
                _write_curve(new_curve(path, c, bone), tracks.frames, tracks.root_loc[:, c])
    action.use_frame_range = True
    action.frame_start, action.frame_end = float(tracks.frames[0]), float(tracks.frames[-1])
    return action


def assign_action(obj, action) -> None:
    """Make ``action`` the object's active one; a previous action keeps a fake user (never lost)."""
    anim = obj.animation_data or obj.animation_data_create()
    if anim.action is not None and anim.action != action:
        anim.action.use_fake_user = True
    anim.action = action
    if hasattr(action, "slots") and len(action.slots) and anim.action_slot != action.slots[0]:
        anim.action_slot = action.slots[0]


def prepare_pose_bones(obj, binding) -> None:
    """Quaternion keys only drive bones in quaternion rotation mode."""
    for bone in binding.bone_names:
        if bone is not None:
            obj.pose.bones[bone].rotation_mode = 'QUATERNION'
