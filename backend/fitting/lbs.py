"""SMPL mesh vertices by linear blend skinning, with shape and pose blend shapes (numpy only).

Why our own: the ``smplx`` package cannot read the official .pkl without chumpy (which no longer
imports on Python 3.11) and its code is under the MPI non-commercial, no-redistribution licence,
so blender-mdm may not depend on it. The maths is SMPL's published model:
  v_shaped = v_template + shapedirs . beta             joints J = J_regressor @ v_shaped
  v_posed  = v_shaped + posedirs . vec(R_j - I, j = 1..23)
  v        = sum_j w_vj (G_j (v_posed - J_j) + X_j) + trans
with G_j / X_j the global rotation / posed position of joint j (forward kinematics).
"""
from __future__ import annotations

import numpy as np

from ..motion import quaternion as Q
from ..motion.smpl_skeleton import forward_kinematics
from .smpl_file import SMPLModel


def vertices(model: SMPLModel, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray | None = None,
             chunk: int = 64) -> np.ndarray:
    """poses [T, 24, 3] axis-angle, trans [T, 3], betas [B] -> vertices [T, V, 3] float32.

    Frames are processed ``chunk`` at a time to bound memory (~V x 12 floats per frame).
    """
    poses = np.asarray(poses, np.float64)
    trans = np.asarray(trans, np.float64)
    v_shaped = model.v_template
    if betas is not None and np.any(betas):
        betas = np.asarray(betas, np.float64)
        v_shaped = v_shaped + model.shapedirs[..., : len(betas)] @ betas
    rest = model.J_regressor @ v_shaped                                     # [24, 3]
    posedirs = model.posedirs.reshape(-1, model.posedirs.shape[-1]).astype(np.float32)  # [3V, 207]
    weights = model.weights.astype(np.float32)
    out = np.empty((len(poses), model.num_vertices, 3), np.float32)
    for start in range(0, len(poses), chunk):
        rot = Q.axis_angle_to_matrix(poses[start:start + chunk])            # [C, 24, 3, 3]
        joints, glob = forward_kinematics(rot, trans[start:start + chunk], rest)
        pose_feature = (rot[:, 1:] - np.eye(3)).reshape(len(rot), -1).astype(np.float32)
        v_posed = v_shaped.astype(np.float32) + (pose_feature @ posedirs.T).reshape(len(rot), -1, 3)
        # per-joint affine transforms taking rest-space points to posed space: [C, 24, 3, 4]
        shift = joints - np.einsum("cjab,jb->cja", glob, rest)
        affine = np.concatenate([glob, shift[..., None]], -1).astype(np.float32).reshape(len(rot), 24, 12)
        blended = (weights @ affine).reshape(len(rot), -1, 3, 4)           # [C, V, 3, 4]
        out[start:start + chunk] = (np.einsum("cvab,cvb->cva", blended[..., :3], v_posed)
                                    + blended[..., 3])
    return out
