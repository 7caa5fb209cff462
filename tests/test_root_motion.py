"""Root motion in place: the horizontal travel goes, everything else stays."""
import numpy as np

from backend.motion.root_motion import hold_in_place, horizontal_travel


def test_in_place_removes_only_the_horizontal_travel_and_moves_points_along():
    rng = np.random.default_rng(0)
    trans = np.cumsum(rng.normal(0, 0.05, (2, 30, 3)), axis=1).astype(np.float32)       # [K, T, 3]
    joints = (trans[:, :, None] + rng.normal(0, 0.3, (2, 30, 24, 3))).astype(np.float32)  # [K, T, 24, 3]
    verts = rng.normal(0, 1, (2, 30, 50, 3))
    held, held_joints, held_verts = hold_in_place(trans, joints, verts)
    assert held.dtype == np.float32 and held_joints.dtype == np.float32 and held_verts.dtype == np.float64
    assert np.allclose(held[:, :, [0, 2]], trans[:, :1, [0, 2]], atol=1e-6)   # over each sample's frame 0
    assert np.array_equal(held[..., 1], trans[..., 1])                       # height (jumps, sitting) kept
    offset = (joints - trans[:, :, None]) - (held_joints - held[:, :, None])
    assert np.abs(offset).max() < 1e-5                                        # the body relative to the root
    assert np.allclose(held_verts - verts, (held - trans)[:, :, None], atol=1e-6)
    assert np.abs(held_verts - verts).max() > 0.1                            # it did move them
    assert np.allclose(horizontal_travel(held), 0.0)


def test_in_place_of_a_motion_without_travel_changes_nothing():
    trans = np.zeros((10, 3))
    trans[:, 1] = np.linspace(0.9, 1.3, 10)                                  # a jump straight up
    points = np.random.default_rng(1).normal(size=(10, 22, 3))
    held, held_points = hold_in_place(trans, points)
    assert np.array_equal(held, trans) and np.array_equal(held_points, points)
