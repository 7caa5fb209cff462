"""Loop: finding a motion's cycle and closing it (backend/motion/loop.py)."""
import numpy as np
import pytest

from backend.errors import InputError
from backend.fitting.rest_skeleton import builtin_rest_joints
from backend.motion import quaternion as Q
from backend.motion.loop import close_loop, find_loop

PERIOD = 24


def periodic_joints(frames: int = 120, speed: float = 0.05, phase_noise: float = 0.0) -> np.ndarray:
    """[T, 22, 3] a T-pose whose limbs swing with a 24-frame period while it travels along +z."""
    rest = builtin_rest_joints()[:22]
    t = np.arange(frames)[:, None]
    swing = np.sin(2 * np.pi * t / PERIOD + phase_noise * np.random.default_rng(0).normal(size=(frames, 1)))
    joints = np.repeat(rest[None], frames, axis=0)
    for joint, amplitude in ((20, 0.15), (21, -0.15), (7, 0.1), (8, -0.1), (10, 0.1), (11, -0.1)):
        joints[:, joint, 2] += amplitude * swing[:, 0]
    return joints + speed * t[..., None] * np.array([0.0, 0.0, 1.0])


def test_find_loop_finds_the_period():
    start, end, mismatch = find_loop(periodic_joints())
    assert (end - start) % PERIOD == 0 and end - start >= 20 and mismatch < 1e-9
    # the longest of the equally good cycles
    assert end - start == max(k * PERIOD for k in range(1, 5) if start + k * PERIOD < 119)


def test_find_loop_refuses_a_clip_shorter_than_a_cycle():
    with pytest.raises(InputError, match="a loop needs a motion longer than 1.10 s"):
        find_loop(periodic_joints(frames=21))


def smooth_poses(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    knots = rng.normal(scale=0.3, size=(4, 24, 3))
    t = np.linspace(0, 3, frames)
    return np.stack([np.stack([np.interp(t, np.arange(4), knots[:, j, c]) for c in range(3)], -1)
                     for j in range(24)], 1)


def test_close_loop_ends_where_it_starts_and_spreads_the_mismatch():
    poses = smooth_poses(60)
    trans = np.stack([0.01 * np.arange(60), 0.9 + 0.02 * np.sin(np.arange(60) / 5), 0.04 * np.arange(60)], -1)
    closed, path, travel = close_loop(poses, trans, 10, 50)
    assert closed.shape == (41, 24, 3) and path.shape == (41, 3)
    q = Q.axis_angle_to_quat(closed)
    np.testing.assert_allclose(np.abs((q[-1] * q[0]).sum(-1)), 1.0, atol=1e-9)     # last pose = first pose
    np.testing.assert_allclose(closed[0], poses[10], atol=1e-9)                    # the start is untouched
    np.testing.assert_allclose(path[-1] - path[0], travel, atol=1e-12)
    assert travel[1] == 0.0 and path[0, 1] == trans[10, 1]
    # how far each frame moved from the original grows steadily along the cycle (spread, not a jump)
    original = Q.axis_angle_to_quat(poses[10:51])
    moved = 2 * np.arccos(np.clip(np.abs((q * original).sum(-1)), 0, 1)).max(-1)          # [41] radians
    assert np.all(np.diff(moved[:-1]) > -1e-6) and moved[-2] <= moved[-1] + 1e-9


def test_a_turning_cycle_loses_its_net_turn_and_its_path_turns_back_with_it():
    frames = 41
    yaw = np.radians(30) * np.arange(frames) / (frames - 1)                 # turns 30 degrees over the cycle
    poses = np.zeros((frames, 24, 3))
    poses[:, 0, 1] = yaw
    forward = np.stack([np.sin(yaw), np.zeros(frames), np.cos(yaw)], -1)
    trans = np.concatenate([np.zeros((1, 3)), np.cumsum(0.05 * forward[:-1], axis=0)])   # walks where it faces
    trans[:, 1] = 0.9
    closed, path, travel = close_loop(poses, trans, 0, frames - 1)
    np.testing.assert_allclose(closed[:, 0, 1], 0.0, atol=1e-9)              # no net turn: it faces +z all along
    steps = np.diff(path, axis=0)
    np.testing.assert_allclose(steps[:, 0], 0.0, atol=1e-9)                  # and walks straight along +z
    np.testing.assert_allclose(np.linalg.norm(travel), 0.05 * (frames - 1), rtol=1e-9)
    with pytest.raises(InputError):
        close_loop(poses, trans, 5, 5)


def test_a_still_stretch_is_not_taken_for_a_cycle():
    # standing still for 2 s, then swinging: a still cycle would have no seam at all, but it is no loop
    moving = periodic_joints(frames=100, speed=0.0)
    joints = np.concatenate([np.repeat(moving[:1], 40, axis=0), moving])
    start, end, mismatch = find_loop(joints)
    assert end > 40 and mismatch > 0.0


def test_heading_yaw_is_zero_facing_z_and_positive_towards_x():
    from backend.motion.skeleton import heading_yaw
    np.testing.assert_allclose(heading_yaw(np.array([[0, 0, 1.0], [1.0, 0, 0], [0, 0, -1.0]])),
                               [0.0, np.pi / 2, np.pi])
