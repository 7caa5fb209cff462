"""Fitting speed and accuracy: blender-mdm's fitter against an SMPLify-style LBFGS baseline.

    python bench/fitting.py [--frames 196] [--repeats 20] [--baseline-steps 150] [--device cpu|cuda]
                            [--smpl PATH] [--skip-baseline]

Input: HumanML3D's sample 012314 (../shared, or $MDM_SHARED_DIR; 170 frames) played forward and then
back ("ping-pong") to --frames frames - resampling positions would shorten bones on its fast arm
swings - or a procedural walk when ../shared is absent. Skeleton: the SMPL-neutral-like rest joints (beta = 0)
that the acceptance test uses (bones up to 37 % off HumanML3D's, as with a real SMPL-neutral body),
or the rest joints of --smpl; our fitter is also timed on the built-in skeleton (exact bone lengths).

Baseline: MDM's SMPLify-3D schedule re-implemented on the skeleton only (the loss never uses the
mesh): torch LBFGS (lr 1e-2, max_iter 150, strong Wolfe), 10 orientation+translation steps on the
four torso joints with the 100^2 translation pin, then --baseline-steps body steps with MDM's weights
where they apply: joints 600^2 * GMoF(sigma = 100), angle prior 15.2^2 on elbows/knees, pose-
preserve 5^2 towards the initial pose. MDM's GMM pose prior (gmm_08.pkl, MPI licence) is not
available: a zero-mean unit Gaussian takes its place with the same weight, (4.78 * 1.5)^2 * |theta|^2/2,
and the HMR mean-pose initialisation is replaced by the zero pose. Betas stay 0.
Both run on the same input in the same process; the ratio of their times is printed. Timings on a
CPU shared with other work are noisy (the load average is printed).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backend.fitting import metrics as M  # noqa: E402
from backend.fitting.fitter import fit_joints  # noqa: E402
from backend.fitting.ik import CHAIN_HINGE, HINGE_AXES  # noqa: E402
from backend.fitting.rest_skeleton import builtin_rest_joints  # noqa: E402
from backend.motion import quaternion as Q  # noqa: E402
from backend.motion.skeleton import SMPL_PARENTS  # noqa: E402
from backend.motion.smpl_skeleton import posed_joints  # noqa: E402
from tests.helpers.synthetic_smpl import SMPL_NEUTRAL_LIKE_REST  # noqa: E402


def load_input(frames: int) -> tuple[np.ndarray, str]:
    shared = Path(os.environ.get("MDM_SHARED_DIR", REPO.parent / "shared"))
    sample = shared / "humanml3d/new_joints/012314.npy"
    if sample.is_file():
        joints = np.load(sample).astype(np.float64)
        period = np.arange(frames) % (2 * len(joints) - 2)
        index = np.where(period < len(joints), period, 2 * len(joints) - 2 - period)
        return joints[index], f"HumanML3D 012314 ({len(joints)} frames) ping-ponged to {frames} frames"
    t = np.arange(frames) / 20.0  # a procedural walk on the built-in skeleton
    poses = np.zeros((frames, 24, 3))
    phase = 2 * np.pi * 0.9 * t
    poses[:, 1, 0], poses[:, 2, 0] = -0.5 * np.sin(phase), 0.5 * np.sin(phase)
    poses[:, 4, 0], poses[:, 5, 0] = 0.6 * (1 + np.cos(phase)), 0.6 * (1 - np.cos(phase))
    poses[:, 16, 2], poses[:, 17, 2] = -1.2, 1.2
    poses[:, 18, 1], poses[:, 19, 1] = -0.4 - 0.2 * np.sin(phase), 0.4 - 0.2 * np.sin(phase)
    trans = np.stack([np.zeros_like(t), 0.02 * np.cos(2 * phase), 1.2 * t], -1)
    rest = builtin_rest_joints()
    joints = posed_joints(poses, trans, rest)[:, :22]
    joints[..., 1] -= joints[..., 1].min()
    return joints, f"procedural walk, {frames} frames (../shared absent)"


def report(name: str, fitted: np.ndarray, target: np.ndarray, poses: np.ndarray | None) -> None:
    err = M.joint_errors(fitted, target)
    foot = M.foot_height_error(fitted, target)
    line = (f"  {name:<34} MPJPE {err.mean() * 1e3:6.2f} mm (max {err.max() * 1e3:5.1f})  "
            f"foot height err mean {foot.mean() * 100:4.2f} / max {foot.max() * 100:4.2f} cm  "
            f"bone jitter {np.degrees(M.bone_jitter(fitted)):5.3f} deg/f^2")
    if poses is not None:
        rot = Q.axis_angle_to_matrix(poses)
        off = np.mean([np.degrees(M.off_hinge_angle(rot[:, j], a)).mean()
                       for j, a in zip(CHAIN_HINGE, HINGE_AXES)])
        line += f"  off-hinge {off:4.2f} deg  sign flips {M.quaternion_sign_flips(poses)}"
    print(line)


def time_ours(joints: np.ndarray, skeletons: list, repeats: int):
    """Fits (one per skeleton, after a warm-up) and [repeats, skeletons] wall times, interleaved
    so that a burst of load from other processes hits every skeleton alike."""
    fits = [fit_joints(joints, rest_joints=rest) for rest in skeletons]
    times = np.zeros((repeats, len(skeletons)))
    for r in range(repeats):
        for i, rest in enumerate(skeletons):
            start = time.perf_counter()
            fit_joints(joints, rest_joints=rest)
            times[r, i] = time.perf_counter() - start
    return fits, times


# ---------------------------------------------------------------------------------------------
# SMPLify-style baseline (torch)
# ---------------------------------------------------------------------------------------------
def smplify_baseline(target: np.ndarray, rest: np.ndarray, body_steps: int, device: str):
    import torch

    dev = torch.device(device)
    tgt = torch.as_tensor(target, dtype=torch.float32, device=dev)
    rest_t = torch.as_tensor(rest, dtype=torch.float32, device=dev)
    parents = SMPL_PARENTS.tolist()
    offsets = rest_t.clone()
    offsets[1:] -= rest_t[parents[1:]]
    n = len(target)

    def rodrigues(aa):  # [..., 3] -> [..., 3, 3]
        angle = aa.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        k = aa / angle
        kx, ky, kz = k.unbind(-1)
        zero = torch.zeros_like(kx)
        skew = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], -1).reshape(aa.shape + (3,))
        s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
        return torch.eye(3, device=dev) + s * skew + (1 - c) * skew @ skew

    def joints_of(orient, body, transl):  # skeleton-only SMPL forward: [T, 22, 3]
        rot = rodrigues(torch.cat([orient[:, None], body.reshape(n, 23, 3)], 1))
        glob, pos = [rot[:, 0]], [rest_t[0] + transl]
        for j in range(1, 22):
            p = parents[j]
            pos.append(pos[p] + (glob[p] @ offsets[j][:, None])[..., 0])
            glob.append(glob[p] @ rot[:, j])
        return torch.stack(pos, 1)

    def gmof(x, sigma=100.0):
        return sigma ** 2 * x ** 2 / (sigma ** 2 + x ** 2)

    orient = torch.zeros(n, 3, device=dev, requires_grad=True)
    body = torch.zeros(n, 69, device=dev, requires_grad=True)
    init_body = torch.zeros(n, 69, device=dev)
    torso = [2, 1, 17, 16]
    with torch.no_grad():
        start_joints = joints_of(orient, body, torch.zeros(n, 3, device=dev))
        t0 = (tgt[:, torso] - start_joints[:, torso]).mean(1)
    transl = t0.clone().requires_grad_(True)
    evals = [0]
    history = []

    def run_stage(params, loss_fn, steps, tag):
        opt = torch.optim.LBFGS(params, lr=1e-2, max_iter=150, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = loss_fn()
            loss.backward()
            evals[0] += 1
            return loss

        for step in range(steps):
            opt.step(closure)
            if tag == "body":
                with torch.no_grad():
                    err = (joints_of(orient, body, transl) - tgt).norm(dim=-1).mean().item()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                history.append((time.perf_counter() - started, evals[0], err))

    def camera_loss():
        model = joints_of(orient, body, transl)
        return ((tgt[:, torso] - model[:, torso]) ** 2).sum() + 100.0 ** 2 * ((transl - t0) ** 2).sum()

    signs = torch.tensor([1.0, -1.0, -1.0, -1.0], device=dev)

    def body_loss():
        model = joints_of(orient, body, transl)
        joint = 600.0 ** 2 * gmof(model - tgt).sum()
        pose_prior = (4.78 * 1.5) ** 2 * 0.5 * (body ** 2).sum()          # GMM stand-in (see doc)
        angle = 15.2 ** 2 * (torch.exp(body[:, [52, 55, 9, 12]] * signs) ** 2).sum()
        preserve = 5.0 ** 2 * ((body - init_body) ** 2).sum()
        return joint + pose_prior + angle + preserve

    started = time.perf_counter()
    run_stage([orient, transl], camera_loss, 10, "camera")
    camera_evals = evals[0]
    run_stage([body, orient, transl], body_loss, body_steps, "body")
    seconds = time.perf_counter() - started
    with torch.no_grad():
        fitted = joints_of(orient, body, transl).cpu().double().numpy()
        poses = torch.cat([orient[:, None], body.reshape(n, 23, 3)], 1).cpu().double().numpy()
    return fitted, poses, seconds, evals[0], camera_evals, history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=196)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--baseline-steps", type=int, default=150, help="LBFGS body steps (MDM: 150)")
    parser.add_argument("--device", default="cpu", help="device for the baseline (cpu or cuda)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the baseline (1: our fitter uses one core too)")
    parser.add_argument("--smpl", default=None, help="use this SMPL file's beta = 0 rest joints")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    joints, source = load_input(args.frames)
    if args.smpl:
        from backend.fitting.smpl_file import load_smpl
        rest, skeleton = load_smpl(args.smpl).rest_joints(), f"{args.smpl} (beta = 0)"
    else:
        rest, skeleton = SMPL_NEUTRAL_LIKE_REST, "SMPL-neutral-like rest joints (beta = 0)"
    print(f"input: {source}; skeleton: {skeleton}")
    print(f"cpu: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
          f"(timings are noisy when other work shares the CPU)")

    (fit, fit_b), both = time_ours(joints, [rest, None], args.repeats)
    times, times_b = both[:, 0], both[:, 1]
    ours = float(np.median(times))
    print(f"\nblender-mdm fitter (numpy, CPU), {args.frames} frames, {args.repeats} runs:")
    print(f"  SMPL-neutral-like skeleton: median {ours * 1e3:6.1f} ms  (min {times.min() * 1e3:.1f})")
    print(f"  built-in skeleton:          median {np.median(times_b) * 1e3:6.1f} ms  "
          f"(min {times_b.min() * 1e3:.1f})")
    print(f"  target for 196 frames: <= 50 ms -> {'OK' if ours <= 0.050 else 'OVER'} (median)")
    print("\naccuracy (same input):")
    report("target motion itself", joints, joints, None)
    report("ours, SMPL-neutral-like", fit.joints_fitted, joints, fit.poses)
    report("ours, built-in skeleton", fit_b.joints_fitted, joints, fit_b.poses)

    if args.skip_baseline:
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("\nbaseline skipped: torch is not installed")
        return 0
    if args.device.startswith("cuda") and not __import__("torch").cuda.is_available():
        print(f"\nbaseline skipped: {args.device} is not available here")
        return 0
    __import__("torch").set_num_threads(args.threads)
    print(f"\nSMPLify-style LBFGS baseline (torch, {args.device}), 10 camera + {args.baseline_steps} "
          f"body steps ...")
    fitted, poses, seconds, evals, camera_evals, history = smplify_baseline(
        joints, rest, args.baseline_steps, args.device)
    final = history[-1][2]
    conv = next(h for h in history if h[2] <= final + 5e-5)
    print(f"  total {seconds:7.2f} s, {evals} loss evaluations ({camera_evals} in the camera stage)")
    print(f"  converged (MPJPE within 0.05 mm of final) after {conv[0]:.2f} s / {conv[1]} evaluations")
    report("baseline (full schedule)", fitted, joints, poses)
    print(f"\nspeed-up of ours over the baseline: {seconds / ours:,.0f}x (full schedule), "
          f"{conv[0] / ours:,.0f}x (baseline stopped at convergence)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
