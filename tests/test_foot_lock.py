"""Foot lock: planted feet stop sliding, the legs keep their bone lengths, nothing else moves."""
import numpy as np
import pytest

from backend.fitting.rest_skeleton import builtin_rest_joints
from backend.motion.foot_lock import contact_segments, lock_feet, pin_offsets, two_bone_knee

L_HIP, L_KNEE, L_ANKLE, L_TOE = 1, 4, 7, 10
LEG = [L_KNEE, L_ANKLE, L_TOE]


def crouched_pose() -> np.ndarray:
    """[22, 3] the built-in T-pose (y up, facing +z) with the body 8 cm lower and the knees bent
    forward, so a planted foot can stay put while the hips move a few centimetres."""
    rest = builtin_rest_joints()[:22]
    pose = rest.copy()
    pose[[j for j in range(22) if j not in (7, 8, 10, 11)], 1] -= 0.08
    for hip, knee, ankle in ((1, 4, 7), (2, 5, 8)):
        thigh, shin = np.linalg.norm(rest[knee] - rest[hip]), np.linalg.norm(rest[ankle] - rest[knee])
        hint = pose[[hip]] + [[0.0, -0.2, 0.3]]                         # knee forward
        pose[knee] = two_bone_knee(pose[[hip]], hint, pose[[ankle]], np.array([thigh]), np.array([shin]))[0][0]
    return pose


def sliding_clip(frames: int = 40, speed: float = 0.005) -> np.ndarray:
    """[T, 22, 3] the crouched pose gliding forward (+z) by ``speed`` m per frame: every foot skates."""
    return crouched_pose()[None] + np.arange(frames)[:, None, None] * np.array([0.0, 0.0, speed])


def bone_lengths(joints):
    pairs = [(L_HIP, L_KNEE), (L_KNEE, L_ANKLE), (L_ANKLE, L_TOE)]
    return np.stack([np.linalg.norm(joints[:, a] - joints[:, b], axis=-1) for a, b in pairs], -1)


def _line(x: np.ndarray) -> np.ndarray:
    """[T] x positions -> [T, 3] track on the ground."""
    return np.stack([x, np.zeros_like(x), np.zeros_like(x)], -1)


def test_a_contact_that_flickers_off_for_two_frames_is_one_pin():
    # a pivoting toe: 2 mm of drift per frame, its label off for frames 10-11
    track = _line(0.002 * np.arange(24))
    contact = np.ones(24, bool)
    contact[10:12] = False
    offset, weight = pin_offsets(track, contact, max_slide=0.2)
    pinned = track + weight[:, None] * offset
    np.testing.assert_allclose(pinned[:, 0], pinned[0, 0], atol=1e-12)          # one spot all along
    # a gap of 3 frames (longer than a flicker) keeps two pins; so does a joined run that slid too far
    contact[10:13] = False
    offset, weight = pin_offsets(track, contact, max_slide=0.2)
    assert np.ptp((track + weight[:, None] * offset)[[0, 23], 0]) > 0.02
    contact[10:13] = True
    contact[10:12] = False
    offset, weight = pin_offsets(track, contact, max_slide=0.02)                # 10 frames of 2 mm fit, 24 do not
    assert np.ptp((track + weight[:, None] * offset)[[0, 23], 0]) > 0.02


def test_fades_between_two_close_pins_blend_instead_of_jumping():
    # sliding 1 cm per frame; contact on frames 0-9 and 14-23: pins 4.5 cm behind and ahead at the edges
    track = _line(0.01 * np.arange(24))
    contact = np.ones(24, bool)
    contact[10:14] = False
    offset, weight = pin_offsets(track, contact)
    pinned = (track + weight[:, None] * offset)[:, 0]
    steps = np.diff(pinned[9:15])
    # each pin's fade alone ("the stronger one wins") would jump 5.5 cm between frames 11 and 12
    assert steps.max() < 0.04 and (steps > 0).all(), steps
    np.testing.assert_allclose(pinned[:10], 0.045)                              # the pins themselves hold
    np.testing.assert_allclose(pinned[14:], 0.185)


def test_contact_segments_are_runs_of_at_least_min_frames():
    contact = np.array([0, 1, 1, 1, 0, 1, 0, 0, 1, 1], bool)
    assert contact_segments(contact) == [(1, 3), (8, 9)]
    assert contact_segments(contact, min_frames=1) == [(1, 3), (5, 5), (8, 9)]
    assert contact_segments(np.zeros(5, bool)) == []


