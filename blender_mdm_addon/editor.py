"""Edit a frame range of an SMPL rig's own animation (``mdm.edit_range``): read, send, write back.

``prepare_edit`` checks everything and reads the rig (nothing in the scene changes): the rig's
evaluated joints at the 20 fps times of the model window (``backend.editing.plan_edit``), in its
canonical frame (y-up metres, measured from the rest pose, as keying uses it), plus its rest
skeleton, go to the service's ``edit`` op as one ``.npz``. The service regenerates the range,
re-anchors it onto the rig's trajectory and fits SMPL on the rig's own skeleton.

``apply_edit`` writes the fitted range, resampled to the scene fps, into a copy of the source
action: only the keys on the range change, cross-faded with the old motion at both ends
(``backend.editing.blend_length`` / ``blend_weights``); upper-body edits key only the upper-body bones. The source
action is kept (fake user) and the copy records the edit in ``mdm_*`` properties.
"""
from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass

import bpy
import numpy as np

from . import backend_link, importer, keying, rig

E = backend_link.load("editing")
Q = backend_link.load("motion.quaternion")
resample = backend_link.load("motion.resample")
_rest = backend_link.load("fitting.rest_skeleton")

MODES = {'IN_BETWEEN': "in_between", 'UPPER_BODY': "upper_body"}
# Bones keyed on the range: those whose rotation the 22 generated joints determine. Feet, head and
# wrists only turn leaves (toes, top of the head, hands), so they keep the user's keys; upper-body
# edits also keep the pelvis (location and rotation) and the legs.
WRITTEN_JOINTS = {"in_between": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 16, 17, 18, 19),
                  "upper_body": (3, 6, 9, 12, 13, 14, 16, 17, 18, 19)}
SPINE1 = 3


def _errors():
    return backend_link.load("errors")


@dataclass
class EditJob:
    rig_name: str
    action_name: str
    mode: str                    # "in_between" | "upper_body"
    plan: object                 # backend.editing.EditPlan
    binding: rig.RigBinding
    key_span: tuple[float, float]
    joints: np.ndarray           # [W, 22, 3] the rig's joints on the window (canonical, 20 fps)
    input_path: str              # the .npz sent to the service (removed by ``cleanup``)
    recipe: dict

    @property
    def extends(self) -> bool:
        """True when the range runs past the last key (Extend): nothing follows it to blend into."""
        return self.plan.frame_end > self.key_span[1]

    def params(self) -> dict:
        """The service ``edit`` parameters (without the model settings)."""
        return {"input_path": self.input_path, "mode": self.mode, "edit_start": int(self.plan.edit_start),
                "edit_end": int(self.plan.edit_end), "prompt": self.recipe["prompt"], "seed": self.recipe["seed"],
                "guidance": self.recipe["guidance"], "steps": self.recipe["steps"], "fit": True}

    def cleanup(self) -> None:
        try:
            os.remove(self.input_path)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# reading the rig
# ---------------------------------------------------------------------------------------------
def smpl_binding(obj) -> rig.RigBinding:
    """The rig's binding against the built-in T-pose, axes snapped (see ``snapped_to_axes``)."""
    errors = _errors()
    if obj is None or obj.type != 'ARMATURE':
        kind = "nothing" if obj is None else f"'{obj.name}' ({obj.type.lower()})"
        raise errors.InputError(f"Edit Range and Extend work on an SMPL rig's animation, but {kind} is active; "
                                "select the SMPL armature to edit")
    try:
        return rig.bind_armature(obj, _rest.builtin_rest_joints()).snapped_to_axes()
    except errors.InputError as exc:  # keep what is wrong, drop the advice about generating onto a rig
        problem = exc.message.split("; choose target")[0].split("; apply a T-pose")[0]
        raise errors.InputError(f"{problem}; Edit Range and Extend need an SMPL rig (SMPL bone names and hierarchy, "
                                "T-pose rest)") from None


def rig_rest_joints(binding: rig.RigBinding) -> np.ndarray:
    """[24, 3] the rig's rest joints in its canonical frame; missing hands continue the forearms."""
    rest = binding.from_armature(binding.rest_head)
    for hand, wrist, elbow in ((22, 20, 18), (23, 21, 19)):
        if binding.bone_names[hand] is None:
            rest[hand] = rest[wrist] + _rest.HAND_LENGTH_RATIO * (rest[wrist] - rest[elbow])
    return rest


def source_action(obj, binding: rig.RigBinding):
    """The rig's active action and its key span (first, last frame) over the SMPL bones' channels."""
    anim = obj.animation_data
    action = anim.action if anim is not None else None
    bones = {f'pose.bones["{bpy.utils.escape_identifier(b)}"]' for b in binding.bone_names if b}
    frames = []
    if action is not None:
        for fcurve in keying.Channels(action, obj).curves:
            if fcurve.data_path.rsplit(".", 1)[0] in bones and len(fcurve.keyframe_points):
                co = np.empty(2 * len(fcurve.keyframe_points), np.float32)
                fcurve.keyframe_points.foreach_get("co", co)
                frames += [co[0::2].min(), co[0::2].max()]
    if not frames:
        raise _errors().InputError(f"'{obj.name}' has no keyed animation to edit (no active action with keys on "
                                   "its SMPL bones); key or generate a motion on it first")
    return action, (float(min(frames)), float(max(frames)))


def sample_joints(context, obj, binding: rig.RigBinding, times: np.ndarray) -> np.ndarray:
    """[W, 22, 3] the evaluated rig's joints (bone heads) at scene times ``times`` (fractional frames),
    canonical frame. Whatever drives the rig counts: keys, NLA, constraints, drivers."""
    scene = context.scene
    frame, subframe = scene.frame_current, scene.frame_subframe
    index = {bone.name: i for i, bone in enumerate(obj.pose.bones)}
    order = [index[name] for name in binding.bone_names[:rig.NUM_BODY]]
    heads = np.empty(3 * len(obj.pose.bones), np.float32)
    out = np.empty((len(times), rig.NUM_BODY, 3))
    try:
        for i, t in enumerate(times):
            whole = int(np.floor(t))
            scene.frame_set(whole, subframe=float(t - whole))
            obj.pose.bones.foreach_get("head", heads)   # armature space, evaluated
            out[i] = heads.reshape(-1, 3)[order]
    finally:
        scene.frame_set(frame, subframe=subframe)
    return binding.from_armature(out)


# ---------------------------------------------------------------------------------------------
# the range from the timeline
# ---------------------------------------------------------------------------------------------
def timeline_range(context) -> tuple[int, int, str] | None:
    """(start, end, where from): the preview range if set, else the span of the selected keys of
    the active object's action; None if neither."""
    scene = context.scene
    if scene.use_preview_range:
        return scene.frame_preview_start, scene.frame_preview_end, "preview range"
    obj = context.active_object
    action = obj.animation_data.action if obj is not None and obj.animation_data is not None else None
    if action is None:
        return None
    lo, hi = np.inf, -np.inf
    for fcurve in keying.Channels(action, obj).curves:
        n = len(fcurve.keyframe_points)
        if not n:
            continue
        selected, co = np.empty(n, bool), np.empty(2 * n, np.float32)
        fcurve.keyframe_points.foreach_get("select_control_point", selected)
        if selected.any():
            fcurve.keyframe_points.foreach_get("co", co)
            lo, hi = min(lo, co[0::2][selected].min()), max(hi, co[0::2][selected].max())
    if lo > hi:
        return None
    return int(round(lo)), int(round(hi)), "selected keys"


# ---------------------------------------------------------------------------------------------
# prepare / apply
# ---------------------------------------------------------------------------------------------
def prepare_edit(context, obj, frame_start: int, frame_end: int, mode: str, recipe: dict,
                 extend_seconds: float = 0.0) -> EditJob:
    """Check everything, read the rig and write the service input. Raises InputError (the scene
    is unchanged). ``extend_seconds`` > 0: continue the animation that long past its last key
    instead (the range comes from the keys, ``backend.editing.extend_range``)."""
    errors = _errors()
    if mode not in MODES:
        raise errors.InputError(f"edit mode {mode!r} is not one of {sorted(MODES)}")
    binding = smpl_binding(obj)
    action, span = source_action(obj, binding)
    backend_mode = MODES[mode]
    fps = keying.scene_fps(context.scene)
    if extend_seconds > 0:
        if backend_mode != "in_between":
            raise errors.InputError("Extend continues the whole body (past the last key there are no legs to keep); "
                                    "set the edit mode to In-between")
        frame_start, frame_end = E.extend_range(span[0], span[1], extend_seconds, fps)
        recipe = {**recipe, "extend_seconds": float(extend_seconds)}
    for j in WRITTEN_JOINTS[backend_mode]:
        keying.rotation_channels(obj.pose.bones[binding.bone_names[j]])  # no axis-angle bones
    plan = E.plan_edit(span[0], span[1], frame_start, frame_end, fps, extend=extend_seconds > 0)
    joints = sample_joints(context, obj, binding, plan.window_times)
    handle, path = tempfile.mkstemp(prefix="blender_mdm_edit_", suffix=".npz")
    with os.fdopen(handle, "wb") as f:
        np.savez(f, joints=joints.astype(np.float32), rest_joints=rig_rest_joints(binding).astype(np.float32))
    # an in-place clip stays in place (the regenerated range would otherwise travel and slide back)
    root_motion = importer.stored_recipe(action).get("root_motion", 'WORLD')
    recipe = {**recipe, "mode": backend_mode, "edit_range": [int(frame_start), int(frame_end)],
              "source_action": action.name, "root_motion": root_motion}
    return EditJob(obj.name, action.name, backend_mode, plan, binding, span, joints, path, recipe)


def _reattach_spine(tracks, original_pelvis: np.ndarray, binding: rig.RigBinding) -> None:
    """Upper-body edits keep the user's pelvis: re-express spine1's key so the generated upper body
    keeps its armature-space orientation on that pelvis instead of the fitted one.
    G_spine1 = B0 L0 C L3 with C = B0^T B3, so L3' = C^T L0_user^T L0_fit C L3."""
    c = Q.matrix_to_quat(binding.rest_rot[0].T @ binding.rest_rot[SPINE1])
    fitted_pelvis = tracks.quats[:, 0]
    change = Q.qmul(Q.qinv(original_pelvis), fitted_pelvis)
    tracks.quats[:, SPINE1] = Q.qmul(Q.qmul(Q.qinv(c), Q.qmul(change, c)), tracks.quats[:, SPINE1])


def _blend_frames(job: EditJob, result, fps: float) -> int:
    """Cross-fade length: longer when the new motion starts far from the old one (``blend_length``)."""
    # an extension joins the old motion at its start only (past the keys the rig just holds its last pose)
    ends = job.plan.window_position([job.plan.frame_start] + ([] if job.extends else [job.plan.frame_end]))
    new = resample.sample_linear(result.joints_fitted[0, :, :rig.NUM_BODY].astype(np.float64), ends)
    old = resample.sample_linear(job.joints, ends)
    mismatch = float(np.linalg.norm(new - old, axis=-1).max())
    accel = np.linalg.norm(np.diff(job.joints, 2, axis=0), axis=-1).max(-1)   # per 20 fps frame^2
    typical = float(np.percentile(accel, 90)) * (E.FPS / fps) ** 2 if len(accel) else 0.0
    return E.blend_length(mismatch, typical, fps, job.plan.frame_end - job.plan.frame_start + 1)


def apply_edit(context, job: EditJob, result) -> object:
    """Write the edited range into a new action (a copy of the source) and assign it; returns it."""
    errors = _errors()
    obj, source = bpy.data.objects.get(job.rig_name), bpy.data.actions.get(job.action_name)
    if obj is None or source is None:
        raise errors.InputError(f"the rig '{job.rig_name}' or its action '{job.action_name}' was deleted or "
                                "renamed while editing; nothing was changed")
    fps = keying.scene_fps(context.scene)
    if abs(fps - job.plan.scene_fps) > 1e-6:
        raise errors.InputError(f"the scene frame rate changed from {job.plan.scene_fps:g} to {fps:g} fps while "
                                "editing; nothing was changed, run the edit again")
    if result.poses.shape[1] != job.plan.num_frames or result.joints_fitted is None:
        raise errors.InputError(f"{result.path}: {result.poses.shape[1]} frames, expected the edit window's "
                                f"{job.plan.num_frames}")
    if job.recipe.get("root_motion") == 'IN_PLACE':
        result = importer.held_in_place(result)       # over the window's first frame: the rig's own spot
    frames = np.arange(job.plan.frame_start, job.plan.frame_end + 1, dtype=np.float64)
    tracks = keying.bone_tracks(result.poses[0], result.trans[0], result.rest_joints, job.binding, result.fps,
                                fps, job.plan.window_times[0], frames)
    written = WRITTEN_JOINTS[job.mode]
    original = {}
    for j in written + ((0,) if job.mode == "upper_body" else ()):
        bone = obj.pose.bones[job.binding.bone_names[j]]
        prop, size = keying.rotation_channels(bone)
        original[j] = keying.channels_to_quats(bone, keying.read_channels(source, obj, bone.name, prop, size, frames))
    if job.mode == "upper_body":
        _reattach_spine(tracks, original[0], job.binding)
    weights = E.blend_weights(len(frames), _blend_frames(job, result, fps), fade_out=not job.extends)
    for j in written:
        tracks.quats[:, j] = Q.slerp(original[j], tracks.quats[:, j], weights)
    pelvis = job.binding.bone_names[0]
    old_loc = keying.read_channels(source, obj, pelvis, "location", 3, frames)
    tracks.root_loc = old_loc + weights[:, None] * (tracks.root_loc - old_loc)

    label = "upper body" if job.mode == "upper_body" else "extend" if job.extends else "edit"
    name = f"{source.name} | {label} {job.plan.frame_start}-{job.plan.frame_end}"
    action = keying.write_action(obj, name, job.binding, tracks, base=source, joints=written, key_span=job.key_span)
    key_span = (job.key_span[0], max(job.key_span[1], float(job.plan.frame_end)))
    if job.extends:
        if action.use_cyclic:          # a looped take continued is no loop any more: it plays once
            keying.clear_cycles(action, obj)
        if action.use_frame_range:
            action.frame_end = max(action.frame_end, key_span[1])
    for key in [k for k in action.keys() if k.startswith("mdm_")]:
        del action[key]
    recipe = {**result.recipe, **{k: v for k, v in job.recipe.items() if v is not None}}
    importer.store_recipe(action, recipe, 0, f"{name}@{uuid.uuid4().hex[:8]}", *key_span)
    action["mdm_mode"], action["mdm_edit_range"] = job.mode, list(job.recipe["edit_range"])
    action["mdm_source_action"] = source.name
    if "mdm_recipe" in source:
        action["mdm_source_recipe"] = source["mdm_recipe"]
    keying.assign_action(obj, action)
    source.use_fake_user = True
    return action
