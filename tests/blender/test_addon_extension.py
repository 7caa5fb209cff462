"""The add-on as a Blender 4.2+ extension: Blender's own tools build the zip (add-on + backend
inside it) and install it; the installed extension keys a result using its packaged backend."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from addon_helpers import write_result

pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")

REPO = Path(__file__).resolve().parents[2]


def blender_ext_cli() -> Path:
    import bpy
    cli = Path(bpy.utils.system_resource('SCRIPTS')) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not cli.is_file():
        pytest.skip("this bpy wheel does not ship Blender's extension CLI")
    return cli


def test_extension_zip_installs_and_keys(tmp_path):
    source = tmp_path / "src" / "blender_mdm"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "blender_mdm_addon", source, ignore=ignore)
    shutil.copytree(REPO / "backend", source / "backend", ignore=ignore)
    (tmp_path / "out").mkdir()
    build = subprocess.run([sys.executable, str(blender_ext_cli()), "build", "--source-dir", str(source),
                            "--output-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stdout + build.stderr
    zip_path = next((tmp_path / "out").glob("blender_mdm-*.zip"))
    env = {**os.environ, "HOME": str(tmp_path / "home"), "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    result = write_result(tmp_path / "r.npz", num_samples=2, num_frames=12)
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("extension_probe.py")), "--", str(zip_path),
                           str(result)], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])
    assert probe["enabled"] and probe["actions"] == 2
    assert probe["backend_from"].startswith(probe["package_dir"]), "the packaged backend must be the one used"
    assert probe["private_modules"] > 3 and not probe["top_level_backend"]
    assert probe["user_dir"].startswith(str(tmp_path))
