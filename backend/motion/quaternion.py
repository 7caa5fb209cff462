"""Rotation helpers on numpy arrays (no torch, no bpy): shared by the backend and the add-on.

Conventions
- Quaternions are (w, x, y, z) in the last axis, Hamilton product, active rotations.
- Rotation matrices act on column vectors: v' = R @ v.
- Axis-angle vectors are axis * angle (radians), as in SMPL's pose parameters.
All functions broadcast over leading axes and keep the input float dtype where it matters.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def qnormalize(q: np.ndarray) -> np.ndarray:
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate)."""
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack((
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ), axis=-1)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v [..., 3] by unit quaternions q [..., 4]: v + 2 (w (u x v) + u x (u x v))."""
    u = q[..., 1:]
    uv = np.cross(u, v)
    uuv = np.cross(u, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(v0: np.ndarray, v1: np.ndarray, z_epsilon: float = 0.0) -> np.ndarray:
    """Shortest-arc rotation taking direction v0 onto v1.

    w = |v0||v1| + v0.v1, xyz = v0 x v1, then normalised. ``z_epsilon`` reproduces the
    current official HumanML3D code, which adds 1e-4 to the z component before normalising.
    """
    xyz = np.cross(v0, v1)
    w = np.sqrt((v0 ** 2).sum(-1) * (v1 ** 2).sum(-1)) + (v0 * v1).sum(-1)
    q = np.concatenate([w[..., None], xyz], axis=-1)
    if z_epsilon:
        q[..., 3] += z_epsilon
    return qnormalize(q)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = np.moveaxis(q, -1, 0)
    two_s = 2.0 / (q * q).sum(-1)
    m = np.stack((
        1 - two_s * (y * y + z * z), two_s * (x * y - z * w), two_s * (x * z + y * w),
        two_s * (x * y + z * w), 1 - two_s * (x * x + z * z), two_s * (y * z - x * w),
        two_s * (x * z - y * w), two_s * (y * z + x * w), 1 - two_s * (x * x + y * y),
    ), axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix [..., 3, 3] -> unit quaternion with w >= 0 (robust branch selection)."""
    m = np.asarray(m)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidate solutions, each accurate where its leading component is large.
    cands = np.stack([
        np.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
        np.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
        np.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
        np.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
    ], axis=-2)  # [..., 4 candidates, 4]
    diag = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                     1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = qnormalize(q)
    return np.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle, with its limit 0.5 for tiny angles (np.sinc(x) = sin(pi x)/(pi x)).
    scale = 0.5 * np.sinc(half / np.pi)
    return np.concatenate([np.cos(half), aa * scale], axis=-1)


def quat_to_axis_angle(q: np.ndarray, shortest: bool = True) -> np.ndarray:
    """Unit quaternion -> axis-angle.

    shortest=True: angle in [0, pi] (q and -q give the same result).
    shortest=False: the sign of q is kept, the angle lies in [0, 2 pi) and ``axis_angle_to_quat``
    returns q itself, so a hemisphere-continuous quaternion track stays continuous (SMPL accepts
    any angle).
    """
    if shortest:
        q = np.where(q[..., :1] < 0, -q, q)
    w, xyz = q[..., :1], q[..., 1:]
    s = np.linalg.norm(xyz, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, w)
    # angle / sin(angle / 2); near zero (w > 0) this tends to 2 / w.
    small = (s < 1e-8) & (w > 0)
    factor = np.where(small, 2.0 / np.maximum(w, _EPS), angle / np.maximum(s, 1e-300))
    return xyz * factor


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    return quat_to_axis_angle(matrix_to_quat(m))


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """HumanML3D 6D rotation: the first two COLUMNS of the rotation matrix, col0 then col1."""
    m = quat_to_matrix(q)
    return np.concatenate([m[..., 0], m[..., 1]], axis=-1)


def cont6d_to_matrix(c6: np.ndarray) -> np.ndarray:
    """Inverse of quat_to_cont6d with Gram-Schmidt on the columns."""
    x = c6[..., 0:3] / np.linalg.norm(c6[..., 0:3], axis=-1, keepdims=True)
    z = np.cross(x, c6[..., 3:6])
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def quat_continuity(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs so consecutive quaternions along ``axis`` lie in the same hemisphere."""
    q = np.moveaxis(np.array(q, copy=True), axis, 0)
    dots = (q[1:] * q[:-1]).sum(-1)
    flips = np.cumsum(dots < 0, axis=0) % 2 == 1
    q[1:][flips] *= -1
    return np.moveaxis(q, 0, axis)


def slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation along the shorter arc; t broadcasts against q[..., :1]."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim and t.shape[-1] != 1:
        t = t[..., None]
    dot = (q0 * q1).sum(-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    return qnormalize(w0 * q0 + w1 * q1)


def rotation_about_y(angle: np.ndarray | float) -> np.ndarray:
    """Quaternion for a rotation of ``angle`` radians about +y (the up axis of HumanML3D)."""
    angle = np.asarray(angle, dtype=np.float64)
    zeros = np.zeros_like(angle)
    return np.stack([np.cos(angle / 2), zeros, np.sin(angle / 2), zeros], axis=-1)
