"""backend/editing.py: the 20 fps window around a scene range, masks, features of a rig's joints,
re-anchoring onto the original trajectory, the join blend, and the whole edit with a tiny model
(also through the service's edit handler, with a rig's rest skeleton to fit on)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend import editing as E
from backend.errors import InputError
from backend.fitting.rest_skeleton import builtin_rest_joints
from backend.motion import quaternion as Q
from backend.motion.hml_codec import recover_joints_from_features
from backend.motion.skeleton import LOWER_BODY_JOINTS, UPPER_BODY_JOINTS, lower_body_feature_mask
from backend.motion.smpl_skeleton import posed_joints
from tests.helpers.synthetic_motion import random_motion


def synthetic_joints(frames: int = 80, seed: int = 0) -> np.ndarray:
    """[T, 22, 3] a smooth random SMPL-skeleton motion (HumanML3D bone lengths), 20 fps."""
    poses, trans = random_motion(np.random.default_rng(seed), frames=frames, keys=max(3, frames // 15))
    return posed_joints(poses, trans, builtin_rest_joints())[:, :22]


def rigid(joints: np.ndarray, yaw: float, offset) -> np.ndarray:
    return Q.qrot(np.broadcast_to(Q.rotation_about_y(yaw), joints.shape[:-1] + (4,)), joints) + np.asarray(offset)


# --------------------------------------------------------------------------------------------
# the window
# --------------------------------------------------------------------------------------------
def test_short_animation_uses_all_of_it():
    plan = E.plan_edit(1, 100, 40, 80, scene_fps=24)           # 99 frames at 24 fps = 83 model frames
    assert plan.window_times[0] == 1 and plan.window_times[-1] >= 100 and plan.num_frames == 84
    assert np.allclose(np.diff(plan.window_times), 24 / 20)
    # the generated model frames bracket every rewritten scene frame, the kept ones lie outside
    pos = plan.window_position(np.arange(40, 81))
    assert pos.min() >= plan.edit_start and pos.max() <= plan.edit_end - 1
    assert plan.window_times[plan.edit_start - 1] < 40 and plan.window_times[plan.edit_end] > 80


def test_long_animation_gets_a_balanced_window():
    plan = E.plan_edit(0, 3000, 1500, 1560, scene_fps=30)
    before, after = plan.edit_start, plan.num_frames - plan.edit_end
    assert plan.num_frames == 196 and abs(before - after) <= 1 and before > 60
    assert plan.window_times[plan.edit_start] <= 1500 < plan.window_times[plan.edit_start + 1]


@pytest.mark.parametrize("start,end,side", [(0, 30, "start"), (5, 40, "start"), (2970, 3000, "end"),
                                            (2950, 2990, "end")])
def test_ranges_at_the_ends_take_all_the_context_from_the_other_side(start, end, side):
    plan = E.plan_edit(0, 3000, start, end, scene_fps=30)
    assert plan.num_frames == 196
    if side == "start":
        assert plan.window_times[0] == 0 and plan.edit_start == math.floor(start * 20 / 30 + 1e-9)
    else:
        assert plan.edit_end >= plan.num_frames - 7 and plan.window_times[-1] >= end
    if start == 0:
        assert plan.edit_start == 0
    if end == 3000:
        assert plan.edit_end == plan.num_frames


@settings(max_examples=200, deadline=None)
@given(fps=st.sampled_from([12.0, 20.0, 23.976, 24.0, 25.0, 30.0, 50.0, 60.0, 120.0]),
       first=st.integers(-50, 50), span=st.integers(1, 1200), a=st.floats(0, 1), b=st.floats(0, 1))
def test_every_rewritten_frame_is_bracketed_by_generated_model_frames(fps, first, span, a, b):
    last = first + span
    start = first + int(a * (span - 1))
    end = min(last, start + 1 + int(b * 200))
    try:
        plan = E.plan_edit(first, last, start, end, fps)
    except InputError as exc:
        assert "at most" in exc.message  # only too-long ranges may be refused here
        assert (end - start) / fps * 20 > 196 - 2 * E.MIN_CONTEXT - 2
        return
    assert 1 <= plan.num_frames <= 196 and 0 <= plan.edit_start < plan.edit_end <= plan.num_frames
    pos = plan.window_position(np.arange(start, end + 1))
    assert pos.min() >= plan.edit_start - 1e-6 and pos.max() <= plan.edit_end - 1 + 1e-6
    assert plan.window_times[0] >= first - 1e-9 and plan.window_times[-1] < last + fps / 20 + 1e-6
    kept_before, kept_after = plan.edit_start, plan.num_frames - plan.edit_end
    full_before = plan.window_times[0] - first < fps / 20 - 1e-6   # window reaches the first key
    full_after = plan.window_times[-1] >= last - 1e-6
    assert full_before or kept_before >= min(E.MIN_CONTEXT, kept_before + kept_after)
    assert full_after or kept_after >= E.MIN_CONTEXT or plan.num_frames == 196


def test_two_frame_ranges_still_generate_a_model_frame():
    for fps in (24, 60, 120):
        plan = E.plan_edit(1, 200, 100, 101, fps)
        assert plan.edit_end - plan.edit_start >= 1
        pos = plan.window_position([100, 101])
        assert plan.edit_start <= pos[0] and pos[1] <= plan.edit_end - 1


@pytest.mark.parametrize("args,message", [
    ((1, 100, 40, 40, 24), "single frame; select at least 2 frames"),
    ((1, 100, 50, 40, 24), "is empty: its end comes before its start"),
    ((1, 100, 90, 120, 24), "goes outside the animation's keys \\(1-100\\)"),
    ((1, 100, 0, 20, 24), "goes outside"),
    ((5, 5, 5, 6, 24), "keys on a single frame only"),
    ((0, 2000, 100, 400, 24), "12.50 s long; an edit regenerates at most 8.80 s"),
    ((0, 300, 0, 245, 24), "at most 9.30 s"),
])
def test_bad_ranges_are_refused_with_a_reason(args, message):
    with pytest.raises(InputError, match=message):
        E.plan_edit(*args)


def test_a_range_covering_a_short_animation_is_all_generated():
    plan = E.plan_edit(1, 150, 1, 150, 24)
    assert (plan.edit_start, plan.edit_end) == (0, plan.num_frames)


def test_an_extension_regenerates_the_last_keys_and_runs_past_them():
    assert E.extend_range(1, 120, 2.0, 24) == (113, 168)       # 0.3 s overlap (7 frames) + 48 new frames
    assert E.extend_range(1, 3, 2.0, 24) == (1, 51)            # a short clip: the overlap stops at its first key
    plan = E.plan_edit(1, 120, 113, 168, 24, extend=True)
    assert plan.edit_end == plan.num_frames                     # every frame past the range start is generated
    assert plan.window_times[-1] >= 168 and plan.window_times[0] == 1   # all the context comes from before
    pos = plan.window_position(np.arange(113, 169))
    assert pos.min() >= plan.edit_start and pos.max() <= plan.edit_end - 1
    assert plan.window_times[plan.edit_start - 1] < 113
    long = E.plan_edit(0, 3000, 2993, 3060, 30, extend=True)   # a long take: the window ends at the new frames
    assert long.num_frames == 196 and long.edit_end == 196 and long.window_times[-1] >= 3060
    with pytest.raises(InputError, match="goes outside the animation's keys"):
        E.plan_edit(1, 120, 121, 168, 24, extend=True)           # it must start inside the keys
    with pytest.raises(InputError, match="at most"):
        E.plan_edit(1, 120, 113, 113 + 10 * 24, 24, extend=True)
    with pytest.raises(InputError, match="more than 0 and at most 8.5 s"):
        E.extend_range(1, 120, 0.0, 24)
    with pytest.raises(InputError, match="extend again to go on"):
        E.extend_range(1, 120, E.MAX_EXTEND_SECONDS + 0.1, 24)


@pytest.mark.parametrize("fps", [12, 20, 23.976, 24, 25, 30, 50, 60, 120])
def test_the_longest_extension_fits_the_window_at_any_frame_rate(fps):
    start, end = E.extend_range(1, 2000, E.MAX_EXTEND_SECONDS, fps)
    plan = E.plan_edit(1, 2000, start, end, fps, extend=True)
    assert plan.num_frames <= 196 and plan.edit_start >= E.MIN_CONTEXT


def test_an_extension_fades_in_only():
    w = E.blend_weights(20, 5, fade_out=False)
    assert w[0] > 0 and (np.diff(w) >= 0).all() and (w[5:] == 1.0).all()
    np.testing.assert_allclose(w[:5], E.blend_weights(41, 5)[:5])   # the same ramp as an edit's start
    assert E.blend_weights(2, 5, fade_out=False).tolist() == [0.5, 1.0]


# --------------------------------------------------------------------------------------------
# masks, features
# --------------------------------------------------------------------------------------------
def test_masks_keep_outside_and_the_lower_body_inside():
    inbetween = E.edit_mask("in_between", 3, 7, 10, num_samples=2)
    assert inbetween.shape == (2, 10, 263)
    assert inbetween[:, :3].all() and inbetween[:, 7:].all() and not inbetween[:, 3:7].any()
    upper = E.edit_mask("upper_body", 3, 7, 10)
    assert upper[:, :3].all() and upper[:, 7:].all()
    assert (upper[0, 3:7] == lower_body_feature_mask()).all() and upper[0, 5].sum() == 107
    with pytest.raises(InputError, match="not supported"):
        E.edit_mask("legs", 3, 7, 10)


def test_features_cover_every_frame_and_decode_back_to_the_motion():
    joints = rigid(synthetic_joints(60, seed=1), 2.0, (4.0, 0.3, -1.0))   # anywhere in the world
    features, scale = E.joints_to_features(joints)
    assert features.shape == (60, 263) and scale == pytest.approx(1.0, abs=1e-6)  # HumanML3D bone lengths
    decoded = recover_joints_from_features(features)
    yaw, offset = E.fit_yaw_translation(decoded, joints)
    assert np.abs(rigid(decoded, yaw, offset) - joints).max() < 1e-5, "the last frame must be covered too"
    bigger, scale_big = E.joints_to_features(joints * 1.25)
    assert scale_big == pytest.approx(0.8, rel=1e-6)
    with pytest.raises(InputError, match="shape"):
        E.joints_to_features(joints[:1])
    with pytest.raises(InputError, match="NaN"):
        E.joints_to_features(np.where(np.arange(60)[:, None, None] == 5, np.nan, joints))


def test_real_humanml3d_motion_round_trips(sample_012314):
    features, joints = sample_012314
    mine, scale = E.joints_to_features(joints)
    assert scale == pytest.approx(1.0, abs=1e-3)
    # the dataset's heading smoothing saw a longer raw clip: only its last frames may drift a little
    np.testing.assert_allclose(mine[:120, :193], features[:120, :193], atol=1e-3)
    np.testing.assert_allclose(mine[:-1, :259], features[:-1, :259], atol=1e-2)


# --------------------------------------------------------------------------------------------
# re-anchoring
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("yaw", [0.3, -2.9, 3.1])
def test_yaw_translation_fit_is_exact(yaw):
    pts = np.random.default_rng(0).normal(size=(50, 3))
    got_yaw, got_offset = E.fit_yaw_translation(pts, rigid(pts, yaw, (1.0, -2.0, 0.5)))
    assert math.remainder(got_yaw - yaw, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(got_offset, (1.0, -2.0, 0.5), atol=1e-9)


def test_reanchoring_puts_kept_frames_back_and_bridges_the_range():
    original = rigid(synthetic_joints(90, seed=2), 0.7, (2.0, 0.0, 3.0))
    start, end = 30, 60
    # what recovery gives: the canonical frame, and a generated range whose path drifted away from
    # the original's (gradually: recovery integrates velocities), moving every later frame too
    drift = np.clip((np.arange(90) - start + 1) / (end - start + 1), 0, 1)
    offsets = np.array([0.5, 0.0, -0.2]) + drift[:, None] * np.array([1.0, 0.02, 0.6])
    recovered = np.stack([rigid(original[f], -1.0 - 0.4 * d, offsets[f]) for f, d in enumerate(drift)])
    placed = E.reanchor(recovered, original, start, end)
    kept = np.r_[0:start, end:90]
    assert np.abs(placed[kept] - original[kept]).max() < 1e-9
    # inside: the body itself is untouched (rigid per frame), and the path has no jump
    for f in (35, 45, 55):
        np.testing.assert_allclose(np.linalg.norm(placed[f] - placed[f, :1], axis=-1),
                                   np.linalg.norm(original[f] - original[f, :1], axis=-1), atol=1e-9)
    step = np.linalg.norm(np.diff(placed[:, 0], axis=0), axis=-1)
    orig_step = np.linalg.norm(np.diff(original[:, 0], axis=0), axis=-1)
    assert step[start - 2:end + 1].max() < orig_step.max() + 0.05


@pytest.mark.parametrize("start,end", [(0, 30), (60, 90), (0, 90)])
def test_reanchoring_with_kept_frames_on_one_side_or_none(start, end):
    original = rigid(synthetic_joints(90, seed=3), -0.4, (1.0, 0.0, 1.0))
    recovered = rigid(original, 1.1, (-0.3, 0.1, 0.2))
    placed = E.reanchor(recovered, original, start, end)
    # one rigid transform relates them everywhere, so every frame lands back on the original
    np.testing.assert_allclose(placed, original, atol=1e-9)


# --------------------------------------------------------------------------------------------
# blending at the joins
# --------------------------------------------------------------------------------------------
def test_blend_weights_ramp_in_from_both_ends():
    w = E.blend_weights(41, 6)
    assert np.allclose(w, w[::-1]) and 0 < w[0] < 0.1 and (w[6:35] == 1).all() and (w[:6] < 1).all()
    assert (np.diff(w[:7]) > 0).all()
    assert E.blend_weights(2, 6).tolist() == [0.5, 0.5]
    assert E.blend_weights(3, 6).tolist() == [0.5, 1.0, 0.5]
    assert E.blend_weights(1, 6).tolist() == [0.5]
    with pytest.raises(InputError):
        E.blend_weights(0, 6)


def test_blend_hides_the_join_between_two_motions():
    """Cross-fading towards a motion 30 cm off: the velocity jump at the joins is a small part of
    a hard cut's and shrinks with a longer ramp; the middle is the other motion exactly."""
    t = np.arange(120)[:, None]
    original = np.sin(t / 9.0) * [0.3, 0.1, 0.2]
    generated = original + 0.3 * np.cos(t / 4.0) * [1, -1, 0.5]
    fs, fe = 40, 80

    def join_jumps(weights):
        out = original.copy()
        out[fs:fe + 1] = (1 - weights) * original[fs:fe + 1] + weights * generated[fs:fe + 1]
        jump = np.linalg.norm(np.diff(out, 2, axis=0) - np.diff(original, 2, axis=0), axis=-1)
        return max(jump[fs - 2:fs + 1].max(), jump[fe - 1:fe + 2].max()), out

    hard, _ = join_jumps(np.ones((fe - fs + 1, 1)))
    short, _ = join_jumps(E.blend_weights(fe - fs + 1, 3)[:, None])
    long, out = join_jumps(E.blend_weights(fe - fs + 1, 8)[:, None])
    assert hard > 0.3 and long < short < hard / 4 and long < hard / 15
    np.testing.assert_array_equal(out[fs + 8:fe - 7], generated[fs + 8:fe - 7])


