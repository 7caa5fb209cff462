"""Batched Gauss-Newton refinement of skeleton-only SMPL poses (numpy, analytic Jacobians).

Unknowns per frame: a world-frame rotation increment w_a for every joint a that moves an observed
joint (17 joints; w_a turns a's subtree about a's posed position) and the translation: 54 numbers.
Residuals per frame:
- positions:   sqrt(w_pos_k) (X_k - P_k) for the 22 observed joints;   dX_k/dw_a = -[X_k - X_a]x
- directions:  sqrt(w_dir_k) (d_k - t_k), unit bone vectors;          dd_k/dw_a = -[d_k]x
- prior:       sqrt(prior) log(L_a L0_a^T), towards the analytic IK solution L0;
- smoothness:  sqrt(smooth) (log(L_a(t) L_a(t-1)^T) - log(L_a(t+1) L_a(t)^T)) / 2, neighbours held
  fixed within an iteration (a Jacobi sweep of the temporal Laplacian);
- hinges:      sqrt(hinge) (I - h h^T) log(L) for knees and elbows: keeps them bending about their
  anatomical axis h when bone-length mismatch tempts the position term to twist them.
J^T J comes from subtree moments (sums of W, W X, W X X^T over each joint's descendants): no
Jacobian is formed. It couples a joint only with its ancestors (and the translation), so it is
stored as 3x3 blocks per (joint, ancestor depth) and solved by block elimination from the leaves
up, which creates no fill-in.

Layout: inside this module every array keeps the frame axis LAST ([..., 3, 3, F]). numpy's
matmul pays ~0.2 us per 3x3 matrix, while broadcasting over a trailing frame axis runs in
contiguous vector loops: 4-5x faster for these tiny products (and faster than torch on CPU).
Rotations are matrices acting on column vectors; small-angle logs use the skew part of R.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..motion.skeleton import SMPL_PARENTS
from .ik import CHAIN_HINGE, HINGE_AXES, rest_offsets

OBSERVED = 22
ACTIVE = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 16, 17, 18, 19])  # move observed joints
NA = len(ACTIVE)
_EYE = np.eye(3)[:, :, None]  # broadcasts against [..., 3, 3, F]


def _ancestry(parents: np.ndarray) -> np.ndarray:
    """[J, J] bool: anc[a, k] is True when a is k or one of its ancestors."""
    anc = np.eye(len(parents), dtype=bool)
    for k in range(len(parents)):
        p = parents[k]
        while p >= 0:
            anc[p, k] = True
            p = parents[p]
    return anc


_ANC = _ancestry(SMPL_PARENTS)
# [17, 22]: 1 where observed joint k is a strict descendant of active joint b
_SUBTREE = (_ANC & ~np.eye(24, dtype=bool))[ACTIVE, :OBSERVED].astype(np.float64)
DEPTH = _ANC[:, ACTIVE].sum(0) - 1                     # [17] depth of each active joint
MAX_DEPTH = int(DEPTH.max())
_NODE = {int(j): i for i, j in enumerate(ACTIVE)}      # SMPL joint -> active index
# ANCESTOR[b, s]: active index of b's ancestor at depth s (s < DEPTH[b]); SMPL parents always have
# smaller indices than their children, so ascending joint order is root-first order
ANCESTOR = np.array([[_NODE[a] for a in range(24) if _ANC[a, j] and a != j] + [-1] * (MAX_DEPTH - d)
                     for j, d in zip(ACTIVE, DEPTH)])
# off-diagonal non-zero blocks: (ancestor a, joint b) in active indices
_PAIRS = np.array([(a, b) for b in range(NA) for a in ANCESTOR[b, :DEPTH[b]]])
_ELIMINATION = [(b, ANCESTOR[b, :DEPTH[b]],
                 np.array([(j, i) for j in range(DEPTH[b]) for i in range(j)], np.int64).reshape(-1, 2))
                for b in np.argsort(-DEPTH, kind="stable")]   # leaves first
_PARENT_OF_ACTIVE = SMPL_PARENTS[ACTIVE[1:]]
_HINGE_NODES = np.array([_NODE[int(j)] for j in CHAIN_HINGE])
_OFF_HINGE = (np.eye(3) - HINGE_AXES[:, :, None] * HINGE_AXES[:, None, :])[..., None]  # [4, 3, 3, 1]


# ----------------------------------------------------------------------------------------------
# 3x3 algebra on frames-last arrays
# ----------------------------------------------------------------------------------------------
def _mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[..., i, k, F] @ [..., k, j, F] -> [..., i, j, F]."""
    out = a[..., :, 0:1, :] * b[..., 0:1, :, :]
    out += a[..., :, 1:2, :] * b[..., 1:2, :, :]
    out += a[..., :, 2:3, :] * b[..., 2:3, :, :]
    return out


