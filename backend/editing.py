"""Editing a user's own motion with MDM inpainting: the numpy core both sides share.

The add-on (torch-free) uses ``plan_edit`` (scene frames -> a 20 fps model window around the range)
and ``blend_length`` / ``blend_weights`` (cross-fade at the joins); the service uses ``edit_motion``:

    rig joints [W, 22, 3] (y-up metres, 20 fps, the rig's own frame)
      -> features (codec forward extraction, pre2025) -> normalised -> inpainting
         (in_between: every frame outside [start, end) known; upper_body: also the root, legs and
         foot contacts inside it) -> recovered joints (start at the origin facing +z)
      -> re-anchored onto the original trajectory -> joints [K, W, 22, 3] in the rig's frame.

Frames: F joints give F-1 feature rows (row i holds frame i and the step to i+1), so the window's
joints get one extra frame extrapolated at constant velocity; then every frame, the last one
included, has its row and the recovered motion has exactly W frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .motion import quaternion as Q
from .motion.hml_codec import FPS, MAX_FRAMES, extract_features_from_joints, retarget_root_scale
from .motion.skeleton import HML_NUM_JOINTS

MODES = ("in_between", "upper_body")
MIN_CONTEXT = 10     # kept model frames (0.5 s) an edit keeps on each side where the motion has them
ANCHOR_FRAMES = 10   # kept frames each side of the range that re-anchoring aligns on
MIN_BLEND_SECONDS = 0.3  # shortest cross-fade at each end of a rewritten range
# the longest Extend: MDM's 9.8 s window holds it plus the 0.3 s overlap, 0.5 s of context and rounding
MAX_EXTEND_SECONDS = 8.5
_EPS = 1e-6


def smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 on [0, 1] (clipped): zero slope at both ends, so joins stay C1."""
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


# ---------------------------------------------------------------------------------------------
# scene frames <-> the 20 fps model window
# ---------------------------------------------------------------------------------------------
@dataclass
class EditPlan:
    frame_start: int          # first scene frame rewritten (inclusive)
    frame_end: int            # last scene frame rewritten (inclusive)
    scene_fps: float
    window_times: np.ndarray  # [W] scene frame (fractional) of each 20 fps window frame
    edit_start: int           # window frames [edit_start, edit_end) are generated
    edit_end: int

    @property
    def num_frames(self) -> int:
        return len(self.window_times)

    def window_position(self, frames: np.ndarray) -> np.ndarray:
        """Fractional window frame of scene frames ``frames``."""
        return (np.asarray(frames, dtype=np.float64) - self.window_times[0]) * FPS / self.scene_fps


