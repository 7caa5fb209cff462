"""Mesh vertices by linear blend skinning, against a plain per-joint reference implementation."""
import numpy as np
import pytest

from backend.fitting.lbs import vertices
from backend.fitting.smpl_file import validate_smpl_arrays
from backend.motion import quaternion as Q
from backend.motion.skeleton import SMPL_PARENTS
from tests.helpers.synthetic_smpl import make_smpl_arrays


@pytest.fixture(scope="module")
def model():
    arrays = make_smpl_arrays(seed=1)
    arrays["posedirs"] = arrays["posedirs"].astype(np.float64) * 20  # make pose blend shapes visible
    return validate_smpl_arrays(arrays, "SMPL_NEUTRAL.npz")


def _reference(model, pose, trans, betas, idx):
    """Vertices idx of one frame, written out joint by joint with 4x4 transforms."""
    v_shaped = model.v_template + model.shapedirs @ betas
    rest = model.J_regressor @ v_shaped
    rot = Q.axis_angle_to_matrix(pose)
    feature = np.concatenate([(rot[j] - np.eye(3)).ravel() for j in range(1, 24)])
    v_posed = v_shaped + np.einsum("vcp,p->vc", model.posedirs, feature)
    world = [None] * 24
    for j in range(24):
        local = np.eye(4)
        local[:3, :3] = rot[j]
        local[:3, 3] = rest[j] - (rest[SMPL_PARENTS[j]] if j else 0)
        world[j] = local if j == 0 else world[SMPL_PARENTS[j]] @ local
    out = []
    for v in idx:
        total = np.zeros((4, 4))
        for j in range(24):
            undo_rest = np.eye(4)
            undo_rest[:3, 3] = -rest[j]
            total += model.weights[v, j] * (world[j] @ undo_rest)
        out.append((total @ np.r_[v_posed[v], 1.0])[:3] + trans)
    return np.array(out)


def test_rest_pose_gives_the_shaped_template(model):
    betas = np.linspace(-1, 1, 10)
    out = vertices(model, np.zeros((2, 24, 3)), np.array([[0, 0, 0], [1, 2, 3]]), betas)
    shaped = model.v_template + model.shapedirs @ betas
    np.testing.assert_allclose(out[0], shaped, atol=1e-5)
    np.testing.assert_allclose(out[1], shaped + [1, 2, 3], atol=1e-5)


def test_posed_vertices_match_the_reference(model):
    rng = np.random.default_rng(0)
    poses, trans, betas = rng.normal(0, 0.4, (3, 24, 3)), rng.normal(0, 1, (3, 3)), rng.normal(0, 1, 10)
    out = vertices(model, poses, trans, betas, chunk=2)
    idx = rng.choice(model.num_vertices, 40, replace=False)
    for t in range(3):
        np.testing.assert_allclose(out[t, idx], _reference(model, poses[t], trans[t], betas, idx), atol=1e-4)
    assert out.shape == (3, 6890, 3) and out.dtype == np.float32