def _mv(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[..., i, k, F] @ [..., k, F] -> [..., i, F]."""
    return (a * v[..., None, :, :]).sum(-2)


def _t(a: np.ndarray) -> np.ndarray:
    return np.swapaxes(a, -3, -2)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of [..., 3, F] arrays."""
    a0, a1, a2 = a[..., 0, :], a[..., 1, :], a[..., 2, :]
    b0, b1, b2 = b[..., 0, :], b[..., 1, :], b[..., 2, :]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -2)


def _skew(v: np.ndarray) -> np.ndarray:
    """[..., 3, F] -> [..., 3, 3, F] with skew(v) u = v x u."""
    x, y, z = v[..., 0, :], v[..., 1, :], v[..., 2, :]
    o = np.zeros_like(x)
    return np.stack([np.stack([o, -z, y], -2), np.stack([z, o, -x], -2), np.stack([-y, x, o], -2)], -3)


def _skew_part(r: np.ndarray) -> np.ndarray:
    """sin(angle) * axis of rotations [..., 3, 3, F] (the small-angle log) -> [..., 3, F]."""
    return 0.5 * np.stack([r[..., 2, 1, :] - r[..., 1, 2, :], r[..., 0, 2, :] - r[..., 2, 0, :],
                           r[..., 1, 0, :] - r[..., 0, 1, :]], -2)


def _exp(w: np.ndarray) -> np.ndarray:
    """Rotations [..., 3, 3, F] of rotation vectors w [..., 3, F] (Rodrigues)."""
    angle = np.sqrt((w * w).sum(-2))
    k = _skew(w)
    s = np.where(angle > 1e-12, np.sin(angle) / np.maximum(angle, 1e-12), 1.0)
    c = np.where(angle > 1e-6, (1 - np.cos(angle)) / np.maximum(angle * angle, 1e-12), 0.5)
    kk = w[..., :, None, :] * w[..., None, :, :] - (angle * angle)[..., None, None, :] * _EYE  # [w]x^2
    return _EYE + s[..., None, None, :] * k + c[..., None, None, :] * kk


def _inv3(m: np.ndarray) -> np.ndarray:
    """Inverse of [..., 3, 3, F] matrices via the adjugate."""
    r0, r1, r2 = m[..., 0, :, :], m[..., 1, :, :], m[..., 2, :, :]
    c0, c1, c2 = _cross(r1, r2), _cross(r2, r0), _cross(r0, r1)
    return np.stack([c0, c1, c2], -2) / (r0 * c0).sum(-2)[..., None, None, :]


def _fk(local: np.ndarray, trans: np.ndarray, rest_joints: np.ndarray):
    """Frames-last forward kinematics: local [24, 3, 3, F], trans [3, F] -> (joints [24, 3, F],
    global rotations [24, 3, 3, F]); same maths as ``motion.smpl_skeleton.forward_kinematics``."""
    off = rest_offsets(rest_joints)
    glob, pos = np.empty_like(local), np.empty(local.shape[:1] + local.shape[2:])
    glob[0], pos[0] = local[0], rest_joints[0][:, None] + trans
    for j in range(1, len(SMPL_PARENTS)):
        p = SMPL_PARENTS[j]
        glob[j] = _mm(glob[p], local[j])
        pos[j] = pos[p] + (glob[p] * off[j][None, :, None]).sum(-2)
    return pos, glob


