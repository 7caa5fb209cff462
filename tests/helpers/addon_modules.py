"""Load one of the add-on's bpy-free modules straight from its file, as the tests of its pure logic need."""
import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def load_addon_module(filename: str):
    """Import ``blender_mdm_addon/<filename>`` under its own name (registered in sys.modules: dataclasses need it)."""
    name = "addon_" + Path(filename).stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "blender_mdm_addon" / filename)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
