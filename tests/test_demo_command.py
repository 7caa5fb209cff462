"""The README's main command (scripts/demo.sh): embedded model -> .blend + a preview of the posed rig."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.png import decode_png

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_demo_command_writes_a_blend_and_a_preview_showing_a_figure(tmp_path):
    env = dict(os.environ, MDM_DEMO_OUT=str(tmp_path))
    proc = subprocess.run([str(REPO / "scripts/demo.sh"), "a person leaps", "--seconds", "3",
                           "--upper-prompt", "a person claps"], env=env,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("MDM_RESULT "))
    summary = json.loads(line[len("MDM_RESULT "):])
    assert summary["actions"] == ["a person leaps | seed 0"] and summary["frame_range"][0] == 1
    assert (summary["reworded"], summary["unseen_words"]) == ({"leaps": "jumps"}, [])   # WordNet: to leap is to jump
    assert (summary["root_motion"], summary["foot_lock"], summary["loop"]) == ("WORLD", True, False)  # panel defaults
    assert summary["upper_prompt"] == "a person claps"
    blend = tmp_path / "demo.blend"
    head = blend.read_bytes()[:7]
    assert blend.is_file() and (head == b"BLENDER" or head[:4] == b"\x28\xb5\x2f\xfd")   # plain or zstd-compressed
    probe = subprocess.run([str(REPO / ".venv/bin/python"), "-c",
                            "import bpy, sys; bpy.ops.wm.open_mainfile(filepath=sys.argv[1]); "
                            "print('ACTIONS', [a.name for a in bpy.data.actions]); "
                            "print('ARMATURES', sum(o.type == 'ARMATURE' for o in bpy.data.objects))", str(blend)],
                           capture_output=True, text=True, timeout=120)
    assert "ACTIONS ['a person leaps | seed 0']" in probe.stdout and "ARMATURES 1" in probe.stdout, probe.stdout
    image = decode_png((tmp_path / "demo.png").read_bytes())
    background = np.median(image.reshape(-1, 3), axis=0)
    drawn = (np.abs(image.astype(int) - background).sum(-1) > 120)   # strokes of the stick figures
    h = image.shape[0]
    # several frames of a figure in the panel rows, not an empty sheet
    assert drawn[: 2 * h // 3].mean() > 0.002, drawn.mean()
    columns_with_ink = drawn[: 2 * h // 3].any(axis=0)
    assert columns_with_ink.sum() > image.shape[1] // 20


def test_extend_a_generated_walk_with_a_sit_down(tmp_path):
    """Headless, demo model: walk 4 s, then Extend 3 s with "a person sits down"."""
    py = str(REPO / ".venv/bin/python")
    common = [py, str(REPO / "blender_mdm_addon/headless.py"), "--", "--seed", "0", "--python", py]
    walk = subprocess.run(common + ["--prompt", "a person walks forward", "--seconds", "4",
                                    "--save", str(tmp_path / "walk.blend")],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert walk.returncode == 0, walk.stderr[-3000:]
    extend = subprocess.run(common + ["--open", str(tmp_path / "walk.blend"), "--extend", "3",
                                      "--prompt", "a person sits down", "--save", str(tmp_path / "sit.blend")],
                            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert extend.returncode == 0, extend.stderr[-3000:]
    assert "Extended by 3 s (frames 88-167)" in extend.stdout + extend.stderr
    found = probe_rig(tmp_path / "sit.blend")
    assert found["span"] == [1, 167] and found["edit"] == [88, 167]   # 95 walk frames at 24 fps + 3 s
    pelvis, accel = np.array(found["pelvis"]), np.array(found["accel"])
    assert pelvis[:5].mean() - pelvis[-48:].min() > 0.3              # it sits (measured: 0.43 m, seeds 0-3)
    # the join (the fade-in and just after) is no rougher than the walk itself
    # (measured 0.24-1.21 x over seeds 0-3; seed 0: 0.32 x)
    assert accel[86:100].max() <= 1.3 * accel[:86].max()


def probe_rig(blend: Path, frames_after: int = 0) -> dict:
    """tests/helpers/rig_motion_probe.py's report on the rig of a saved scene."""
    probe = subprocess.run([str(REPO / ".venv/bin/python"), str(REPO / "tests/helpers/rig_motion_probe.py"), str(blend),
                            str(frames_after)], capture_output=True, text=True, timeout=300)
    return json.loads(next(l for l in probe.stdout.splitlines() if l.startswith("PROBE "))[6:])


def test_loop_a_generated_walk(tmp_path):
    """Headless, demo model: a 6 s walk keyed as one seamless cycle, evaluated over three cycles."""
    py = str(REPO / ".venv/bin/python")
    proc = subprocess.run([py, str(REPO / "blender_mdm_addon/headless.py"), "--", "--prompt", "a person walks forward",
                           "--seconds", "6", "--seed", "0", "--loop", "--python", py, "--save", str(tmp_path / "l.blend")],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("MDM_RESULT "))[11:])
    first, last = summary["frame_range"]
    period = last - first
    assert summary["loop"] is True and period >= 24                    # at least a 1 s cycle at 24 fps
    found = probe_rig(tmp_path / "l.blend", frames_after=2 * period)
    accel, pelvis = np.array(found["accel"]), np.array(found["pelvis"])
    assert found["cyclic"]
    np.testing.assert_allclose(pelvis[period:2 * period], pelvis[:period], atol=1e-4)   # the cycle repeats
    # the seams are as smooth as the walk (measured seed 0: 0.022 vs 0.083 m/frame² at most in the cycle)
    assert accel[[period - 1, 2 * period - 1]].max() <= accel[:period - 1].max()
