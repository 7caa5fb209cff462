"""Where the backend sources live, and the torch-free parts of them loaded privately.

The backend is found packaged inside the add-on (``<addon>/backend``, the extension zip) or beside
it in the repository (``<repo>/backend``). Either way it is imported as ``<this package>.backend``,
never as a top-level ``backend``, so nothing is added to ``sys.path`` and no other add-on can see or
shadow it. The server process gets PYTHONPATH = the backend's parent folder instead (the client
sets it from the ``backend_root`` we pass).
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parent
_PRIVATE_NAME = f"{__package__}.backend"


def backend_root() -> Path | None:
    """The ``backend`` package folder, or None when neither location holds one."""
    for candidate in (ADDON_DIR / "backend", ADDON_DIR.parent / "backend"):
        if (candidate / "__init__.py").is_file() and (candidate / "motion").is_dir():
            return candidate
    return None


def default_smpl_dir() -> Path:
    """``smpl_assets/`` inside the extension, else beside it in the repository."""
    inside = ADDON_DIR / "smpl_assets"
    return inside if inside.is_dir() else ADDON_DIR.parent / "smpl_assets"


def load(submodule: str = ""):
    """Import ``backend[.submodule]`` under this add-on's package name and return the module."""
    if _PRIVATE_NAME not in sys.modules:
        root = backend_root()
        if root is None:
            raise ImportError(f"blender-mdm: no backend sources in {ADDON_DIR / 'backend'} or "
                              f"{ADDON_DIR.parent / 'backend'}; reinstall the extension zip")
        spec = importlib.util.spec_from_file_location(
            _PRIVATE_NAME, root / "__init__.py", submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[_PRIVATE_NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[_PRIVATE_NAME]
            raise
    return importlib.import_module(f"{_PRIVATE_NAME}.{submodule}" if submodule else _PRIVATE_NAME)


def unload() -> None:
    """Forget the private copy (on unregister) so a reload picks up edited sources."""
    for name in [n for n in sys.modules if n == _PRIVATE_NAME or n.startswith(_PRIVATE_NAME + ".")]:
        del sys.modules[name]
