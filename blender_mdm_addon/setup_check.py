"""Where the backend Python, model, text encoder and SMPL file are, and what exactly is missing.

Plain Python (no bpy): the preferences status lines, the panel and ``mdm.generate``'s pre-flight
check all call ``check_setup``; ``require_ready`` turns its findings into one actionable error.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import backend_link

SMPL_FILE_NAMES = ("SMPL_NEUTRAL.npz", "SMPL_NEUTRAL.pkl", "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
                   "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl")
_VENV_PYTHON = Path("Scripts/python.exe") if sys.platform == "win32" else Path("bin/python")


@dataclass
class Settings:
    """The preference values, as plain strings (empty = default)."""
    python_exe: str = ""
    model_dir: str = ""
    text_encoder_dir: str = ""
    smpl_dir: str = ""
    device: str = "auto"


@dataclass
class Check:
    name: str     # "backend", "python", "model", "text_encoder", "smpl"
    ok: bool
    message: str  # what was found, or exactly what is missing and what to do
    optional: bool = False  # not needed for armature output


def runtime_dir() -> Path | None:
    """Where "Set up backend" creates the backend's virtual environment: the extension's user
    folder, or Blender's per-user data folder for a legacy add-on (None outside Blender)."""
    try:
        import bpy
    except ImportError:
        return None
    try:
        return Path(bpy.utils.extension_path_user(__package__, path="runtime", create=False))
    except (AttributeError, ValueError):  # not an extension (legacy add-on / tests)
        return Path(bpy.utils.user_resource('DATAFILES', path="blender_mdm")) / "runtime"


def dev_venv_python() -> Path:
    """The repository's development environment (used when running from a git checkout)."""
    return backend_link.ADDON_DIR.parent / ".venv" / _VENV_PYTHON


def resolve_python(settings: Settings) -> Path | None:
    """The backend interpreter: the preference, else the set-up runtime, else the repository's .venv."""
    if settings.python_exe:
        return Path(os.path.expanduser(settings.python_exe))
    candidates = [dev_venv_python()]
    runtime = runtime_dir()
    if runtime is not None:
        candidates.insert(0, runtime / _VENV_PYTHON)
    return next((c for c in candidates if c.is_file()), None)


def resolve_smpl_file(settings: Settings) -> Path | None:
    folder = Path(os.path.expanduser(settings.smpl_dir)) if settings.smpl_dir else backend_link.default_smpl_dir()
    if folder.is_file():
        return folder
    for name in SMPL_FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    found = [p for p in sorted(folder.iterdir()) if p.suffix in (".pkl", ".npz")
             and ("smpl" in p.name.lower() or "basicmodel" in p.name.lower())] if folder.is_dir() else []
    return found[0] if found else None


def check_setup(settings: Settings) -> list[Check]:
    checks = []
    root = backend_link.backend_root()
    checks.append(Check("backend", root is not None, f"backend sources: {root}" if root else
                        "backend sources missing next to the add-on; reinstall the extension zip"))
    python = resolve_python(settings)
    if python is None:
        checks.append(Check("python", False, "backend Python not set: choose the backend environment's python "
                            "executable in the add-on preferences (or run Set up backend)"))
    elif not python.is_file():
        checks.append(Check("python", False, f"backend Python {python} does not exist; fix the path in the "
                            "add-on preferences"))
    elif not os.access(python, os.X_OK):
        checks.append(Check("python", False, f"backend Python {python} is not executable"))
    else:
        checks.append(Check("python", True, f"backend Python: {python}"))
    if not settings.model_dir:
        checks.append(Check("model", True, "model: embedded demo model (set a model folder for an official MDM checkpoint)"))
    else:
        model = Path(os.path.expanduser(settings.model_dir))
        if not model.is_dir():
            checks.append(Check("model", False, f"model folder {model} does not exist; choose the folder holding "
                                "args.json and model*.pt, or clear it for the demo model"))
        elif not (model / "args.json").is_file() or not any(model.glob("*.pt")):
            what = "args.json" if not (model / "args.json").is_file() else "a model*.pt checkpoint"
            checks.append(Check("model", False, f"model folder {model} has no {what}; choose the unzipped MDM "
                                "checkpoint folder"))
        else:
            checks.append(Check("model", True, f"model: {model}"))
    if settings.text_encoder_dir and not Path(os.path.expanduser(settings.text_encoder_dir)).is_dir():
        checks.append(Check("text_encoder", False, f"text-encoder folder {settings.text_encoder_dir} does not "
                            "exist; fix it or clear it to use the model's default encoder"))
    else:
        checks.append(Check("text_encoder", True, f"text encoder: {settings.text_encoder_dir or 'model default'}"))
    smpl = resolve_smpl_file(settings)
    checks.append(Check("smpl", smpl is not None, f"SMPL model: {smpl}" if smpl else
                        f"no SMPL model file in {settings.smpl_dir or backend_link.default_smpl_dir()}: armature "
                        "output only (mesh output needs SMPL_NEUTRAL.pkl from smpl.is.tue.mpg.de)", optional=True))
    return checks


class SetupError(backend_link.load("errors").BackendError):
    """The add-on cannot start a job: backend Python, model folder or SMPL file missing."""
    code = "backend_setup"


def require_ready(settings: Settings, need_smpl: bool = False) -> None:
    """Raise SetupError with the first blocking problem (so nothing in the scene changes)."""
    for check in check_setup(settings):
        if not check.ok and (not check.optional or need_smpl):
            raise SetupError(check.message)