def test_blend_length_grows_with_the_mismatch_and_keeps_the_join_below_the_motions_own_accel():
    assert E.blend_length(0.0, 0.01, 24, 200) == round(E.MIN_BLEND_SECONDS * 24)   # at least 0.3 s
    assert E.blend_length(0.0, 0.01, 60, 200) == 18
    assert E.blend_length(5.0, 1e-4, 24, 41) == 13                               # at most a third of the range
    assert E.blend_length(5.0, 1e-4, 24, 2) == 1
    t = np.arange(200)[:, None]
    original = np.sin(t / 4.0) * [0.3, 0.1, 0.2]
    accel = np.linalg.norm(np.diff(original, 2, axis=0), axis=-1).max()
    for offset in (0.2, 0.8, 5.0):
        generated = original + offset * np.array([0.6, 0.0, 0.8]) + 0.05 * np.sin(t / 5.0)
        fs, fe = 50, 150
        ramp = E.blend_length(offset, accel, 24, fe - fs + 1)
        w = E.blend_weights(fe - fs + 1, ramp)[:, None]
        out = original.copy()
        out[fs:fe + 1] = (1 - w) * original[fs:fe + 1] + w * generated[fs:fe + 1]
        jump = np.linalg.norm(np.diff(out, 2, axis=0), axis=-1)[[fs - 2, fs - 1, fe - 1, fe]].max()
        if ramp < (fe - fs + 1) // 3:
            assert ramp >= 7 and jump <= accel, (offset, ramp)
        else:  # capped at a third of the range: the bound of the formula still holds
            assert offset == 5.0 and jump <= 6 * offset / (ramp + 1) ** 2 + accel, (offset, ramp)


