"""motion_metrics on synthetic joint sequences whose answers are known exactly."""
import numpy as np
import pytest

from backend.errors import InputError
from backend.motion import skeleton as S
from backend.training import motion_metrics as M

T = 101  # 5 s at 20 fps


def standing(n=T):
    """A rest-pose figure facing +z, repeated n times: [n, 22, 3]."""
    return np.repeat(S.hml_rest_pose()[None], n, axis=0)


def yaw_matrix(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def test_forward_displacement_follows_initial_facing():
    t = np.arange(T) / 20.0
    for yaw in (0.0, 1.0, -2.5):
        rot = yaw_matrix(yaw)
        facing = rot @ np.array([0.0, 0.0, 1.0])
        left = rot @ np.array([1.0, 0.0, 0.0])
        base = standing() @ rot.T
        forward = base + (0.5 * t)[:, None, None] * facing
        assert M.forward_displacement(forward, seconds=4.0) == pytest.approx(2.0)
        assert M.forward_displacement(forward) == pytest.approx(2.5)
        assert M.forward_displacement(base - (0.5 * t)[:, None, None] * facing, 4.0) == pytest.approx(-2.0)
        assert M.forward_displacement(base + (0.5 * t)[:, None, None] * left, 4.0) == pytest.approx(0.0, abs=1e-9)


def test_heading_change_is_signed_and_unwrapped():
    for total in (np.pi, -0.5 * np.pi, 1.9 * np.pi):
        yaws = np.clip(np.linspace(-0.1, 1.1, T), 0.0, 1.0) * total  # still at both ends
        joints = np.stack([standing(1)[0] @ yaw_matrix(a).T for a in yaws])
        assert M.heading_change(joints) == pytest.approx(total, abs=0.03)
        assert M.heading_angles(joints)[-1] - M.heading_angles(joints)[0] == pytest.approx(total)
    # crossing +-180 degrees must not jump by 2 pi
    yaws = np.linspace(np.radians(170), np.radians(190), T)
    joints = np.stack([standing(1)[0] @ yaw_matrix(a).T for a in yaws])
    assert M.heading_change(joints) == pytest.approx(np.radians(20), abs=0.01)


def test_pelvis_rise_and_lowering():
    t = np.arange(T) / 20.0
    hop = np.clip(0.3 - 4.905 * (t - 2.5) ** 2, 0.0, None)  # airborne around t = 2.5 s, apex 0.3 m
    joints = standing() + hop[:, None, None] * np.array([0.0, 1.0, 0.0])
    assert M.pelvis_rise(joints) == pytest.approx(0.3)
    assert M.pelvis_lowering(joints) == pytest.approx(0.0)
    sit = standing()
    sit[:, 0, 1] -= np.clip(t - 1.0, 0.0, 0.4)
    assert M.pelvis_lowering(sit) == pytest.approx(0.4)
    assert M.pelvis_rise(sit) == pytest.approx(0.0)
    assert M.standing_height(sit) == pytest.approx(S.hml_rest_pose()[0, 1])


def test_wrist_above_head_fraction_needs_the_other_hand_down():
    joints = standing(100)
    head_y = joints[0, 15, 1]
    joints[20:50, 21, 1] = head_y + 0.1           # right wrist above the head in 30 frames
    assert M.wrist_above_head_fraction(joints, "right") == pytest.approx(0.30)
    assert M.wrist_above_head_fraction(joints, "left") == pytest.approx(0.0)
    joints[40:50, 20, 1] = joints[0, 16, 1] + 0.05  # left wrist above its shoulder in 10 of them
    assert M.wrist_above_head_fraction(joints, "right") == pytest.approx(0.20)


def test_ankle_raise_and_speed():
    t = np.arange(T) / 20.0
    joints = standing()
    joints[30:40, 7, 1] += 0.5
    assert M.ankle_raise(joints, "left") == pytest.approx(0.5)
    assert M.ankle_raise(joints, "right") == pytest.approx(0.0)
    moving = standing() + (1.3 * t)[:, None, None] * np.array([0.6, 0.0, 0.8])
    assert M.mean_horizontal_speed(moving) == pytest.approx(1.3)
    assert M.mean_horizontal_speed(standing()) == pytest.approx(0.0)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(InputError, match=r"\[T>=2, 22, 3\]"):
        M.pelvis_rise(np.zeros((10, 24, 3)))
    bad = standing()
    bad[3, 4, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        M.mean_horizontal_speed(bad)
    with pytest.raises(InputError, match="'left' or 'right'"):
        M.ankle_raise(standing(), "middle")


def test_foot_skate_counts_only_grounded_steps():
    feet = list(S.FOOT_CONTACT_JOINTS)
    t = np.arange(40)
    joints = np.zeros((40, 22, 3))
    joints[:, :, 1] = 1.0                                     # everything else high up
    joints[:, feet, 1] = 0.05                               # feet on the ground ...
    joints[:, feet, 2] = 0.01 * t[:, None]                  # ... sliding 1 cm per frame
    assert M.foot_skate(joints) == pytest.approx(0.01)
    lifted = joints.copy()
    lifted[20:, feet, 1] = 0.4                              # second half in the air: those steps do not count
    lifted[20:, feet, 2] = 0.1 * t[20:, None]
    assert M.foot_skate(lifted) == pytest.approx(0.01)
    planted = joints.copy()
    planted[:, feet, 2] = 0.0
    assert M.foot_skate(planted) == 0.0
    assert M.foot_skate(planted, grounded_by=joints) == 0.0   # judged on the raw motion's frames
    with pytest.raises(InputError):
        M.foot_skate(joints, grounded_by=joints[:10])


def test_foot_acceleration_is_the_largest_second_difference_of_an_ankle_or_toe():
    t = np.arange(30, dtype=float)
    joints = np.zeros((30, 22, 3))
    joints[:, :, 2] = 0.02 * t[:, None]                     # everything moving steadily: no acceleration
    assert M.foot_acceleration(joints) == pytest.approx(0.0)
    popped = joints.copy()
    popped[12:, S.FOOT_CONTACT_JOINTS[1], 0] += 0.05         # one toe jumps 5 cm sideways at frame 12
    assert M.foot_acceleration(popped) == pytest.approx(0.05)
    wrist_pop = joints.copy()
    wrist_pop[12:, 21, 0] += 0.5                             # not a foot joint
    assert M.foot_acceleration(wrist_pop) == pytest.approx(0.0)
    # against the motion before a correction: only what the correction added
    assert M.foot_acceleration(popped, reference=popped) == 0.0
    assert M.foot_acceleration(popped, reference=joints) == pytest.approx(0.05)
    assert M.foot_acceleration(joints, reference=popped) == 0.0
    with pytest.raises(InputError):
        M.foot_acceleration(joints, reference=joints[:10])
