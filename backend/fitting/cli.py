"""``python -m backend fit`` and ``python -m backend smpl-check``."""
from __future__ import annotations

import argparse
import time

import numpy as np

from ..errors import InputError
from .results import fit_result_arrays, load_joints_file
from .smpl_file import load_smpl


def add_arguments(command: str, parser: argparse.ArgumentParser) -> None:
    if command == "smpl-check":
        parser.add_argument("path", help="SMPL model file (.pkl or .npz), e.g. SMPL_NEUTRAL.pkl")
        return
    parser.add_argument("--joints", required=True,
                        help="joints in metres, y up: .npy [T, 22, 3] or [K, T, 22, 3], or .npz with "
                             "'joints' (and optional 'lengths'; other entries are copied to --out)")
    parser.add_argument("--smpl", default=None, help="SMPL model file; default: the built-in skeleton")
    parser.add_argument("--fit-betas", action="store_true", help="fit body shape to the bone lengths")
    parser.add_argument("--vertices", action="store_true", help="also write mesh vertices (needs --smpl)")
    parser.add_argument("--out", required=True, help="output .npz")


def run(command: str, args: argparse.Namespace) -> int:
    if command == "smpl-check":
        model = load_smpl(args.path)
        print(model.describe())
        print("OK: usable for fitting, armature and mesh output")
        return 0
    joints, lengths, passthrough = load_joints_file(args.joints)
    single = joints.ndim == 3
    if joints.ndim not in (3, 4):
        raise InputError(f"{args.joints}: joints must be [T, 22, 3] or [K, T, 22, 3], "
                         f"got {list(joints.shape)}")
    start = time.perf_counter()
    fitted = fit_result_arrays(joints[None] if single else joints, lengths, smpl_path=args.smpl,
                               fit_betas=args.fit_betas, vertices=args.vertices)
    seconds = time.perf_counter() - start
    if single:  # a single clip in, a single clip out
        fitted = {k: (v[0] if k not in ("rest_joints", "parents") else v) for k, v in fitted.items()}
    out = {**passthrough, **({"lengths": lengths} if lengths is not None else {}), "joints": joints, **fitted}
    if not args.out.endswith(".npz"):
        args.out += ".npz"
    np.savez(args.out, **out)
    err = fitted["fit_error"]
    print(f"fitted {int(np.prod(joints.shape[:-2]))} frames in {seconds * 1e3:.0f} ms; mean joint error "
          f"{err.mean() * 1e3:.1f} mm (max frame {err.max() * 1e3:.1f} mm) -> {args.out}")
    return 0
