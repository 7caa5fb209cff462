"""Result -> scene: the one path both ``mdm.import_result`` and ``mdm.generate`` key through.

Everything that can fail (a non-SMPL target, a missing SMPL file, a result without vertices) is
checked before the first data-block is created, so a failure leaves the scene as it was.
"""
from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field

import bpy
import numpy as np

from . import backend_link, keying, mesh, rig
from .result_file import MotionResult

OUTPUTS = ('ARMATURE', 'ARMATURE_MESH', 'VERTEX')
TARGETS = ('NEW', 'SELECTED')
ROOT_MOTIONS = backend_link.load("motion.root_motion").ROOT_MOTIONS
RECIPE_KEYS = ("prompt", "seed", "steps", "guidance", "model_id", "backend_version")


@dataclass
class ImportOptions:
    output: str = 'ARMATURE'
    target: str = 'NEW'
    start_frame: int = 1
    smpl_dir: str = ""
    target_name: str = ""      # the rig for target 'SELECTED' (default: the active object)
    root_motion: str = 'WORLD'  # or 'IN_PLACE': no horizontal travel (see backend.motion.root_motion)
    loop: bool = False          # key one seamless cycle that repeats (see backend.motion.loop)
    recipe: dict = field(default_factory=dict)   # overrides the result's own recipe


@dataclass
class Imported:
    rig: object = None
    actions: list = field(default_factory=list)   # one per sample, [0] assigned
    meshes: list = field(default_factory=list)


def sample_name(recipe: dict, k: int, num_samples: int) -> str:
    prompt = " ".join(str(recipe.get("prompt") or "motion").split())
    prompt = prompt if len(prompt) <= 40 else prompt[:39] + "…"
    name = f"{prompt} | seed {recipe.get('seed', '?')}"
    return f"{name} #{k + 1}" if num_samples > 1 else name


def loop_note(recipe: dict) -> str:
    """'' or a warning that a looped motion does not repeat well (its seam shows)."""
    seam = recipe.get("loop_seam_cm")
    if not recipe.get("loop") or not isinstance(seam, (int, float)):
        return ""
    if seam <= backend_link.load("motion.loop").NOTICEABLE_SEAM * 100:
        return ""
    return (f"the loop's seam differs by {seam:g} cm: this motion does not repeat well; Loop suits walks, runs "
            "and other repeated actions")


def vocabulary_note(recipe: dict) -> str:
    """The line naming the prompt's words the model was not trained on ('' when there are none): the
    backend read some as a related word it knows (``reworded``) and hid the others from the model,
    which followed the sentence's overall meaning."""
    reworded = recipe.get("reworded") if isinstance(recipe.get("reworded"), dict) else {}
    words = recipe.get("unseen_words") or []
    parts = [f"Read {', '.join(f'{a} as {b}' for a, b in reworded.items())}"] if reworded else []
    parts += [f"Not in the model's vocabulary: {', '.join(map(str, words))}"] if words else []
    return "; ".join(parts)


def stored_recipe(block) -> dict:
    """The recipe ``store_recipe`` kept on an action or object ({} when none or unreadable)."""
    try:
        recipe = json.loads(block["mdm_recipe"]) if block is not None and "mdm_recipe" in block else {}
    except (TypeError, ValueError):
        return {}
    return recipe if isinstance(recipe, dict) else {}


def held_in_place(result: MotionResult) -> MotionResult:
    """The result without horizontal travel: trans, fitted joints and vertices move together."""
    root = backend_link.load("motion.root_motion")
    points = [a for a in (result.joints_fitted, result.vertices) if a is not None]
    trans, *moved = root.hold_in_place(result.trans, *points)
    joints_fitted = moved.pop(0) if result.joints_fitted is not None else None
    vertices = moved.pop(0) if result.vertices is not None else None
    return dataclasses.replace(result, trans=trans, joints_fitted=joints_fitted, vertices=vertices)


def looped(result: MotionResult) -> tuple[MotionResult, list[tuple[int, int, float]]]:
    """Each sample cut to its most seamless cycle and closed (``backend.motion.loop``): frames
    start..end, the last one the first again plus one cycle's travel. Returns the result (lengths
    = cycle + 1 frames; no vertices: loops key armatures) and each sample's (start, end, seam
    mismatch in metres)."""
    loop = backend_link.load("motion.loop")
    smpl = backend_link.load("motion.smpl_skeleton")
    rest = result.rest_joints.astype(np.float64)
    poses, trans, cycles = [], [], []
    for k in range(result.num_samples):
        n = int(result.lengths[k])
        joints = smpl.posed_joints(result.poses[k, :n].astype(np.float64), result.trans[k, :n].astype(np.float64),
                                   rest)[:, :22]
        start, end, mismatch = loop.find_loop(joints, fps=result.fps)
        closed_poses, path, _ = loop.close_loop(result.poses[k, :n], result.trans[k, :n], start, end)
        poses.append(closed_poses)
        trans.append(path)
        cycles.append((start, end, mismatch))
    longest = max(len(p) for p in poses)

    def padded(items):   # [K, longest, ...], each sample's last frame repeated past its length
        return np.stack([np.concatenate([x, np.repeat(x[-1:], longest - len(x), axis=0)]) for x in items])
    poses, trans = padded(poses).astype(np.float32), padded(trans).astype(np.float32)
    joints_fitted = smpl.posed_joints(poses.astype(np.float64), trans.astype(np.float64), rest).astype(np.float32)
    lengths = np.array([end - start + 1 for start, end, _ in cycles], dtype=np.int64)
    return dataclasses.replace(result, poses=poses, trans=trans, lengths=lengths, joints_fitted=joints_fitted,
                               vertices=None), cycles


def store_recipe(block, recipe: dict, k: int, batch: str, first: int, last: int) -> None:
    """The recipe as custom properties on an action (or a vertex-animated object)."""
    for key in RECIPE_KEYS:
        value = recipe.get(key)
        if isinstance(value, int) and not -2**31 <= value < 2**31:
            value = str(value)  # ID properties hold 32-bit ints; CLI seeds may be up to 2**63
        if value is not None:
            block[f"mdm_{key}"] = value if isinstance(value, (int, float, str)) else str(value)
    block["mdm_sample"] = k
    block["mdm_batch"] = batch
    block["mdm_frame_range"] = [int(first), int(last)]
    block["mdm_recipe"] = json.dumps(recipe, sort_keys=True, default=str)


def import_result(context, result: MotionResult, options: ImportOptions) -> Imported:
    errors = backend_link.load("errors")
    if options.output not in OUTPUTS or options.target not in TARGETS or options.root_motion not in ROOT_MOTIONS:
        raise errors.InputError(f"output must be one of {OUTPUTS}, target one of {TARGETS} and root motion one of "
                                f"{ROOT_MOTIONS}, got {options.output!r} / {options.target!r} / {options.root_motion!r}")
    recipe = {**result.recipe, **{k: v for k, v in options.recipe.items() if v is not None},
              "root_motion": options.root_motion}
    cycles = None
    if options.loop:
        if options.output == 'VERTEX':
            raise errors.InputError("Loop keys an armature that repeats with Cycles modifiers; choose output "
                                    "Armature or Armature + Mesh, or turn Loop off for vertex animation")
        result, cycles = looped(result)
        recipe["loop"], recipe["loop_seam_cm"] = True, round(max(c[2] for c in cycles) * 100, 1)
    if options.root_motion == 'IN_PLACE':
        result = held_in_place(result)
    # --- checks: nothing in the scene changes before all of these pass ---
    target = None
    if options.target == 'SELECTED' and options.output != 'VERTEX':  # vertex animation needs no rig
        target = bpy.data.objects.get(options.target_name) if options.target_name else context.active_object
        if options.target_name and target is None:
            raise errors.InputError(f"the target rig '{options.target_name}' was deleted while generating; "
                                    "select an SMPL rig or choose target 'new SMPL rig' and generate again")
        binding = rig.bind_armature(target, result.rest_joints)
    body = None
    if options.output != 'ARMATURE':
        body = mesh.load_body(options.smpl_dir)
        if options.output == 'VERTEX':
            mesh.check_vertices(result, body)

    if context.mode != 'OBJECT':
        bpy.ops.object.mode_set(mode='OBJECT')
    out = Imported()
    base_name = sample_name(recipe, 0, 1)
    batch = f"{base_name}@{uuid.uuid4().hex[:8]}"  # groups this generation's samples for the picker
    fps = keying.scene_fps(context.scene)
    if options.output != 'VERTEX':
        if target is None:
            target = rig.create_armature(context, f"SMPL {base_name}", result.rest_joints, result.parents)
            binding = rig.bind_armature(target, result.rest_joints)
        keying.prepare_pose_bones(target, binding)
        for k in range(result.num_samples):
            n = int(result.lengths[k])
            src_fps, frames = result.fps, None
            if cycles is not None:   # a whole number of scene frames per cycle: stretch it by < half a frame
                scene_frames = max(2, round((n - 1) * fps / result.fps))
                src_fps, frames = fps * (n - 1) / scene_frames, options.start_frame + np.arange(scene_frames + 1.0)
            tracks = keying.bone_tracks(result.poses[k, :n], result.trans[k, :n], result.rest_joints, binding,
                                        src_fps, fps, options.start_frame, frames)
            action = keying.write_action(target, sample_name(recipe, k, result.num_samples), binding, tracks)
            if cycles is not None:
                keying.make_cyclic(action, target, binding)
                action["mdm_loop_source_frames"] = list(cycles[k][:2])
            store_recipe(action, recipe, k, batch, tracks.frames[0], tracks.frames[-1])
            action.use_fake_user = True  # unpicked samples must survive save/reload
            out.actions.append(action)
        keying.assign_action(target, out.actions[0])
        out.rig = target
        if options.output == 'ARMATURE_MESH':
            out.meshes.append(mesh.create_skinned_mesh(context, body, target, binding, result))
    else:
        names = [sample_name(recipe, k, result.num_samples) for k in range(result.num_samples)]
        out.meshes = mesh.create_vertex_animation(context, body, result, names, options.start_frame, fps)
        for k, obj in enumerate(out.meshes):
            n = keying.resample.resampled_length(int(result.lengths[k]), result.fps, fps)
            store_recipe(obj, recipe, k, batch, options.start_frame, options.start_frame + n - 1)
        for other in context.selected_objects:
            other.select_set(False)
        out.meshes[0].select_set(True)
        context.view_layer.objects.active = out.meshes[0]
    return out
