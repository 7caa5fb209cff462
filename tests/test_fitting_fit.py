"""The fitter: exact on synthetic SMPL motion, accurate and smooth on real HumanML3D motion."""
import numpy as np
import pytest

from backend.errors import InputError
from backend.fitting import metrics as M
from backend.fitting import refine as R
from backend.fitting.fitter import FitConfig, fit_joints
from backend.fitting.ik import kabsch, rest_offsets
from backend.fitting.rest_skeleton import builtin_rest_joints
from backend.fitting.smpl_file import load_smpl
from backend.motion import quaternion as Q
from backend.motion.skeleton import HML_TARGET_BONE_LENGTHS, SMPL_PARENTS
from backend.motion.smpl_skeleton import forward_kinematics, posed_joints
from tests.helpers.synthetic_motion import HINGES, random_motion
from tests.helpers.synthetic_smpl import SMPL_NEUTRAL_LIKE_REST, make_smpl_arrays, write_smpl_pkl


@pytest.fixture(scope="module")
def smpl_model(tmp_path_factory):
    return load_smpl(write_smpl_pkl(tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.pkl", make_smpl_arrays()))


# ---------------------------------------------------------------------------------------------
# acceptance 1: synthetic round trip through an SMPL-format file
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_round_trip_is_exact_and_bends_about_the_hinges(smpl_model, seed):
    poses, trans = random_motion(np.random.default_rng(seed), frames=60)
    targets = posed_joints(poses, trans, smpl_model.rest_joints())[:, :22]
    fit = fit_joints(targets, smpl=smpl_model)
    assert M.mpjpe(fit.joints_fitted, targets) <= 1e-3
    fitted_rot, true_rot = Q.axis_angle_to_matrix(fit.poses), Q.axis_angle_to_matrix(poses)
    for joint, axis in HINGES.items():
        assert np.degrees(M.off_hinge_angle(fitted_rot[:, joint], axis)).mean() <= 5.0
        # and the bend itself is the true one
        bend_err = np.degrees(np.abs(np.linalg.norm(fit.poses[:, joint], axis=-1)
                                     - np.linalg.norm(poses[:, joint], axis=-1)))
        assert np.median(bend_err) < 1.0
    # the pelvis orientation is fully observable: it must be the true one (up to the smoothness
    # term's pull at the motion's slerp key frames)
    rel = np.swapaxes(fitted_rot[:, 0], -1, -2) @ true_rot[:, 0]
    pelvis_err = np.degrees(np.linalg.norm(Q.matrix_to_axis_angle(rel), axis=-1))
    assert pelvis_err.mean() < 0.1 and pelvis_err.max() < 1.0
    assert M.quaternion_sign_flips(fit.poses) == 0
    assert fit.betas.shape == (10,) and not fit.betas.any()


def test_analytic_ik_alone_is_exact_on_a_matching_skeleton():
    rest = builtin_rest_joints()
    poses, trans = random_motion(np.random.default_rng(5), frames=40, min_bend=0.4)
    targets = posed_joints(poses, trans, rest)[:, :22]
    fit = fit_joints(targets, rest_joints=rest, config=FitConfig(iterations=0))
    assert M.mpjpe(fit.joints_fitted, targets) < 1e-9
    for joint, axis in HINGES.items():  # bends over ~23 degrees: an exact hinge
        assert np.degrees(M.off_hinge_angle(Q.axis_angle_to_matrix(fit.poses[:, joint]), axis)).max() < 1e-4


def test_fitted_betas_reproduce_a_shaped_body(smpl_model):
    true_betas = np.random.default_rng(3).normal(0, 1.0, 10)
    poses, trans = random_motion(np.random.default_rng(4), frames=30)
    targets = posed_joints(poses, trans, smpl_model.rest_joints(true_betas))[:, :22]
    unshaped = fit_joints(targets, smpl=smpl_model)
    shaped = fit_joints(targets, smpl=smpl_model, fit_betas=True)
    assert M.mpjpe(shaped.joints_fitted, targets) < 1e-3 < M.mpjpe(unshaped.joints_fitted, targets)
    np.testing.assert_allclose(shaped.rest_joints, smpl_model.rest_joints(shaped.betas))


# ---------------------------------------------------------------------------------------------
# acceptance 2: the real HumanML3D motion on an SMPL-neutral-like skeleton, beta = 0
# ---------------------------------------------------------------------------------------------
@pytest.mark.shared
def test_real_motion_on_smpl_neutral_skeleton(sample_012314):
    target = sample_012314[1].astype(np.float64)
    fit = fit_joints(target, rest_joints=SMPL_NEUTRAL_LIKE_REST)
    assert M.mpjpe(fit.joints_fitted, target) <= 0.016
    assert M.foot_height_error(fit.joints_fitted, target).max() <= 0.02
    assert M.quaternion_sign_flips(fit.poses) == 0
    assert M.bone_jitter(fit.joints_fitted) <= M.bone_jitter(target)
    np.testing.assert_allclose(fit.per_frame_error, M.joint_errors(fit.joints_fitted, target).mean(-1))
    # twist is smooth too: pelvis and spine3, whose full rotation the targets define, jitter no
    # more than the target's own frames; the refinement does not add jitter to the IK solution
    rest = SMPL_NEUTRAL_LIKE_REST
    _, glob = forward_kinematics(Q.axis_angle_to_matrix(fit.poses), fit.trans, rest)
    off = rest_offsets(rest)
    for joint, kids in ((0, [1, 2, 3]), (9, [12, 13, 14])):
        dirs = target[:, kids] - target[:, [joint]]
        frames = kabsch(off[kids] / np.linalg.norm(off[kids], axis=-1, keepdims=True),
                        dirs / np.linalg.norm(dirs, axis=-1, keepdims=True))
        assert M.rotation_jitter(glob[:, [joint]]) <= M.rotation_jitter(frames[:, None])
    ik_only = fit_joints(target, rest_joints=rest, config=FitConfig(iterations=0))
    _, ik_glob = forward_kinematics(Q.axis_angle_to_matrix(ik_only.poses), ik_only.trans, rest)
    assert M.rotation_jitter(glob[:, R.ACTIVE]) <= M.rotation_jitter(ik_glob[:, R.ACTIVE])
    assert M.mpjpe(fit.joints_fitted, target) < 0.6 * M.mpjpe(ik_only.joints_fitted, target)


@pytest.mark.shared
def test_real_motion_on_the_builtin_skeleton_is_near_exact(sample_012314):
    target = sample_012314[1].astype(np.float64)
    fit = fit_joints(target)
    assert M.mpjpe(fit.joints_fitted, target) < 0.004
    assert M.foot_height_error(fit.joints_fitted, target).max() <= 0.01
    assert M.bone_jitter(fit.joints_fitted) <= M.bone_jitter(target)


# ---------------------------------------------------------------------------------------------
# batches, input checking, the built-in skeleton
# ---------------------------------------------------------------------------------------------
def test_batched_clips_fit_like_single_clips_and_pad_with_the_last_frame():
    rng = np.random.default_rng(7)
    rest = builtin_rest_joints()
    clips = np.stack([posed_joints(*random_motion(rng, frames=30), rest)[:, :22] for _ in range(2)])
    clips[1, 18:] = 1e3  # junk after the end of clip 1 must not matter
    batch = fit_joints(clips, lengths=[30, 18])
    assert batch.poses.shape == (2, 30, 24, 3) and batch.per_frame_error.shape == (2, 30)
    for k, n in enumerate((30, 18)):
        one = fit_joints(clips[k, :n])
        np.testing.assert_allclose(batch.joints_fitted[k, :n], one.joints_fitted, atol=1e-9)
        np.testing.assert_allclose(batch.poses[k, :n], one.poses, atol=1e-9)
    np.testing.assert_array_equal(batch.poses[1, 18:], np.broadcast_to(batch.poses[1, 17], (12, 24, 3)))


@pytest.mark.parametrize("joints,kwargs,pattern", [
    (np.zeros((10, 21, 3)), {}, r"\[T, 22, 3\]"),
    (np.full((10, 22, 3), np.nan), {}, "NaN"),
    (np.zeros((2, 10, 22, 3)) + builtin_rest_joints()[:22], {"lengths": [10, 11]}, "lengths"),
    (np.zeros((10, 22, 3)), {}, "metres"),
    (builtin_rest_joints()[None, :22] * 100, {}, "centimetres"),
    (builtin_rest_joints()[None, :22], {"fit_betas": True}, "SMPL model file"),
])
def test_bad_input_is_an_input_error(joints, kwargs, pattern):
    with pytest.raises(InputError, match=pattern):
        fit_joints(joints, **kwargs)


def test_builtin_skeleton_is_a_t_pose_with_humanml3d_bone_lengths():
    rest = builtin_rest_joints()
    bones = rest[1:] - rest[SMPL_PARENTS[1:]]
    np.testing.assert_allclose(np.linalg.norm(bones[:21], axis=-1), HML_TARGET_BONE_LENGTHS[1:], atol=1e-12)
    assert rest[:, 1].min() == 0.0 and rest[0, 0] == 0.0 and rest[0, 2] == 0.0
    forearms = bones[[19, 20]]  # bones[i] ends at joint i + 1: the wrists 20 (left) and 21 (right)
    assert forearms[0, 0] > 0.95 * np.linalg.norm(forearms[0])
    assert forearms[1, 0] < -0.95 * np.linalg.norm(forearms[1])
    assert np.all(rest[[7, 8, 10, 11], 1] < 0.15) and rest[15, 1] > 1.4  # feet down, head up


# ---------------------------------------------------------------------------------------------
# the Gauss-Newton internals
# ---------------------------------------------------------------------------------------------
def _problem(seed=1, frames=3):
    rng = np.random.default_rng(seed)
    rest = builtin_rest_joints()
    local = Q.axis_angle_to_matrix(rng.normal(size=(frames, 24, 3)) * 0.5)
    trans = rng.normal(size=(frames, 3))
    targets = posed_joints(rng.normal(size=(frames, 24, 3)) * 0.5, rng.normal(size=(frames, 3)), rest)[:, :22]
    weights = R.RefineWeights(pos=rng.uniform(0.5, 2, 22), dir=np.r_[0, rng.uniform(0.01, 0.1, 21)],
                              prior=0.0, smooth=0.0, hinge=0.0, damping=0.0)
    return rest, local, trans, targets, weights


def test_normal_equations_match_finite_differences():
    rest, local, trans, targets, w = _problem()
    frames = len(local)
    system, glob = R.normal_equations(np.moveaxis(local, 0, -1).copy(), trans.T.copy(),
                                      np.moveaxis(targets, 0, -1).copy(), rest, w, np.moveaxis(local, 0, -1))
    h, g = system.dense()
    parent_rot = np.moveaxis(R._parent_rotations(glob), -1, 0)
    bone_len = np.linalg.norm(rest_offsets(rest)[1:22], axis=-1)

    def residuals(step):  # step [F, 54]: world rotation increments of the 17 joints + translation
        delta = (np.swapaxes(parent_rot, -1, -2) @ step[:, :51].reshape(frames, 17, 3, 1))[..., 0]
        moved = local.copy()
        moved[:, R.ACTIVE] = Q.axis_angle_to_matrix(delta) @ moved[:, R.ACTIVE]
        x = forward_kinematics(moved, trans + step[:, 51:], rest)[0][:, :22]
        d = (x[:, 1:] - x[:, SMPL_PARENTS[1:22]]) / bone_len[:, None]
        t = targets[:, 1:] - targets[:, SMPL_PARENTS[1:22]]
        t /= np.linalg.norm(t, axis=-1, keepdims=True)
        return np.concatenate([(np.sqrt(w.pos)[:, None] * (x - targets)).reshape(frames, -1),
                               (np.sqrt(w.dir[1:])[:, None] * (d - t)).reshape(frames, -1)], 1)

    r0, eps = residuals(np.zeros((frames, 54))), 1e-6
    jac = np.stack([(residuals(np.eye(54)[i] * eps + np.zeros((frames, 1)))
                     - residuals(-np.eye(54)[i] * eps + np.zeros((frames, 1)))) / (2 * eps)
                    for i in range(54)], -1)
    np.testing.assert_allclose(h, np.swapaxes(jac, 1, 2) @ jac, atol=1e-6)
    np.testing.assert_allclose(g, (np.swapaxes(jac, 1, 2) @ r0[..., None])[..., 0], atol=1e-6)


def test_block_elimination_solves_the_dense_system():
    rest, local, trans, targets, w = _problem(seed=2, frames=4)
    w = R.RefineWeights(pos=w.pos, dir=w.dir, prior=1e-3, smooth=0.0, hinge=0.05, damping=1e-6)
    lf = np.moveaxis(local, 0, -1).copy()
    system, _ = R.normal_equations(lf, trans.T.copy(), np.moveaxis(targets, 0, -1).copy(), rest, w, lf * 0.9)
    h, g = system.dense()
    rot, tr = system.solve()
    x = np.concatenate([np.moveaxis(rot, -1, 0).reshape(4, -1), tr.T], 1)
    np.testing.assert_allclose(x, np.linalg.solve(h, g[..., None])[..., 0], rtol=1e-9, atol=1e-12)