def test_a_planted_foot_stays_put_and_the_leg_keeps_its_lengths():
    clip = sliding_clip()
    contacts = np.zeros((len(clip), 4))
    contacts[:, :2] = 1.0                                             # left ankle and toe planted throughout
    locked = lock_feet(clip, contacts)
    for j in (L_ANKLE, L_TOE):
        horizontal = locked[:, j][:, [0, 2]]
        assert np.abs(horizontal - horizontal.mean(0)).max() < 1e-6, "the planted foot still slides"
        assert np.allclose(horizontal.mean(0), clip[:, j][:, [0, 2]].mean(0))   # pinned where it was on average
        assert np.allclose(locked[:, j, 1], clip[:, j, 1])            # heights unchanged
    assert np.allclose(bone_lengths(locked), bone_lengths(clip), atol=1e-9)
    others = [j for j in range(22) if j not in LEG]
    assert np.array_equal(locked[:, others], clip[:, others]), "only the planted leg's knee, ankle and toe move"
    assert (locked[:, L_KNEE, 2] - locked[:, L_HIP, 2] > 0).all(), "the knee flipped behind the leg"


def test_the_correction_fades_in_and_out_around_a_contact():
    clip = sliding_clip()
    contacts = np.zeros((len(clip), 4))
    contacts[15:25, 0] = 1.0                                          # left ankle only, frames 15..24
    locked = lock_feet(clip, contacts, blend_frames=3)
    moved = np.abs(locked - clip).max(axis=(1, 2)) > 0
    assert not moved[:12].any() and not moved[28:].any() and moved[12:28].all()
    ankle = locked[:, L_ANKLE, 2]
    assert np.abs(np.diff(ankle[15:25])).max() < 1e-9                 # pinned inside the run
    correction = np.abs(ankle - clip[:, L_ANKLE, 2])
    assert correction[12] < correction[13] < correction[14] <= correction[15] + 1e-12   # ramps in
    assert np.linalg.norm(locked[:, L_TOE] - locked[:, L_ANKLE], axis=-1) == pytest.approx(
        np.linalg.norm(clip[:, L_TOE] - clip[:, L_ANKLE], axis=-1))  # the toe comes along


def test_labels_in_the_air_or_on_a_long_slide_are_not_trusted():
    clip = sliding_clip()
    lifted = clip.copy()
    lifted[:, [L_KNEE, L_ANKLE, L_TOE], 1] += np.where(np.arange(len(clip)) >= 20, 0.3, 0.0)[:, None]
    contacts = np.zeros((len(clip), 4))
    contacts[20:, :2] = 1.0                                          # "contact" 30 cm above the floor
    assert np.array_equal(lock_feet(lifted, contacts), lifted)
    fast = sliding_clip(speed=0.05)                                  # 2 m in 40 frames: a step, not a plant
    contacts[:] = 0.0
    contacts[:, :2] = 1.0
    assert np.array_equal(lock_feet(fast, contacts), fast)
    assert not np.array_equal(lock_feet(fast, contacts, max_slide=2.0), fast)


def test_the_smpl_fit_follows_the_pinned_feet():
    from backend.fitting.results import fit_result_arrays
    clip = sliding_clip()[None]                                      # [1, 40, 22, 3]
    contacts = np.zeros((1, 40, 4))
    contacts[..., :2] = 1.0
    free = fit_result_arrays(clip)["joints_fitted"][0, :, L_ANKLE]
    pinned = fit_result_arrays(clip, foot_contacts=contacts)["joints_fitted"][0, :, L_ANKLE]
    assert np.ptp(free[:, 2]) > 0.15                                 # without: the foot skates 19.5 cm
    assert np.ptp(pinned[:, 2]) < 0.01
    with pytest.raises(Exception, match="foot contacts must have shape"):
        fit_result_arrays(clip, foot_contacts=contacts[:, :10])


def test_a_pin_out_of_reach_leaves_the_knee_bent():
    clip = sliding_clip(speed=0.02)                                   # 80 cm of glide: far out of the leg's reach
    contacts = np.zeros((len(clip), 4))
    contacts[:, :2] = 1.0
    locked = lock_feet(clip, contacts, max_slide=2.0)
    lengths = bone_lengths(locked)
    reach = np.linalg.norm(locked[:, L_ANKLE] - locked[:, L_HIP], axis=-1) / (lengths[:, 0] + lengths[:, 1])
    original = np.linalg.norm(clip[:, L_ANKLE] - clip[:, L_HIP], axis=-1) / (lengths[:, 0] + lengths[:, 1])
    assert (reach <= np.maximum(0.99, original) + 1e-9).all() and reach.max() > 0.985   # stretched, not straight
    assert np.allclose(lengths, bone_lengths(clip), atol=1e-9)
    slide = np.abs(np.diff(locked[:, L_ANKLE, 2]))
    assert slide.max() < 0.02                                         # what is left of the glide, never more