# ----------------------------------------------------------------------------------------------
# normal equations
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefineWeights:
    pos: np.ndarray      # [22] weight of each joint's squared position error (per m^2)
    dir: np.ndarray      # [22] weight of the squared unit-direction error of the bone ending at k
    prior: float         # towards the analytic solution, per squared radian
    smooth: float        # temporal second difference of local rotations, per squared radian
    hinge: float         # knee/elbow rotation off their hinge axis, per squared radian
    damping: float       # Levenberg-Marquardt damping on the rotation increments


@dataclass
class BlockSystem:
    """Normal equations H x = g in 3x3 blocks, frames last (F).

    diag [17, 3, 3, F]: H[b, b]; anc [17, D, 3, 3, F]: H[b, b's ancestor at depth s];
    trans [17, 3, 3, F]: H[b, translation]; trans_diag [3, 3, F]; g [17, 3, F]; g_trans [3, F].
    """

    diag: np.ndarray
    anc: np.ndarray
    trans: np.ndarray
    trans_diag: np.ndarray
    g: np.ndarray
    g_trans: np.ndarray

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """(H [F, 54, 54], g [F, 54]) with unknowns ordered (17 rotations, translation): for tests."""
        f = self.g.shape[-1]
        h = np.zeros((NA + 1, NA + 1, 3, 3, f))
        h[np.arange(NA), np.arange(NA)] = self.diag
        for b in range(NA):
            for s in range(DEPTH[b]):
                h[b, ANCESTOR[b, s]] = self.anc[b, s]
                h[ANCESTOR[b, s], b] = _t(self.anc[b, s])
        h[:NA, NA], h[NA, :NA], h[NA, NA] = self.trans, _t(self.trans), self.trans_diag
        g = np.concatenate([self.g, self.g_trans[None]], 0)
        return (h.transpose(4, 0, 2, 1, 3).reshape(f, 3 * NA + 3, 3 * NA + 3),
                g.transpose(2, 0, 1).reshape(f, 3 * NA + 3))

    def solve(self) -> tuple[np.ndarray, np.ndarray]:
        """x = H^-1 g as (rotations [17, 3, F], translation [3, F]); overwrites the system.

        Eliminating joint b (deepest first) updates only blocks among b's ancestors and the
        translation, which are non-zero already: no fill-in.
        """
        saved = []
        for b, anc, pairs in _ELIMINATION:
            d_inv = _inv3(self.diag[b])
            row, row_t = self.anc[b, :len(anc)], self.trans[b]          # H[b, a_s], H[b, t]
            left = _mm(_t(row), d_inv[None])                            # H[a_s, b] D^-1
            self.diag[anc] -= _mm(left, row)
            if len(pairs):
                j, i = pairs[:, 0], pairs[:, 1]
                self.anc[anc[j], i] -= _mm(left[j], row[i])
            self.trans[anc] -= _mm(left, row_t[None])
            self.g[anc] -= _mv(left, self.g[b][None])
            left_t = _mm(_t(row_t), d_inv)
            self.trans_diag -= _mm(left_t, row_t)
            self.g_trans -= _mv(left_t, self.g[b])
            saved.append((b, anc, d_inv, row, row_t))
        x_t = _mv(_inv3(self.trans_diag), self.g_trans)
        x = np.zeros_like(self.g)
        for b, anc, d_inv, row, row_t in reversed(saved):
            rhs = self.g[b] - _mv(row, x[anc]).sum(0) - _mv(row_t, x_t)
            x[b] = _mv(d_inv, rhs)
        return x, x_t


