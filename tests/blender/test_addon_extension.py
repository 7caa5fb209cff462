"""The installable extension (issue 7): build_addon.py's zip passes Blender's own validator, installs
through Blender's installer, and the installed copy generates with its packaged backend and the
embedded demo model, the backend pointed at the test environment's Python."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from addon_helpers import backend_python

pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def blender_ext_cli() -> Path:
    import bpy
    cli = Path(bpy.utils.system_resource('SCRIPTS')) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not cli.is_file():
        pytest.skip("this bpy wheel does not ship Blender's extension CLI")
    return cli


def test_built_zip_validates_installs_and_generates(tmp_path):
    build = subprocess.run([sys.executable, str(REPO / "build_addon.py"), "--out-dir", str(tmp_path / "dist")],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    zip_path = Path(build.stdout.strip().splitlines()[-1])
    validate = subprocess.run([sys.executable, str(blender_ext_cli()), "validate", str(zip_path)],
                              capture_output=True, text=True, timeout=120)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    python = backend_python()
    if python is None:
        pytest.skip("no backend Python with torch: set MDM_BACKEND_PYTHON (or create <repo>/.venv)")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("extension_probe.py")), "--", str(zip_path),
                           python], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert probe["enabled"] and probe["actions"] == ["a person jumps | seed 1 #1", "a person jumps | seed 1 #2"]
    assert probe["model_id"].startswith("demo@")                      # the embedded model, from the zip
    assert probe["backend_from"].startswith(probe["package_dir"]), "the packaged backend must be the one used"
    assert probe["private_modules"] > 3 and not probe["top_level_backend"]
    assert probe["user_dir"].startswith(str(tmp_path))