def plan_edit(key_first: float, key_last: float, frame_start: int, frame_end: int, scene_fps: float,
              max_frames: int = MAX_FRAMES, min_context: int = MIN_CONTEXT, extend: bool = False) -> EditPlan:
    """Choose the 20 fps model window for rewriting scene frames ``frame_start..frame_end`` (inclusive)
    of an animation keyed from ``key_first`` to ``key_last``.

    The model frames covering the range are generated (at least one even for a 2-frame range: the
    frames at both of its ends are then a blend, see ``blend_weights``); the window adds as many
    known frames as fit, balanced between both sides. ``extend``: the range may run past the last
    key (see ``extend_range``); it still starts inside the keys, and the frames after them are all
    generated. Raises InputError (nothing changed) for an empty or 1-frame range, a range outside
    the keys, or one too long for the window.
    """
    if not scene_fps > 0:
        raise InputError(f"the scene frame rate must be positive, got {scene_fps}")
    if frame_end < frame_start:
        raise InputError(f"the frame range {frame_start}-{frame_end} is empty: its end comes before its start")
    if frame_end == frame_start:
        raise InputError(f"the frame range {frame_start}-{frame_end} is a single frame; select at least 2 frames "
                         "(e.g. set a preview range or select the keys to regenerate)")
    if key_last - key_first < 1:
        raise InputError("the animation has keys on a single frame only; there is no motion to edit")
    if frame_start < key_first or frame_start > key_last or (frame_end > key_last and not extend):
        raise InputError(f"the frame range {frame_start}-{frame_end} goes outside the animation's keys "
                         f"({key_first:g}-{key_last:g}); choose a range inside them")
    step = scene_fps / FPS                                     # scene frames per model frame
    total = math.ceil((key_last - key_first) / step - _EPS) + 1   # model frames covering all keys
    g0 = math.floor((frame_start - key_first) / step + _EPS)
    g1 = math.ceil((frame_end - key_first) / step - _EPS) + 1
    g1 = g1 if frame_end > key_last else min(g1, total)
    before_avail, after_avail = g0, max(total - g1, 0)
    context = min(before_avail, min_context) + min(after_avail, min_context)
    if g1 - g0 + context > max_frames:
        most = (max_frames - context) / FPS
        raise InputError(
            f"the frame range {frame_start}-{frame_end} is {(frame_end - frame_start) / scene_fps:.2f} s long; an "
            f"edit regenerates at most {most:.2f} s at once (MDM's {max_frames / FPS:g} s window, keeping "
            f"{min_context / FPS:g} s of the motion on each side). Select a shorter range or edit it in parts")
    room = max_frames - (g1 - g0)
    before = min(before_avail, max(room - after_avail, room // 2))
    after = min(after_avail, room - before)
    w0 = g0 - before
    times = key_first + (w0 + np.arange(g1 + after - w0)) * step
    return EditPlan(int(frame_start), int(frame_end), float(scene_fps), times, g0 - w0, g1 - w0)


def extend_range(key_first: float, key_last: float, seconds: float, scene_fps: float,
                 overlap_seconds: float = MIN_BLEND_SECONDS) -> tuple[int, int]:
    """The scene frames (inclusive) that continue an animation by ``seconds`` past its last key:
    its last ``overlap_seconds`` too, where the continuation is cross-faded in (``blend_weights``
    with ``fade_out=False``), so the join has no pop; every earlier frame stays as it is."""
    if not 0 < seconds <= MAX_EXTEND_SECONDS:
        raise InputError(f"extend by more than 0 and at most {MAX_EXTEND_SECONDS:g} s at once (MDM's window), got "
                         f"{seconds:g}; extend again to go on")
    if key_last - key_first < 1:
        raise InputError("the animation has keys on a single frame only; there is no motion to continue")
    first, last = math.ceil(key_first - _EPS), math.floor(key_last + _EPS)
    start = max(first, last - max(1, round(overlap_seconds * scene_fps)))
    return start, last + max(1, round(seconds * scene_fps))


def blend_length(mismatch: float, accel: float, scene_fps: float, num_frames: int,
                 min_seconds: float = MIN_BLEND_SECONDS) -> int:
    """Ramp length (scene frames) for ``blend_weights`` on a range of ``num_frames``.

    At least ``min_seconds``; longer when the new motion starts ``mismatch`` metres away from the
    old one, so that the join adds at most half of ``accel`` (the old motion's typical
    frame-to-frame velocity change, metres per scene frame^2): a smoothstep ramp over B frames
    changes the velocity by about 6 d / (B + 1)^2 per frame. At most a third of the range."""
    shortest = round(min_seconds * scene_fps)
    needed = math.ceil(math.sqrt(12.0 * max(mismatch, 0.0) / max(accel, 1e-6))) - 1
    return max(1, min(max(shortest, needed), num_frames // 3))


def blend_weights(num_frames: int, blend_frames: int, fade_out: bool = True) -> np.ndarray:
    """[N] weight of the generated motion on the N rewritten frames: a smoothstep ramp over
    ``blend_frames`` at each end, from the untouched neighbour (weight 0, just outside) inwards.
    Short ranges shrink the ramp so that their middle frame still reaches 1. ``fade_out=False``
    (an extension: nothing follows the range) ramps at the start only."""
    if num_frames < 1:
        raise InputError("nothing to blend: the range has no frames")
    k = np.arange(num_frames)
    if not fade_out:
        ramp = max(1, min(int(blend_frames), num_frames - 1))
        return smoothstep((k + 1) / (ramp + 1))
    ramp = max(1, min(int(blend_frames), (num_frames - 1) // 2))
    return smoothstep(np.minimum(k + 1, num_frames - k) / (ramp + 1))


# ---------------------------------------------------------------------------------------------
# masks and features
# ---------------------------------------------------------------------------------------------
def edit_mask(mode: str, start: int, end: int, num_frames: int, num_samples: int = 1) -> np.ndarray:
    """[K, T, 263] bool, True = keep the known value: everything outside [start, end); inside it,
    nothing (in_between) or the root, legs and foot contacts (upper_body)."""
    from .mdm.sampler import frame_ranges_mask, upper_body_mask
    if mode not in MODES:
        raise InputError(f"edit mode {mode!r} is not supported; use one of {list(MODES)}")
    mask = frame_ranges_mask(num_frames, [(start, end)], num_samples)
    if mode == "upper_body":
        mask[:, start:end] = upper_body_mask(end - start, num_samples)
    return mask


def joints_to_features(joints: np.ndarray) -> tuple[np.ndarray, float]:
    """Joints [W, 22, 3] -> (features [W, 263] pre2025, root scale of the retargeting).

    The last frame is covered by extrapolating one more frame at constant velocity. The scale
    (target over source leg length) is what re-anchoring divides back out."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (HML_NUM_JOINTS, 3) or len(joints) < 2:
        raise InputError(f"edit joints must have shape [W >= 2, 22, 3], got {list(joints.shape)}")
    if not np.isfinite(joints).all():
        raise InputError("edit joints contain NaN or infinite values")
    extended = np.concatenate([joints, 2.0 * joints[-1:] - joints[-2:-1]])
    try:
        extracted = extract_features_from_joints(extended, variant="pre2025")
    except (ValueError, FloatingPointError) as exc:
        raise InputError(f"cannot turn the motion into HumanML3D features ({exc}); is it a standing "
                         "SMPL body (hips and shoulders apart)?") from None
    if not np.isfinite(extracted.features).all():
        raise InputError("the motion gives non-finite HumanML3D features (degenerate pose: hips or "
                         "shoulders on top of each other?)")
    return extracted.features, retarget_root_scale(joints[0])


# ---------------------------------------------------------------------------------------------
# re-anchoring the recovered motion onto the original trajectory
# ---------------------------------------------------------------------------------------------
def fit_yaw_translation(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray]:
    """Rotation about +y and translation best mapping points src onto dst ([..., 3], least squares):
    dst ~ R_y(yaw) src + offset. Returns (yaw radians, offset [3])."""
    src = np.asarray(src, np.float64).reshape(-1, 3)
    dst = np.asarray(dst, np.float64).reshape(-1, 3)
    a, b = src - src.mean(0), dst - dst.mean(0)
    yaw = math.atan2((a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]).sum(), (a[:, 0] * b[:, 0] + a[:, 2] * b[:, 2]).sum())
    offset = dst.mean(0) - Q.qrot(Q.rotation_about_y(yaw), src.mean(0))
    return yaw, offset


def reanchor(recovered: np.ndarray, original: np.ndarray, start: int, end: int,
             anchor_frames: int = ANCHOR_FRAMES) -> np.ndarray:
    """Place recovered joints [W, 22, 3] into the original's frame [W, 22, 3].

    The yaw + translation aligning recovered to original is fitted on up to ``anchor_frames`` kept
    frames just before [start, end) and just after it; frames before the range use the first,
    frames after it the second, and across the range both are blended (smoothstep): the heading
    is interpolated about each frame's own pelvis, the pelvis between its two mapped positions.
    With kept frames on one side only, that side's transform applies throughout; with none, the
    motion starts where and facing how the original started (frame 0).
    """
    recovered, original = np.asarray(recovered, np.float64), np.asarray(original, np.float64)
    n = len(recovered)
    before = np.arange(max(0, start - anchor_frames), start)
    after = np.arange(end, min(n, end + anchor_frames))
    if not len(before) and not len(after):
        before = np.array([0])
    fit_b = fit_yaw_translation(recovered[before], original[before]) if len(before) else None
    fit_a = fit_yaw_translation(recovered[after], original[after]) if len(after) else None
    fit_b, fit_a = fit_b or fit_a, fit_a or fit_b

    u = np.zeros(n)
    u[end:] = 1.0
    inside = np.arange(start, end)
    u[inside] = smoothstep((inside - start + 1) / (end - start + 1))
    turn = math.remainder(fit_a[0] - fit_b[0], 2 * math.pi)
    yaw = fit_b[0] + u * turn                                                    # [W]
    root = recovered[:, 0]                                                       # [W, 3]
    mapped = [Q.qrot(Q.rotation_about_y(np.full(n, y)), root) + t for y, t in (fit_b, fit_a)]
    pelvis = (1.0 - u)[:, None] * mapped[0] + u[:, None] * mapped[1]
    heading = np.broadcast_to(Q.rotation_about_y(yaw)[:, None], (n, HML_NUM_JOINTS, 4))
    return Q.qrot(heading, recovered - root[:, None]) + pelvis[:, None]


# ---------------------------------------------------------------------------------------------
# the whole edit (service side)
# ---------------------------------------------------------------------------------------------
def edit_motion(generator, joints: np.ndarray, mode: str, start: int, end: int, prompt: str = "",
                seed: int = 0, guidance: float = 2.5, steps: int | None = None, num_samples: int = 1,
                progress=None, cancel=None):
    """Regenerate window frames [start, end) of the rig motion ``joints`` [W, 22, 3] (the rig's
    frame, y-up metres, 20 fps) with ``generator`` (a MotionGenerator). Returns its
    GenerationResult with ``joints`` [K, W, 22, 3] re-anchored into the input's frame (features
    stay in the canonical frame the model saw). An empty prompt in-fills unconditionally."""
    joints = np.asarray(joints, dtype=np.float64)
    if not 0 <= start < end <= len(joints):
        raise InputError(f"edit range {start}..{end} must be a non-empty part of the {len(joints)} "
                         "frames given")
    features, scale = joints_to_features(joints)
    known = generator.normalizer.normalize(features).astype(np.float32)
    known = np.repeat(known[None], num_samples, axis=0)
    mask = edit_mask(mode, start, end, len(joints), num_samples)
    result = generator.edit(known, mask, prompt, seed=seed, guidance=guidance, steps=steps,
                            progress=progress, cancel=cancel)
    placed = [reanchor(j / scale, joints, start, end) for j in result.joints.astype(np.float64)]
    result.joints = np.stack(placed).astype(np.float32)
    result.recipe.update(mode=mode, edit_start=int(start), edit_end=int(end), input="joints",
                         retarget_scale=round(scale, 6))
    return result


# ---------------------------------------------------------------------------------------------
# two actions at once
# ---------------------------------------------------------------------------------------------
def with_upper_body(generator, generated, upper_prompt: str, guidance: float = 2.5, steps: int | None = None,
                    progress=None, cancel=None, sampler: str = "ddpm"):
    """A GenerationResult -> the same motions with spine, arms and head regenerated for
    ``upper_prompt`` over the whole clip while the root, legs and foot contacts stay exactly as
    generated (MDM's upper_body editing): two actions at once, e.g. walking + waving, which a model
    trained on one action per caption rarely does from a single prompt. The recipe is the
    generation's plus ``upper_prompt``; ``unseen_words`` and ``reworded`` cover both prompts."""
    features = np.asarray(generated.features, np.float32)
    k, n = features.shape[:2]
    known = generator.normalizer.normalize(features).astype(np.float32)
    result = generator.edit(known, edit_mask("upper_body", 0, n, n, k), upper_prompt,
                            seed=generated.recipe.get("seed", 0), guidance=guidance, steps=steps,
                            lengths=generated.lengths, progress=progress, cancel=cancel, sampler=sampler)
    recipe = {**generated.recipe, "upper_prompt": result.recipe["prompt"]}
    if "unseen_words" in generated.recipe or "unseen_words" in result.recipe:   # models with a caption vocabulary
        unseen = list(generated.recipe.get("unseen_words", []))
        recipe["unseen_words"] = unseen + [w for w in result.recipe.get("unseen_words", []) if w not in unseen]
    reworded = {**result.recipe.get("reworded", {}), **generated.recipe.get("reworded", {})}
    if reworded:
        recipe["reworded"] = reworded
    result.recipe = recipe
    return result
