"""Analytic inverse kinematics: 22 HumanML3D joints -> SMPL local rotations (numpy, batched over frames).

- pelvis (0) and spine3 (9): Kabsch between the rest directions of their children and the targets;
- spine1/spine2: swing onto the target bone, each also taking a third of the pelvis->spine3 twist;
- hips/shoulders + knees/elbows: the knee/elbow is a pure hinge about its anatomical axis, with the
  bend angle that reproduces the target hip-knee-ankle angle; the hip/shoulder rotation then aligns
  the upper bone and the bend plane. A straight limb has no bend plane, so below ~20 degrees of bend
  the upper twist fades to a plain swing (minimal rotation from the parent frame) and the knee
  takes a small corrective swing; positions are exact either way;
- other bones with one child (ankles, neck, collars): swing onto the target bone;
- joints nothing observed hangs from (toes 10/11, head 15, wrists 20/21, hands 22/23): identity.
Rotations are 3x3 matrices acting on column vectors; frames are y-up, facing +z, left = +x.
"""
from __future__ import annotations

import numpy as np

from ..motion import quaternion as Q
from ..motion.skeleton import SMPL_PARENTS

# Hinge chains: upper joint, hinge joint, end joint. Knees flex about +x (the shin goes back),
# elbows bring the forearm forward (+z): about -y on the left arm, +y on the right.
CHAIN_UPPER = np.array([1, 2, 16, 17])
CHAIN_HINGE = np.array([4, 5, 18, 19])
CHAIN_END = np.array([7, 8, 20, 21])
HINGE_AXES = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 1.0, 0.0]])
BEND_SIN_RANGE = (np.sin(np.radians(8.0)), np.sin(np.radians(20.0)))  # twist confidence ramp
UNOBSERVED_LEAVES = (10, 11, 15, 20, 21, 22, 23)  # their rotations stay at rest


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.sqrt(_dot(v, v)), 1e-12)[..., None]


