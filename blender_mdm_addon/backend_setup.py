"""Backend environment set-up ("Set up backend" in the preferences), free of bpy so it is testable.

The backend runs in its own virtual environment in the extension's user directory — never inside
the add-on folder and never in Blender's Python. ``plan_setup`` decides what to run (pure);
``run_setup`` runs it with progress and a clear error; re-running repairs a broken environment
(``venv --clear`` when the existing interpreter no longer starts, then the same pip install).

torch wheels: Linux PyPI wheels bundle CUDA (several GB), so a machine without an NVIDIA GPU gets
the CPU-only index; Windows PyPI wheels are CPU-only, so a machine with an NVIDIA GPU gets the
CUDA index; macOS uses PyPI (CPU / Apple GPU).
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX = "https://download.pytorch.org/whl/cu128"
PYPI = "https://pypi.org/simple"


class SetupError(Exception):
    """Set-up failed; ``str()`` says what failed and what the user can do."""


@dataclass
class SetupStep:
    label: str              # shown in the UI while it runs
    argv: list[str]


@dataclass
class SetupPlan:
    python: Path            # the interpreter the add-on will launch the backend with
    steps: list[SetupStep] = field(default_factory=list)
    torch_variant: str = "cpu"   # "cpu", "cuda" or "pypi"


def venv_python(venv_dir: Path, system: str | None = None) -> Path:
    system = system or platform.system()
    return venv_dir / ("Scripts/python.exe" if system == "Windows" else "bin/python")


def detect_nvidia_gpu(which: Callable[[str], str | None] = shutil.which) -> bool:
    """True when the NVIDIA driver tool answers with at least one GPU (cheap, no torch needed)."""
    tool = which("nvidia-smi")
    if not tool:
        return False
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def torch_index(system: str, has_nvidia: bool) -> tuple[str, list[str]]:
    """(variant, extra pip arguments) for installing torch on this platform."""
    if system == "Linux" and not has_nvidia:
        return "cpu", ["--index-url", TORCH_CPU_INDEX, "--extra-index-url", PYPI]
    if system == "Windows" and has_nvidia:
        return "cuda", ["--index-url", TORCH_CUDA_INDEX, "--extra-index-url", PYPI]
    return ("cuda" if has_nvidia else "pypi"), []


def plan_setup(venv_dir: Path, requirements: Path, base_python: Path, has_nvidia: bool,
               system: str | None = None, existing_python: Path | None = None,
               repair: bool = False) -> SetupPlan:
    """What "Set up backend" will run. With ``existing_python`` the user's own interpreter is used
    as is: nothing is created, only the requirements are installed into it."""
    system = system or platform.system()
    if existing_python is not None:
        py = Path(existing_python)
        variant, index_args = torch_index(system, has_nvidia)
        return SetupPlan(py, [SetupStep("Installing backend packages into the chosen Python",
                                        [str(py), "-m", "pip", "install", "-r", str(requirements), *index_args])],
                         variant)
    py = venv_python(venv_dir, system)
    variant, index_args = torch_index(system, has_nvidia)
    create = [str(base_python), "-m", "venv"] + (["--clear"] if repair else []) + [str(venv_dir)]
    steps = [
        SetupStep("Creating the backend environment", create),
        SetupStep("Updating pip", [str(py), "-m", "pip", "install", "--upgrade", "pip"]),
        SetupStep(f"Installing torch ({variant}) and the backend packages (this downloads a lot)",
                  [str(py), "-m", "pip", "install", "-r", str(requirements), *index_args]),
        SetupStep("Checking the backend imports", [str(py), "-c", "import torch, numpy, transformers; print(torch.__version__)"]),
    ]
    return SetupPlan(py, steps, variant)


# Either backend environment: torch (backend/requirements.txt) or ONNX Runtime (requirements-onnx.txt).
HEALTH_CHECK = "import numpy\ntry:\n    import torch, transformers\nexcept ImportError:\n    import onnxruntime, tokenizers\n"


def environment_is_healthy(python: Path, timeout: float = 60.0) -> bool:
    """True when ``python`` starts and imports the heavy dependencies of either backend runtime."""
    if not Path(python).is_file():
        return False
    try:
        out = subprocess.run([str(python), "-c", HEALTH_CHECK], capture_output=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def run_setup(plan: SetupPlan, progress: Callable[[int, int, str], None] | None = None,
              runner: Callable[..., subprocess.CompletedProcess] = subprocess.run,
              env: dict | None = None) -> Path:
    """Run every step; raise SetupError naming the failed step and the tail of its output."""
    env = dict(os.environ if env is None else env)
    env.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    env.pop("PYTHONPATH", None)  # Blender's own paths must not leak into the backend environment
    env.pop("PYTHONHOME", None)
    for i, step in enumerate(plan.steps):
        if progress:
            progress(i, len(plan.steps), step.label)
        try:
            out = runner(step.argv, capture_output=True, text=True, env=env)
        except OSError as exc:
            raise SetupError(f"{step.label} failed: cannot run {step.argv[0]} ({exc}). "
                             "Choose an existing Python 3.10+ in the preferences instead.") from exc
        if out.returncode != 0:
            tail = "\n".join((out.stderr or out.stdout or "").strip().splitlines()[-6:])
            hint = ("Check your internet connection (or proxy settings) and run Set up backend again, or point "
                    "the preferences at a Python that already has the packages." if "pip" in step.argv else
                    "Run Set up backend again to repair the environment.")
            raise SetupError(f"{step.label} failed (exit code {out.returncode}):\n{tail}\n{hint}")
    if progress:
        progress(len(plan.steps), len(plan.steps), "Backend environment ready")
    return plan.python


def default_base_python() -> Path:
    """The interpreter used to create the venv: Blender's own Python (never modified)."""
    return Path(sys.executable)