def _parent_rotations(glob: np.ndarray) -> np.ndarray:
    """[17, 3, 3, F] global rotation of each active joint's parent (identity for the pelvis)."""
    out = np.empty((NA,) + glob.shape[1:])
    out[0] = _EYE
    out[1:] = glob[_PARENT_OF_ACTIVE]
    return out


def normal_equations(local, trans, targets, rest_joints, weights: RefineWeights, anchor,
                     smooth_residual=None, smooth_weight=0.0):
    """(``BlockSystem`` of J^T J x = J^T r, global rotations [24, 3, 3, F]), frames last.

    local/anchor [24, 3, 3, F] (anchor: the prior's rotations), trans [3, F], targets [22, 3, F];
    smooth_residual [17, 3, F] (or None) with weight smooth_weight [F].
    """
    f = targets.shape[-1]
    joints, glob = _fk(local, trans, rest_joints)
    x = joints[:OBSERVED]
    err = x - targets
    bone_len = np.linalg.norm(rest_offsets(rest_joints)[1:OBSERVED], axis=-1)
    d = np.zeros_like(x)                                                   # unit bones [22, 3, F]
    d[1:] = (x[1:] - x[SMPL_PARENTS[1:OBSERVED]]) / bone_len[:, None, None]
    t = np.zeros_like(x)
    t[1:] = targets[1:] - targets[SMPL_PARENTS[1:OBSERVED]]
    t[1:] /= np.sqrt((t[1:] * t[1:]).sum(-2, keepdims=True)).clip(1e-9)
    # per observed joint k: weighted moments of its position and direction residuals
    wp, wd = weights.pos[:, None, None], weights.dir[:, None, None]
    own = np.empty((OBSERVED, 32, f))
    own[:, 0] = weights.pos[:, None]
    own[:, 1:4] = wp * x
    own[:, 4:13] = (wp[..., None] * x[:, :, None] * x[:, None, :]).reshape(OBSERVED, 9, f)
    own[:, 13:16] = wp * err
    own[:, 16:19] = wp * _cross(x, err)
    own[:, 19] = weights.dir[:, None]
    own[:, 20:29] = (wd[..., None] * d[:, :, None] * d[:, None, :]).reshape(OBSERVED, 9, f)
    own[:, 29:32] = wd * _cross(d, t)
    sub = (_SUBTREE @ own.reshape(OBSERVED, -1)).reshape(NA, 32, f)        # sums over subtrees
    s_n, s_m, s_c = sub[:, 0], sub[:, 1:4], sub[:, 4:13].reshape(NA, 3, 3, f)
    s_e, s_xe = sub[:, 13:16], sub[:, 16:19]
    s_dn, s_dd, s_dt = sub[:, 19], sub[:, 20:29].reshape(NA, 3, 3, f), sub[:, 29:32]

    # J_a^T J_b (a ancestor of b) = sum over b's descendants k of (r_ka . r_kb) I - r_kb r_ka^T,
    # r_ka = X_k - X_a: the centred moment of b's subtree plus a lever term in (X_b - X_a)
    xa = x[ACTIVE]
    mu = s_m - s_n[:, None] * xa                                           # sum W (X_k - X_b)
    centred = s_c - mu[:, :, None] * xa[:, None, :] - xa[:, :, None] * s_m[:, None, :]
    trace = centred[:, 0, 0] + centred[:, 1, 1] + centred[:, 2, 2]
    diag = (trace + s_dn)[:, None, None] * _EYE - centred - s_dd
    pa, pb = _PAIRS[:, 0], _PAIRS[:, 1]
    r, m_b = xa[pb] - xa[pa], mu[pb]
    block = (diag[pb] + (m_b * r).sum(-2)[:, None, None] * _EYE
             - m_b[:, :, None] * r[:, None, :])                            # J_a^T J_b [P, 3, 3, F]
    anc = np.zeros((NA, MAX_DEPTH, 3, 3, f))
    anc[pb, DEPTH[pa]] = _t(block)
    g = s_xe - _cross(xa, s_e) - s_dt

    # prior and smoothness: isotropic in the local (parent) frame, hence also in the world frame
    rel = _skew_part(_mm(local[ACTIVE], _t(anchor[ACTIVE]))) * weights.prior
    if smooth_residual is not None:
        rel = rel + smooth_weight * smooth_residual
    parent_rot = _parent_rotations(glob)
    g = g + _mv(parent_rot, rel)
    damp = weights.prior + weights.damping + (smooth_weight if smooth_residual is not None else 0.0)
    diag = diag + np.broadcast_to(damp, (f,)) * _EYE
    if weights.hinge > 0:  # d skew_part(exp(delta) L) / d delta = (tr(L) I - L) / 2
        hinge_rot = local[ACTIVE[_HINGE_NODES]]
        jac = 0.5 * ((hinge_rot[:, 0, 0] + hinge_rot[:, 1, 1] + hinge_rot[:, 2, 2])[:, None, None] * _EYE
                     - hinge_rot)
        proj_jac = _mm(_OFF_HINGE, jac) * weights.hinge                    # [4, 3, 3, F]
        m = parent_rot[_HINGE_NODES]
        diag[_HINGE_NODES] += _mm(_mm(m, _mm(_t(jac), proj_jac)), _t(m))
        g[_HINGE_NODES] += _mv(m, _mv(_t(proj_jac), _skew_part(hinge_rot)))
    system = BlockSystem(diag=diag, anc=anc, trans=_skew(mu), g=g, g_trans=(wp * err).sum(0),
                         trans_diag=np.broadcast_to(_EYE * weights.pos.sum(), (3, 3, f)).copy())
    return system, glob


