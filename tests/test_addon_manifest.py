"""The add-on's two registrations (extension manifest, legacy bl_info) agree with backend/version.py."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from backend.version import __version__

ADDON = Path(__file__).resolve().parents[1] / "blender_mdm_addon"


def bl_info() -> dict:
    tree = ast.parse((ADDON / "__init__.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "bl_info")
    return ast.literal_eval(node.value)


def test_manifest_matches_version_and_permissions():
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text())
    assert manifest["id"] == "blender_mdm" and manifest["type"] == "add-on"
    assert manifest["version"] == __version__
    assert manifest["blender_version_min"] == "4.2.0"
    assert set(manifest["permissions"]) == {"files", "network"}
    for reason in manifest["permissions"].values():  # Blender's validator: <= 64 chars, no final period
        assert len(reason) <= 64 and not reason.endswith(".")
    assert len(manifest["tagline"]) <= 64 and not manifest["tagline"].endswith((".", "!"))


def test_legacy_bl_info_matches():
    info = bl_info()
    assert ".".join(map(str, info["version"])) == __version__
    assert info["blender"] == (4, 2, 0) and info["location"] == "3D View > Sidebar > MDM"


def test_blenders_own_validator_accepts_the_manifest():
    import subprocess
    import sys

    import pytest
    bpy = pytest.importorskip("bpy", reason="needs the bpy module (it ships Blender's extension validator)")
    cli = Path(bpy.utils.system_resource('SCRIPTS')) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    proc = subprocess.run([sys.executable, str(cli), "validate", str(ADDON)], capture_output=True, text=True)
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr
