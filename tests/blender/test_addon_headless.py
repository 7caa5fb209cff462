"""The background-script path (headless.py, as documented) and undo, each in a fresh process."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from addon_helpers import write_result

pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")

REPO = Path(__file__).resolve().parents[2]
HEADLESS = REPO / "blender_mdm_addon" / "headless.py"


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), "--", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def tagged(out: str, tag: str) -> dict:
    line = next(line for line in out.splitlines() if line.startswith(tag + " "))
    return json.loads(line[len(tag) + 1:])


def test_headless_script_keys_a_result_and_saves(tmp_path):
    result = write_result(tmp_path / "r.npz", num_samples=2, num_frames=41)
    proc = run(HEADLESS, "--result", str(result), "--fps", "30", "--start-frame", "10", "--in-place",
               "--save", str(tmp_path / "o.blend"))
    assert proc.returncode == 0, proc.stderr
    summary = tagged(proc.stdout, "MDM_RESULT")
    assert summary["fps"] == 30 and summary["frame_range"] == [10, 70]  # 2 s at 30 fps: 61 keys
    assert summary["root_motion"] == "IN_PLACE"
    assert summary["actions"] == ["a person waves | seed 7 #1", "a person waves | seed 7 #2"]
    assert (tmp_path / "o.blend").stat().st_size > 10_000


def test_headless_script_reports_errors_without_traceback(tmp_path):
    proc = run(HEADLESS, "--prompt", "a person waves", "--python", str(tmp_path / "nope" / "python"))
    assert proc.returncode == 2
    assert "error: backend Python" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("mode", ["import", "generate"])
def test_one_undo_step_removes_the_result(tmp_path, mode):
    proc = run(Path(__file__).with_name("undo_probe.py"), mode, str(tmp_path / "r.npz"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    probe = tagged(proc.stdout, "PROBE")
    assert probe["after_op"] != probe["before"], "the operator added nothing"
    assert probe["after_undo"] == probe["before"]
    assert probe["keys_unchanged"] and probe["active_action"] == "UserAction"
