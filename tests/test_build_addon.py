"""build_addon.py: a valid, deterministic extension zip with the right contents (issue 7)."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import build_addon  # noqa: E402


def test_check_passes_on_the_repository():
    proc = subprocess.run([sys.executable, str(REPO / "build_addon.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ok: blender_mdm {build_addon.backend_version()}")


def test_build_twice_gives_identical_bytes_and_the_expected_contents(tmp_path):
    files = build_addon.collect_files()
    version = build_addon.backend_version()
    a = build_addon.build(files, version, tmp_path / "a")
    b = build_addon.build(files, version, tmp_path / "b")
    assert a.name == f"blender_mdm-{version}.zip" and a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        names = set(zf.namelist())
        manifest = zf.read("blender_manifest.toml").decode()
    for required in build_addon.REQUIRED_FILES:
        assert required in names
    assert "backend/models/demo/args.json" in names and any(n.startswith("backend/models/demo/model") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith(("tests/", "bench/", "scripts/")) for n in names)
    assert f'version = "{version}"' in manifest


def test_check_reports_problems(tmp_path, monkeypatch):
    files = [f for f in build_addon.collect_files() if f[0] != "backend/assets/humanml3d/Mean.npy"]
    smpl = tmp_path / "SMPL_NEUTRAL.pkl"
    smpl.write_bytes(b"x")
    files.append(("smpl_assets/SMPL_NEUTRAL.pkl", smpl))
    problems = build_addon.check(files, "1.2")
    assert any("Mean.npy" in p for p in problems)
    assert any("SMPL_NEUTRAL.pkl" in p for p in problems)
    assert any("semantic" in p for p in problems)