def _mv(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (m @ v[..., None])[..., 0]


def _mtv(m: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.swapaxes(m, -1, -2) @ v[..., None])[..., 0]


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(v.shape + (3,))


def swing(v_from: np.ndarray, v_to: np.ndarray) -> np.ndarray:
    """[..., 3, 3] shortest rotation taking direction v_from onto v_to (Rodrigues form)."""
    a, b = np.broadcast_arrays(_unit(v_from), _unit(v_to))
    c = _dot(a, b)
    anti = c < -1 + 1e-6  # exactly opposite: nudge so the rotation axis is defined
    if np.any(anti):
        b = np.where(anti[..., None], _unit(b + 1e-3 * _unit(np.cross(a, np.roll(a, 1, -1)))), b)
        c = _dot(a, b)
    v = np.cross(a, b)
    # I + [v]x + [v]x^2 / (1 + c), with [v]x^2 = v v^T - |v|^2 I
    vv = v[..., :, None] * v[..., None, :] - _dot(v, v)[..., None, None] * np.eye(3)
    return np.eye(3) + _skew(v) + vv / (1.0 + c)[..., None, None]


def rotation_about(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """[..., 3, 3] rotation by ``angle`` [...] about unit ``axis`` [..., 3]."""
    axis = np.broadcast_to(axis, np.shape(angle) + (3,))
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return c * np.eye(3) + s * _skew(axis) + (1 - c) * axis[..., :, None] * axis[..., None, :]


def kabsch(rest_dirs: np.ndarray, target_dirs: np.ndarray) -> np.ndarray:
    """Rotation [..., 3, 3] best taking rest_dirs [C, 3] onto target_dirs [..., C, 3]."""
    h = np.swapaxes(target_dirs, -1, -2) @ rest_dirs  # sum_c t_c r_c^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))
    u[..., :, 2] *= d[..., None]
    return u @ vt


def twist_angle(rot: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Signed twist [...] of rotation matrices about a unit axis (swing-twist decomposition)."""
    q = Q.matrix_to_quat(rot)
    return 2.0 * np.arctan2(_dot(q[..., 1:], axis), q[..., 0])


def rest_offsets(rest_joints: np.ndarray, parents: np.ndarray = SMPL_PARENTS) -> np.ndarray:
    """[J, 3] offset of each joint from its parent in the rest pose (row 0: the rest pelvis)."""
    off = rest_joints.copy()
    off[1:] -= rest_joints[parents[1:]]
    return off


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Orthonormal frame [..., 3, 3] with columns a, b-orthogonalised, a x b."""
    a, b = np.broadcast_arrays(a, b)
    e1 = _unit(a)
    e2 = _unit(b - _dot(b, e1)[..., None] * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], -1)


def hinge_chain(upper_rest: np.ndarray, lower_rest: np.ndarray, hinge: np.ndarray,
                upper: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotations of a hip/shoulder and its knee/elbow, both in their parents' frames.

    upper_rest/lower_rest/hinge: [C, 3] rest bones and hinge axes; upper/lower: [N, C, 3] target
    bones in the upper joint's parent frame. Returns (upper_rot, hinge_rot), each [N, C, 3, 3].
    """
    u0, l0 = _unit(upper_rest), _unit(lower_rest)
    u, l = _unit(upper), _unit(lower)
    # bend angle theta about the hinge so that angle(u0, R_h(theta) l0) = angle(u, l)
    l_par = _dot(hinge, l0)[:, None] * hinge
    l_perp = l0 - l_par
    a, b, c = _dot(u0, l_par), _dot(u0, l_perp), _dot(u0, np.cross(hinge, l_perp))
    reach = np.clip((_dot(u, l) - a) / np.sqrt(b * b + c * c), -1.0, 1.0)
    theta = np.arctan2(c, b) + np.arccos(reach)          # the flexing root of the two
    hinge_rot = rotation_about(hinge, theta)             # [N, C, 3, 3]
    bent_lower = _mv(hinge_rot, l0)
    upper_hinged = _frame(u, l) @ np.swapaxes(_frame(u0, bent_lower), -1, -2)
    # fade the twist about the upper bone towards the plain swing when the limb is straight
    plain = swing(u0, u)
    probe = _unit(np.cross(u0, [0.0, 0.0, 1.0]) + np.cross(u0, hinge))  # any vector normal to u0
    x1, x2 = _mv(plain, probe), _mv(upper_hinged, probe)
    phi = np.arctan2(_dot(np.cross(x1, x2), u), _dot(x1, x2))
    lo, hi = BEND_SIN_RANGE
    w = np.clip((np.sqrt(_dot(np.cross(u, l), np.cross(u, l))) - lo) / (hi - lo), 0.0, 1.0)
    w = w * w * (3 - 2 * w)
    upper_rot = rotation_about(u, w * phi) @ plain
    # the knee/elbow: the hinge rotation, corrected by a swing where the twist was faded
    hinge_rot = swing(bent_lower, _mtv(upper_rot, l)) @ hinge_rot
    return upper_rot, hinge_rot


def solve_ik(targets: np.ndarray, rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """targets [N, 22, 3] -> (local rotations [N, 24, 3, 3], trans [N, 3]); positions are exact up
    to the rest skeleton's bone lengths and the rigid pelvis/spine3 child triangles."""
    n = targets.shape[0]
    off = rest_offsets(rest_joints)
    local = np.broadcast_to(np.eye(3), (n, 24, 3, 3)).copy()
    glob = local.copy()
    par = SMPL_PARENTS

    def bone(joints, children) -> np.ndarray:  # target bone vectors [N, len, 3]
        return targets[:, children] - targets[:, joints]

    # pelvis from its three children; spine3 (global) from neck and collars
    glob[:, 0] = local[:, 0] = kabsch(_unit(off[[1, 2, 3]]), _unit(bone([0, 0, 0], [1, 2, 3])))
    glob9 = kabsch(_unit(off[[12, 13, 14]]), _unit(bone([9, 9, 9], [12, 13, 14])))
    # spine1/spine2: swing, each pre-twisted by a third of the pelvis -> spine3 twist
    spine_axis = _unit(rest_joints[9] - rest_joints[0])
    third = rotation_about(spine_axis, twist_angle(np.swapaxes(glob[:, 0], -1, -2) @ glob9, spine_axis) / 3)
    for j, child in ((3, 6), (6, 9)):
        parent = glob[:, par[j]]
        local[:, j] = swing(_mv(third, off[child]), _mtv(parent, bone(j, child))) @ third
        glob[:, j] = parent @ local[:, j]
    local[:, 9] = np.swapaxes(glob[:, 6], -1, -2) @ glob9
    glob[:, 9] = glob9
    # neck and collars
    kids = [12, 13, 14]
    local[:, kids] = swing(off[[15, 16, 17]], _mtv(glob[:, 9:10], bone(kids, [15, 16, 17])))
    glob[:, kids] = glob[:, 9:10] @ local[:, kids]
    # hips + knees and shoulders + elbows
    parent = glob[:, par[CHAIN_UPPER]]
    local[:, CHAIN_UPPER], local[:, CHAIN_HINGE] = hinge_chain(
        off[CHAIN_HINGE], off[CHAIN_END], HINGE_AXES,
        _mtv(parent, bone(CHAIN_UPPER, CHAIN_HINGE)), _mtv(parent, bone(CHAIN_HINGE, CHAIN_END)))
    glob[:, CHAIN_UPPER] = parent @ local[:, CHAIN_UPPER]
    glob[:, CHAIN_HINGE] = glob[:, CHAIN_UPPER] @ local[:, CHAIN_HINGE]
    # ankles -> toes
    local[:, [7, 8]] = swing(off[[10, 11]], _mtv(glob[:, [4, 5]], bone([7, 8], [10, 11])))
    return local, targets[:, 0] - rest_joints[0]
