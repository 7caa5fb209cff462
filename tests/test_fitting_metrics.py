"""The evaluation metrics measure what they claim (they gate the fitting acceptance tests)."""
import numpy as np

from backend.fitting import metrics as M
from backend.fitting.rest_skeleton import builtin_rest_joints
from backend.motion import quaternion as Q
from backend.motion.smpl_skeleton import posed_joints


def _turning_body(frames=50, noise=0.0, seed=0):
    """The built-in skeleton spinning at a constant rate (zero angular acceleration) + noise."""
    poses = np.zeros((frames, 24, 3))
    poses[:, 0, 1] = np.linspace(0, 2.0, frames)
    poses[:, 4, 0] = np.linspace(0.2, 1.0, frames)  # knee bending at a constant rate too
    joints = posed_joints(poses, np.zeros((frames, 3)), builtin_rest_joints())
    return poses, joints + np.random.default_rng(seed).normal(0, noise, joints.shape)


def test_bone_jitter_ignores_steady_motion_and_grows_with_noise():
    _, joints = _turning_body()
    walking = joints[:1] + np.linspace(0, 3, 50)[:, None, None] * [1.0, 0.0, 0.5]
    assert M.bone_jitter(walking) < 1e-12
    # a spin plus a bending knee is a genuine, smooth angular acceleration: small, not 0
    assert 0 < M.bone_jitter(joints) < 1e-3
    _, shaky = _turning_body(noise=0.002)
    _, shakier = _turning_body(noise=0.005)
    assert M.bone_jitter(joints) < M.bone_jitter(shaky) < M.bone_jitter(shakier)


def test_rotation_jitter_sees_twist_that_bone_jitter_cannot():
    frames = 40
    twist = np.zeros((frames, 1, 3))
    twist[::2, 0, 0] = 0.05  # alternating roll about the bone's own axis (x)
    assert M.rotation_jitter(Q.axis_angle_to_matrix(twist)) > 0.09
    steady = np.zeros((frames, 1, 3))
    steady[:, 0, 0] = np.linspace(0, 1, frames)
    assert M.rotation_jitter(Q.axis_angle_to_matrix(steady)) < 1e-9


def test_errors_feet_flips_and_hinges():
    poses, joints = _turning_body()
    moved = joints.copy()
    moved[:, 5] += [0.0, 0.03, 0.04]  # one joint off by 5 cm
    assert np.isclose(M.mpjpe(moved, joints), 0.05 / 22)
    lifted = joints + [0, 0.015, 0]
    np.testing.assert_allclose(M.foot_height_error(lifted, joints), 0.015)
    assert M.quaternion_sign_flips(poses) == 0
    flipped = poses.copy()
    flipped[10:, 0] = Q.quat_to_axis_angle(-Q.axis_angle_to_quat(poses[10:, 0]), shortest=False)
    assert M.quaternion_sign_flips(flipped) == 1
    hinge = Q.axis_angle_to_matrix(np.array([[1.2, 0, 0]]))
    assert M.off_hinge_angle(hinge, [1, 0, 0])[0] < 1e-9
    tilted = Q.axis_angle_to_matrix(np.array([[0, 0, 0.3]])) @ hinge
    np.testing.assert_allclose(M.off_hinge_angle(tilted, [1, 0, 0]), 0.3, rtol=1e-9)