def smoothness_residual(local: np.ndarray, prev_idx: np.ndarray, next_idx: np.ndarray) -> np.ndarray:
    """[17, 3, F]: half the second difference of the active local rotations (parent frame)."""
    cur = local[ACTIVE]
    back = _skew_part(_mm(cur, _t(cur[..., prev_idx])))
    ahead = _skew_part(_mm(cur[..., next_idx], _t(cur)))
    return 0.5 * (back - ahead)


def refine(local: np.ndarray, trans: np.ndarray, targets: np.ndarray, rest_joints: np.ndarray,
           weights: RefineWeights, iterations: int, prev_idx: np.ndarray, next_idx: np.ndarray,
           interior: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Newton iterations from the analytic solution.

    local [N, 24, 3, 3], trans [N, 3], targets [N, 22, 3] (frames first, like the rest of the
    package); prev_idx/next_idx [N]: temporal neighbours within each clip; interior [N] bool:
    frames that have both (the smoothness term applies there only).
    Returns (local [N, 24, 3, 3], trans [N, 3], joints [N, 24, 3]).
    """
    anchor = np.ascontiguousarray(np.moveaxis(local, 0, -1))               # [24, 3, 3, F]
    cur, tr = anchor.copy(), np.ascontiguousarray(trans.T)
    tgt = np.ascontiguousarray(np.moveaxis(targets, 0, -1))
    smooth_weight = weights.smooth * interior.astype(np.float64)
    for _ in range(iterations):
        smooth = smoothness_residual(cur, prev_idx, next_idx) if weights.smooth > 0 else None
        system, glob = normal_equations(cur, tr, tgt, rest_joints, weights, anchor, smooth, smooth_weight)
        omega, step_t = system.solve()
        delta = -_mv(_t(_parent_rotations(glob)), omega)                  # to each parent's frame
        cur[ACTIVE] = _mm(_exp(delta), cur[ACTIVE])
        tr = tr - step_t
    joints, _ = _fk(cur, tr, rest_joints)
    return np.moveaxis(cur, -1, 0), tr.T.copy(), np.moveaxis(joints, -1, 0)
