import numpy as np
import pytest

from backend.motion import quaternion as Q


def random_quats(rng, n):
    return Q.qnormalize(rng.normal(size=(n, 4)))


def test_matrix_quaternion_axis_angle_round_trips():
    rng = np.random.default_rng(0)
    q = random_quats(rng, 500)
    m = Q.quat_to_matrix(q)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)
    q2 = Q.matrix_to_quat(m)
    assert np.allclose(np.abs((q * q2).sum(-1)), 1.0, atol=1e-12)  # same rotation up to sign
    aa = Q.quat_to_axis_angle(q)
    assert np.all(np.linalg.norm(aa, axis=-1) <= np.pi + 1e-9)
    assert np.allclose(Q.axis_angle_to_matrix(aa), m, atol=1e-10)
    # tiny angles stay accurate
    tiny = rng.normal(size=(10, 3)) * 1e-9
    assert np.allclose(Q.quat_to_axis_angle(Q.axis_angle_to_quat(tiny)), tiny, atol=1e-15)


def test_rotation_of_vectors_matches_matrix_and_product_composes():
    rng = np.random.default_rng(1)
    a, b = random_quats(rng, 100), random_quats(rng, 100)
    v = rng.normal(size=(100, 3))
    assert np.allclose(Q.qrot(a, v), np.einsum("nij,nj->ni", Q.quat_to_matrix(a), v))
    assert np.allclose(Q.qrot(Q.qmul(a, b), v), Q.qrot(a, Q.qrot(b, v)))
    assert np.allclose(Q.qrot(Q.qinv(a), Q.qrot(a, v)), v)


def test_qbetween_takes_a_onto_b():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    q = Q.qbetween(a, b)
    rotated = Q.qrot(q, a / np.linalg.norm(a, axis=-1, keepdims=True))
    assert np.allclose(rotated, b / np.linalg.norm(b, axis=-1, keepdims=True), atol=1e-12)


def test_cont6d_is_first_two_columns_and_inverts():
    rng = np.random.default_rng(3)
    q = random_quats(rng, 50)
    m = Q.quat_to_matrix(q)
    c6 = Q.quat_to_cont6d(q)
    assert np.allclose(c6[:, :3], m[:, :, 0]) and np.allclose(c6[:, 3:], m[:, :, 1])
    assert np.allclose(Q.cont6d_to_matrix(c6), m, atol=1e-12)


def test_continuity_removes_sign_flips_without_changing_rotations():
    rng = np.random.default_rng(4)
    base = Q.axis_angle_to_quat(np.linspace(0, 6, 200)[:, None] * np.array([[0.0, 1.0, 0.0]]))
    signs = rng.choice([-1.0, 1.0], size=(200, 1))
    fixed = Q.quat_continuity(base * signs)
    assert np.all((fixed[1:] * fixed[:-1]).sum(-1) > 0)
    assert np.allclose(np.abs((fixed * base).sum(-1)), 1.0)


@pytest.mark.parametrize("t", [0.0, 0.25, 0.5, 1.0])
def test_slerp_interpolates_angle_linearly(t):
    q0 = Q.axis_angle_to_quat(np.array([0.0, 0.0, 0.0]))
    q1 = Q.axis_angle_to_quat(np.array([0.0, 0.0, 2.0]))
    got = Q.slerp(q0, -q1, t)  # the shorter arc is chosen whatever the sign
    assert np.allclose(Q.quat_to_axis_angle(got), [0.0, 0.0, 2.0 * t])


def test_axis_angle_keeping_the_sign_reproduces_the_quaternion():
    rng = np.random.default_rng(7)
    q = random_quats(rng, 400)
    q[:5] = [[-1, 1e-12, 0, 0], [-0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0], [-1e-9, 1, 0, 0], [0, 0, 0, 1]]
    q = Q.qnormalize(q)
    aa = Q.quat_to_axis_angle(q, shortest=False)
    assert np.all(np.linalg.norm(aa, axis=-1) < 2 * np.pi + 1e-9)
    back = Q.axis_angle_to_quat(aa)
    assert np.allclose(back[1:], q[1:], atol=1e-9)  # q[0] is -identity: its axis is undefined
    assert np.allclose(Q.quat_to_matrix(back), Q.quat_to_matrix(q), atol=1e-9)
    # the default still picks the short way round
    assert np.all(np.linalg.norm(Q.quat_to_axis_angle(q), axis=-1) <= np.pi + 1e-9)
