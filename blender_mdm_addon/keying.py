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

Range mode (editing): ``write_action(..., base=action, joints=...)`` copies ``base`` and replaces
only the keys inside the tracks' frame span, in each bone's own rotation mode (quaternion or Euler);
every other key is left as it was (bit-identical, handles included: nothing recalculates them).
"""
from __future__ import annotations

import math
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
                src_fps: float, dst_fps: float, start_frame: float, frames=None) -> BoneTracks:
    """poses [T, 24, 3] axis-angle + trans [T, 3] at src_fps -> keys at dst_fps from start_frame.

    start_frame is the scene frame of source frame 0 (fractional with ``frames``); ``frames``: the
    scene frames to key (default every frame over the clip's span)."""
    local = Q.axis_angle_to_quat(poses)                                          # [T, 24, 4]
    m = Q.matrix_to_quat(np.swapaxes(binding.rest_rot, -1, -2) @ binding.align_rot)  # [24, 4]
    bone_q = Q.qmul(Q.qmul(m, local), Q.qinv(m))
    pelvis = binding.to_armature(rest_joints[0] + trans)                          # [T, 3]
    root_loc = (pelvis - binding.rest_head[0]) @ binding.rest_rot[0]               # B0^T (p - h0)
    if frames is None:
        n = resample.resampled_length(len(poses), src_fps, dst_fps)
        at = resample.source_positions(n, src_fps, dst_fps)
        frames = start_frame + np.arange(n, dtype=np.float64)
    else:
        frames = np.asarray(frames, dtype=np.float64)
        at = (frames - start_frame) * (src_fps / dst_fps)
    quats = Q.quat_continuity(resample.sample_slerp(Q.quat_continuity(bone_q), at))
    return BoneTracks(quats, resample.sample_linear(root_loc, at), frames)


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
    # unselected, so that keys the user selects afterwards can pick a range to edit
    points.foreach_set("select_control_point", np.zeros(len(frames), bool))


class Channels:
    """The F-curves ``obj`` reads in an existing action (either action API): find, iterate, and,
    with ``create``, add (making the slot, layer and strip a 4.4+ action may still lack)."""

    def __init__(self, action, obj, create: bool = False):
        self.curves, self.group_arg = (), "action_group"
        if not hasattr(action, "slots"):  # Blender 4.2 / 4.3
            self.curves = action.fcurves
            return
        anim = obj.animation_data
        used = anim.action_slot if anim is not None and anim.action is not None else None
        slot = action.slots.get(used.identifier) if used is not None else None
        slot = slot or (action.slots[0] if len(action.slots) else None)
        layer = action.layers[0] if len(action.layers) else None
        strip = layer.strips[0] if layer is not None and len(layer.strips) else None
        if create:
            slot = slot or action.slots.new(id_type='OBJECT', name=obj.name)
            layer = layer or action.layers.new("Layer")
            strip = strip or layer.strips.new(type='KEYFRAME')
        bag = strip.channelbag(slot, ensure=create) if strip is not None and slot is not None else None
        if bag is not None:
            self.curves, self.group_arg = bag.fcurves, "group_name"

    def find(self, path: str, index: int):
        return self.curves.find(path, index=index) if len(self.curves) else None

    def new(self, path: str, index: int, group: str):
        return self.curves.new(path, index=index, **{self.group_arg: group})


def rotation_channels(pose_bone) -> tuple[str, int]:
    """(property, number of channels) the bone's rotation mode keys; InputError for axis-angle."""
    mode = pose_bone.rotation_mode
    if mode == 'QUATERNION':
        return "rotation_quaternion", 4
    if mode == 'AXIS_ANGLE':
        raise backend_link.load("errors").InputError(
            f"bone '{pose_bone.name}' uses Axis Angle rotation, which editing does not key; switch it to "
            "Quaternion or an Euler mode (Pose > Animation > Rotation Mode) and try again")
    return "rotation_euler", 3


def _bone_path(bone: str, prop: str) -> str:
    return f'pose.bones["{bpy.utils.escape_identifier(bone)}"].{prop}'


def read_channels(action, obj, bone: str, prop: str, size: int, frames: np.ndarray) -> np.ndarray:
    """[N, size] values of ``pose.bones[bone].prop`` at ``frames`` from ``action`` (F-curves where
    they exist, the bone's current value for channels without one)."""
    channels, static = Channels(action, obj), getattr(obj.pose.bones[bone], prop)
    out = np.empty((len(frames), size))
    for c in range(size):
        fcurve = channels.find(_bone_path(bone, prop), c)
        out[:, c] = [fcurve.evaluate(f) for f in frames] if fcurve is not None else static[c]
    return out


def quats_to_channels(pose_bone, quats: np.ndarray, previous=None) -> np.ndarray:
    """Bone-local quaternions [N, 4] -> values [N, 3|4] for the bone's rotation mode; Euler angles
    stay continuous from ``previous`` (the Euler value just before the first frame) on."""
    prop, _ = rotation_channels(pose_bone)
    if prop == "rotation_quaternion":
        return quats
    from mathutils import Euler, Quaternion
    out, compat = np.empty((len(quats), 3)), Euler(previous if previous is not None else (0.0, 0.0, 0.0))
    for i, q in enumerate(quats):
        compat = Quaternion(q).to_euler(pose_bone.rotation_mode, compat)
        out[i] = compat[:]
    return out


def channels_to_quats(pose_bone, values: np.ndarray) -> np.ndarray:
    """Inverse of ``quats_to_channels``: values [N, 3|4] -> unit quaternions [N, 4]."""
    prop, _ = rotation_channels(pose_bone)
    if prop == "rotation_quaternion":
        return Q.qnormalize(values)
    from mathutils import Euler
    return np.array([Euler(v, pose_bone.rotation_mode).to_quaternion()[:] for v in values])


def _replace_range(channels: Channels, path: str, index: int, group: str, frames: np.ndarray,
                   values: np.ndarray, static: float, key_span: tuple[float, float]) -> None:
    """Replace the keys of one channel on frames[0]..frames[-1] with ``values`` (linear).

    Frames outside the range but inside ``key_span`` keep their values: where the nearest key
    outside is more than a frame away (sparse hand keys) the frames between are baked from the
    old curve, and a new channel gets a holding key next to the range."""
    lo, hi = float(frames[0]), float(frames[-1])
    fcurve = channels.find(path, index)
    old = fcurve.evaluate if fcurve is not None else (lambda f: static)
    if fcurve is None:
        fcurve, keyed = channels.new(path, index, group), np.zeros(0)
    else:
        keyed = np.empty(2 * len(fcurve.keyframe_points), np.float32)
        fcurve.keyframe_points.foreach_get("co", keyed)
        keyed = keyed[0::2].astype(np.float64)
    before, after = keyed[keyed < lo - 1e-4], keyed[keyed > hi + 1e-4]
    held = []
    if lo > key_span[0]:
        held += [lo - 1] if not len(before) else list(range(math.floor(before.max()) + 1, int(lo)))
    if hi < key_span[1]:
        held += [hi + 1] if not len(after) else list(range(int(hi) + 1, math.ceil(after.min())))
    new_frames = np.concatenate([frames, held]).astype(np.float64)
    new_values = np.concatenate([values, [old(f) for f in held]])

    points = fcurve.keyframe_points
    inside = np.nonzero((keyed >= lo - 1e-4) & (keyed <= hi + 1e-4))[0]
    if not held and np.array_equal(keyed[inside], frames.astype(np.float32)):
        _overwrite(points, inside, values)  # dense keys: same frames, new values, in bulk
        return
    for i in inside[::-1]:
        points.remove(points[int(i)], fast=True)
    # One sorted insert per key: add() + sort() would be bulk, but sort() also "repairs" the handles
    # of untouched keys (e.g. never-computed ones), and update() recalculates them all.
    for frame, value in zip(new_frames, new_values):
        point = points.insert(float(frame), float(value), options={'FAST'})
        point.interpolation = 'LINEAR'
        point.handle_left = point.handle_right = point.co  # on the key: no overshoot from a Bezier neighbour


def _overwrite(points, rows: np.ndarray, values: np.ndarray) -> None:
    """Set the values of keys ``rows`` (same frames), linear, handles on the key, selected like
    inserted keys; the other keys are written back unchanged (float32 in, float32 out)."""
    n = len(points)
    co = np.empty((n, 2), np.float32)
    points.foreach_get("co", co.ravel())
    co[rows, 1] = values
    for attr in ("co", "handle_left", "handle_right"):
        buf = np.empty((n, 2), np.float32)
        points.foreach_get(attr, buf.ravel())
        buf[rows] = co[rows]
        points.foreach_set(attr, buf.ravel())
    for attr, value in (("interpolation", _LINEAR), ("select_control_point", True)):
        flags = np.empty(n, np.int32 if attr == "interpolation" else bool)
        points.foreach_get(attr, flags)
        flags[rows] = value
        points.foreach_set(attr, flags)


def write_action(obj, name: str, binding, tracks: BoneTracks, base=None, joints=None,
                 key_span: tuple[float, float] | None = None):
    """A new action on ``obj`` holding ``tracks`` (not assigned; see ``assign_action``).

    With ``base``: a copy of that action in which only tracks.frames[0]..[-1] are rewritten, for
    the bones of ``joints`` (default all; the pelvis location with joint 0), each in its own
    rotation mode; frames inside ``key_span`` (default the range) keep their values outside it."""
    if base is None:
        action = bpy.data.actions.new(name)
        new_curve = _channel_factory(action, obj)
    else:
        action = base.copy()
        action.name = name
        channels = Channels(action, obj, create=True)
        span = key_span or (float(tracks.frames[0]), float(tracks.frames[-1]))
    for j in range(len(binding.bone_names)) if joints is None else joints:
        bone = binding.bone_names[j]
        if bone is None:
            continue
        keyed = [("rotation_quaternion", tracks.quats[:, j])]
        if base is not None and rotation_channels(obj.pose.bones[bone])[0] == "rotation_euler":
            before = read_channels(base, obj, bone, "rotation_euler", 3, [tracks.frames[0] - 1])[0]
            keyed = [("rotation_euler", quats_to_channels(obj.pose.bones[bone], tracks.quats[:, j], before))]
        if j == 0:
            keyed.append(("location", tracks.root_loc))
        for prop, values in keyed:
            path = _bone_path(bone, prop)
            for c in range(values.shape[1]):
                if base is None:
                    _write_curve(new_curve(path, c, bone), tracks.frames, values[:, c])
                else:
                    _replace_range(channels, path, c, bone, tracks.frames, values[:, c],
                                   getattr(obj.pose.bones[bone], prop)[c], span)
    if base is None:
        action.use_frame_range = True
        action.frame_start, action.frame_end = float(tracks.frames[0]), float(tracks.frames[-1])
    return action


def make_cyclic(action, obj, binding) -> None:
    """Let a closed cycle (last key = first pose) repeat forever: a Cycles modifier on every
    F-curve, the pelvis location repeating with offset (each cycle starts where the last one
    ended), and the action flagged cyclic over its frame range (NLA strips and linking see it)."""
    pelvis = _bone_path(binding.bone_names[0], "location")
    for fcurve in Channels(action, obj).curves:
        cycles = fcurve.modifiers.new('CYCLES')
        if fcurve.data_path == pelvis:
            cycles.mode_before = cycles.mode_after = 'REPEAT_OFFSET'
    action.use_frame_range = True
    action.use_cyclic = True


def clear_cycles(action, obj) -> None:
    """Undo ``make_cyclic``: the action plays once (an extended loop no longer closes)."""
    for fcurve in Channels(action, obj).curves:
        for modifier in [m for m in fcurve.modifiers if m.type == 'CYCLES']:
            fcurve.modifiers.remove(modifier)
    action.use_cyclic = False


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