# --------------------------------------------------------------------------------------------
# the whole edit with a tiny model
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory):
    from backend.mdm.pipeline import MotionGenerator
    from tests.helpers.tiny_models import write_tiny_clip, write_tiny_model_dir
    root = tmp_path_factory.mktemp("edit_model")
    write_tiny_model_dir(root / "model", diffusion_steps=6)
    write_tiny_clip(root / "clip")
    return MotionGenerator.load(root / "model", "cpu", root / "clip")


@pytest.mark.parametrize("mode", ["in_between", "upper_body"])
def test_edit_motion_keeps_the_rig_frame(tiny_generator, mode):
    original = rigid(synthetic_joints(70, seed=4), 2.2, (3.0, 0.0, -1.5))
    result = E.edit_motion(tiny_generator, original, mode, 25, 50, prompt="a person jumps", seed=3, num_samples=2)
    assert result.joints.shape == (2, 70, 22, 3) and result.features.shape == (2, 70, 263)
    kept = np.r_[0:25, 50:70]
    assert np.abs(result.joints[:, kept] - original[kept]).max() < 2e-3
    inside = result.joints[:, 25:50]
    if mode == "upper_body":
        lower = list(LOWER_BODY_JOINTS)
        assert np.abs(inside[:, :, lower] - original[25:50, lower]).max() < 0.01
        assert np.abs(inside[:, :, list(UPPER_BODY_JOINTS)] - original[25:50, list(UPPER_BODY_JOINTS)]).max() > 0.05
    else:
        assert np.abs(inside - original[25:50]).max() > 0.05
    assert (result.recipe["mode"], result.recipe["edit_start"], result.recipe["edit_end"]) == (mode, 25, 50)
    assert result.recipe["prompt"] == "a person jumps" and result.recipe["input"] == "joints"


