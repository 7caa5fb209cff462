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
    assert (summary["root_motion"], summary["foot_lock"]) == ("WORLD", True)      # the panel's defaults
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
