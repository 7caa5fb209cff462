"""Body shape from bone lengths: one beta vector per fit, matched to the clip's median bone lengths.

Posed joints are rigid transforms of the rest joints, so the only thing the shape changes for
fitting is the rest skeleton: J(beta) = J_regressor @ (v_template + shapedirs . beta). Every
HumanML3D clip (hence every MDM output) is retargeted to one skeleton, so matching its 21 bone
lengths with the first B shape components removes most of the beta = 0 error (legs ~5 cm short).
"""
from __future__ import annotations

import numpy as np

from ..motion.skeleton import HML_NUM_JOINTS, SMPL_PARENTS
from .smpl_file import SMPLModel


def target_bone_lengths(targets: np.ndarray) -> np.ndarray:
    """[21] median length over frames of each HumanML3D bone (joints 1..21) in targets [N, 22, 3]."""
    bones = targets[:, 1:] - targets[:, SMPL_PARENTS[1:HML_NUM_JOINTS]]
    return np.median(np.linalg.norm(bones, axis=-1), axis=0)


def fit_betas_to_bone_lengths(smpl: SMPLModel, targets: np.ndarray, regularization: float = 1e-5,
                              iterations: int = 10) -> np.ndarray:
    """[B] betas whose rest skeleton has the targets' bone lengths (Gauss-Newton, ridge on beta).

    ``regularization`` weighs |beta|^2 against squared length errors in metres: one unit of beta
    costs as much as a 3 mm length error (real shape components move joints by centimetres).
    """
    lengths = target_bone_lengths(targets)
    child, parent = np.arange(1, HML_NUM_JOINTS), SMPL_PARENTS[1:HML_NUM_JOINTS]
    rest = smpl.rest_joints()
    dirs = smpl.joint_shapedirs()                                   # [24, 3, B]
    off0 = rest[child] - rest[parent]                               # [21, 3]
    doff = dirs[child] - dirs[parent]                               # [21, 3, B]
    betas = np.zeros(smpl.num_betas)
    eye = np.eye(smpl.num_betas)
    for _ in range(iterations):
        off = off0 + doff @ betas
        norm = np.linalg.norm(off, axis=-1)
        resid = norm - lengths
        jac = np.einsum("kc,kcb->kb", off / norm[:, None], doff)   # [21, B]
        step = np.linalg.solve(jac.T @ jac + regularization * eye, -(jac.T @ resid + regularization * betas))
        betas = betas + step
        if np.abs(step).max() < 1e-8:
            break
    return betas