def test_edit_motion_refuses_a_range_outside_the_window(tiny_generator):
    with pytest.raises(InputError, match="non-empty part of the 30 frames"):
        E.edit_motion(tiny_generator, synthetic_joints(30), "in_between", 20, 40)


class _Job:
    """The part of server.Job a handler uses, with a one-model cache."""

    def __init__(self, generator):
        self.generator, self.events = generator, []
        self.cache = self

    def get(self, model_dir, device, text_encoder_dir):
        return self.generator, True

    def progress(self, phase, step, total):
        self.events.append((phase, step, total))

    def cancelled(self):
        return False

    def check_cancel(self):
        pass


def _edit_params(path, **kw):
    from backend.service.protocol import validate_params
    return validate_params("edit", {"input_path": str(path), "edit_start": 20, "edit_end": 40, "fit": True,
                                    "steps": 4, "device": "cpu", **kw})


def test_service_edit_of_a_rig_motion_fits_on_the_rigs_skeleton(tiny_generator, tmp_path):
    from backend.motion.smpl_skeleton import posed_joints as fk
    from backend.service import handlers
    rest = builtin_rest_joints() * 1.08                        # a taller user rig
    poses, trans = random_motion(np.random.default_rng(5), frames=60, keys=5)
    original = rigid(fk(poses, trans, rest)[:, :22], 0.9, (1.0, 0.0, 2.0))
    np.savez(tmp_path / "rig.npz", joints=original.astype(np.float32), rest_joints=rest.astype(np.float32))
    job = _Job(tiny_generator)
    arrays, info = handlers.edit(_edit_params(tmp_path / "rig.npz", mode="upper_body"), job)
    assert np.allclose(arrays["rest_joints"], rest, atol=1e-6)
    fitted = fk(arrays["poses"][0].astype(np.float64), arrays["trans"][0].astype(np.float64), rest)[:, :22]
    kept = np.r_[0:20, 40:60]
    assert np.linalg.norm(fitted[kept] - original[kept], axis=-1).mean() < 0.01   # the rig's own frame
    # inside the range the fit also balances the (random) new upper body, on other bone lengths
    assert np.linalg.norm(fitted[20:40, list(LOWER_BODY_JOINTS)] - original[20:40, list(LOWER_BODY_JOINTS)],
                          axis=-1).mean() < 0.03
    recipe = json.loads(str(arrays["recipe"]))
    assert recipe["mode"] == "upper_body" and recipe["retarget_scale"] == pytest.approx(1 / 1.08, rel=1e-3)
    assert ("fit", 1, 1) in job.events and info["recipe"]["input"] == "joints"
    with pytest.raises(InputError, match="leave 'smpl_path' empty"):
        handlers.edit({**_edit_params(tmp_path / "rig.npz"), "smpl_path": str(tmp_path / "rig.npz")}, job)
    np.savez(tmp_path / "bad.npz", joints=np.zeros((1, 22, 3), np.float32))
    with pytest.raises(InputError, match=r"bad.npz: joints must have shape \[W >= 2, 22, 3\]"):
        handlers.edit(_edit_params(tmp_path / "bad.npz"), job)
    np.savez(tmp_path / "none.npz", poses=np.zeros((3, 24, 3), np.float32))
    with pytest.raises(InputError, match="no 'features' or 'joints' array inside"):
        handlers.edit(_edit_params(tmp_path / "none.npz"), job)
