"""The "Set up backend" logic, without network: plans per platform/GPU, real venv creation, pip failure."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.addon_modules import load_addon_module

REPO = Path(__file__).resolve().parent.parent
setup = load_addon_module("backend_setup.py")
REQ = REPO / "backend" / "requirements.txt"


def pip_step(plan):
    return next(s for s in plan.steps if "-r" in s.argv)


@pytest.mark.parametrize("system,gpu,variant,index", [
    ("Linux", False, "cpu", setup.TORCH_CPU_INDEX),
    ("Linux", True, "cuda", None),            # PyPI's Linux wheels carry CUDA
    ("Windows", True, "cuda", setup.TORCH_CUDA_INDEX),
    ("Windows", False, "pypi", None),
    ("Darwin", False, "pypi", None),
])
def test_plan_picks_the_right_torch_build(tmp_path, system, gpu, variant, index):
    plan = setup.plan_setup(tmp_path / "venv", REQ, Path(sys.executable), gpu, system=system)
    assert plan.torch_variant == variant
    argv = pip_step(plan).argv
    assert argv[:4] == [str(plan.python), "-m", "pip", "install"] and str(REQ) in argv
    if index:
        assert argv[argv.index("--index-url") + 1] == index and "--extra-index-url" in argv
    else:
        assert "--index-url" not in argv
    assert plan.steps[0].argv[:3] == [sys.executable, "-m", "venv"]
    expected_py = "Scripts/python.exe" if system == "Windows" else "bin/python"
    assert plan.python == tmp_path / "venv" / expected_py


def test_existing_python_is_used_as_is(tmp_path):
    mine = tmp_path / "my" / "python"
    plan = setup.plan_setup(tmp_path / "venv", REQ, Path(sys.executable), False, system="Linux", existing_python=mine)
    assert plan.python == mine
    assert len(plan.steps) == 1 and plan.steps[0].argv[0] == str(mine)
    assert not any("venv" in a for a in plan.steps[0].argv)


def test_repair_clears_the_environment(tmp_path):
    plan = setup.plan_setup(tmp_path / "venv", REQ, Path(sys.executable), False, system="Linux", repair=True)
    assert "--clear" in plan.steps[0].argv


def test_real_venv_then_pip_failure_reports_step_and_output(tmp_path):
    plan = setup.plan_setup(tmp_path / "venv", REQ, Path(sys.executable), False, system="Linux")
    seen = []

    def runner(argv, **kw):
        if argv[1:3] == ["-m", "venv"]:
            return subprocess.run(argv + ["--without-pip"], **kw)   # real, offline
        if "pip" in argv:
            return subprocess.CompletedProcess(argv, 1, "", "ERROR: Could not find a version that satisfies torch==2.13.0")
        raise AssertionError(argv)

    with pytest.raises(setup.SetupError) as err:
        setup.run_setup(plan, progress=lambda i, n, label: seen.append((i, n, label)), runner=runner)
    assert (tmp_path / "venv" / "bin" / "python").exists()          # the venv itself was created
    message = str(err.value)
    assert "Updating pip failed" in message and "exit code 1" in message and "torch==2.13.0" in message
    assert "internet" in message
    assert [s[0] for s in seen] == [0, 1]


def test_successful_run_reports_progress_and_cleans_blender_paths(tmp_path):
    plan = setup.plan_setup(tmp_path / "venv", REQ, Path(sys.executable), False, system="Linux")
    envs, seen = [], []

    def runner(argv, env=None, **kw):
        envs.append(env)
        return subprocess.CompletedProcess(argv, 0, "ok", "")

    py = setup.run_setup(plan, progress=lambda *a: seen.append(a), runner=runner,
                         env={"PYTHONPATH": "/blender/scripts", "PATH": "/usr/bin"})
    assert py == plan.python
    assert all("PYTHONPATH" not in e for e in envs)
    assert seen[-1] == (len(plan.steps), len(plan.steps), "Backend environment ready")


def test_missing_interpreter_is_a_clear_error(tmp_path):
    plan = setup.plan_setup(tmp_path / "venv", REQ, tmp_path / "no-such-python", False, system="Linux")
    with pytest.raises(setup.SetupError, match="cannot run"):
        setup.run_setup(plan)
    assert not setup.environment_is_healthy(tmp_path / "no-such-python")
    assert setup.environment_is_healthy(Path(sys.executable))  # the dev venv has torch


def test_gpu_detection_without_nvidia_smi():
    assert setup.detect_nvidia_gpu(which=lambda name: None) is False
