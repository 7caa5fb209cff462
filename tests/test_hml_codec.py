"""The HumanML3D codec against the official golden vectors and the real dataset sample."""
import numpy as np
import pytest

from backend.motion import hml_codec as C
from backend.motion import skeleton as S
from backend.motion.resample import resample_linear, resample_quaternions, resampled_length


def synthetic_walk(n=60, fps=20.0, yaw0=0.7, turn=0.4):
    """A plausible walking clip on the target skeleton, turning, starting off-origin."""
    t = np.arange(n) / fps
    offsets = S.hml_target_offsets()
    yaw = yaw0 + turn * t
    rest = np.zeros((22, 3))
    joints = np.zeros((n, 22, 3))
    for f in range(n):
        swing = 0.5 * np.sin(2 * np.pi * 1.0 * t[f])
        local = offsets.copy()
        for j, s in ((4, swing), (5, -swing), (18, -0.6 * swing), (19, 0.6 * swing)):
            c, si = np.cos(s), np.sin(s)
            local[j] = [local[j, 0], c * local[j, 1] - si * local[j, 2], si * local[j, 1] + c * local[j, 2]]
        pos = rest.copy()
        for j in range(1, 22):
            pos[j] = pos[S.HML_PARENTS[j]] + local[j]
        c, s = np.cos(yaw[f]), np.sin(yaw[f])
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        heading = rot @ np.array([0.0, 0.0, 1.0])
        joints[f] = pos @ rot.T + np.array([1.0, 0.95, -2.0]) + heading * 1.2 * t[f]
    return joints


def test_recover_reproduces_dataset_joints(sample_012314):
    features, joints = sample_012314
    recovered = C.recover_joints_from_features(features)
    assert recovered.shape == joints.shape
    assert np.abs(recovered - joints).max() <= 1e-5


@pytest.mark.parametrize("variant,golden", [("current", "hml_features.npz"), ("pre2025", "hml_features_pre2025.npz")])
def test_extract_matches_official_golden(shared, variant, golden):
    inputs = np.load(shared / "mdm_compat/hml_features.npz")
    ref = np.load(shared / "mdm_compat" / golden)
    out = C.extract_features_from_joints(inputs["joints_in"], variant=variant,
                                         tgt_offsets=inputs["tgt_offsets"], feet_thre=float(inputs["feet_thre"]))
    assert out.features.shape == ref["features"].shape
    assert np.abs(out.features - ref["features"]).max() <= 1e-4
    assert np.array_equal(out.features[:, 259:], ref["features"][:, 259:])  # contacts exact
    assert np.abs(out.global_positions - ref["global_positions"]).max() <= 1e-5
    assert np.abs(out.local_positions - ref["local_positions"]).max() <= 1e-5
    assert np.abs(out.l_velocity - ref["l_velocity"]).max() <= 1e-5
    recovered = C.recover_joints_from_features(ref["features"].astype(np.float32))
    assert np.abs(recovered - ref["recovered_joints"]).max() <= 1e-5


def test_variants_differ_where_documented():
    joints = synthetic_walk()
    cur = C.extract_features_from_joints(joints, variant="current").features
    old = C.extract_features_from_joints(joints, variant="pre2025").features
    assert np.abs(cur[0] - old[0]).max() > 1e-2          # frame-0 root forced to identity pre-2025
    assert np.abs(cur[1:] - old[1:]).max() < 1e-2        # later frames only see the 1e-4 term


def test_extract_then_recover_preserves_shape_of_motion():
    joints = synthetic_walk()
    out = C.extract_features_from_joints(joints, variant="pre2025")
    assert out.features.shape == (len(joints) - 1, 263)
    recovered = C.recover_joints_from_features(out.features)
    # ric is exact per frame: joints relative to the root match the canonical positions' up to heading
    rel_rec = recovered - recovered[:, :1]
    rel_glob = out.global_positions[:-1] - out.global_positions[:-1, :1]
    assert np.allclose(np.linalg.norm(rel_rec, axis=-1), np.linalg.norm(rel_glob, axis=-1), atol=1e-9)
    assert np.allclose(recovered[:, :, 1], out.global_positions[:-1, :, 1], atol=1e-9)  # heights exact
    # bones come out at the target lengths
    bones = np.linalg.norm(out.global_positions[:, 1:] - out.global_positions[:, S.HML_PARENTS[1:]], axis=-1)
    assert np.allclose(bones, S.HML_TARGET_BONE_LENGTHS[1:], atol=1e-9)
    # canonicalisation puts frame 0 at the origin facing +z, on the floor
    assert np.allclose(out.global_positions[0, 0, [0, 2]], 0.0)
    assert abs(out.global_positions[..., 1].min()) < 1e-12


def test_extract_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        C.extract_features_from_joints(np.zeros((10, 21, 3)))
    bad = synthetic_walk()
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        C.extract_features_from_joints(bad)
    with pytest.raises(ValueError, match="variant"):
        C.extract_features_from_joints(synthetic_walk(), variant="v3")


def test_lower_body_mask_matches_mdm():
    mask = S.lower_body_feature_mask()
    assert mask.sum() == 107
    ranges = [(0, 9), (13, 18), (22, 27), (31, 36), (67, 78), (85, 96), (103, 114), (121, 132),
              (193, 201), (205, 210), (214, 219), (223, 228), (259, 262)]
    expected = np.zeros(263, bool)
    for a, b in ranges:
        expected[a:b + 1] = True
    assert np.array_equal(mask, expected)


def test_normalizer_round_trip_and_shipped_stats():
    norm = C.MotionNormalizer.from_dir()
    x = np.random.default_rng(0).normal(size=(5, 263)).astype(np.float32)
    assert np.allclose(norm.denormalize(norm.normalize(x)), x, atol=1e-5)
    assert norm.std[0] == pytest.approx(0.012826, abs=1e-6)
    with pytest.raises(ValueError):
        C.MotionNormalizer(np.zeros(262), np.ones(263))


def test_resampling_keeps_span_and_endpoints():
    x = np.linspace(0, 1, 21)[:, None] * np.array([[1.0, 2.0]])
    y = resample_linear(x, 20, 30)
    assert len(y) == resampled_length(21, 20, 30) == 31
    assert np.allclose(y[0], x[0]) and np.allclose(y[-1], x[-1])
    assert np.allclose(np.diff(y[:, 0]), 1 / 30)
    from backend.motion import quaternion as Q
    q = Q.axis_angle_to_quat(np.linspace(0, 1, 21)[:, None] * np.array([[0.0, 0.0, 1.0]]))
    r = resample_quaternions(q, 20, 24)
    angles = Q.quat_to_axis_angle(r)[:, 2]
    assert np.allclose(angles, np.arange(len(r)) * (20 / 24) / 20)
    with pytest.raises(ValueError):
        resampled_length(0, 20, 30)
