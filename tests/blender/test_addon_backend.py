"""End to end with the real backend: the add-on starts ``python -m backend.serve`` (through the
service client) with a tiny random-weight MDM model, generates in background mode, and keys the
fitted result. Slow-ish: a server start imports torch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from addon_helpers import backend_python, evaluated_joints, reference_joints

bpy = pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1, or 4.2.x)")

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    python = backend_python()
    if python is None:
        pytest.skip("no backend Python with torch: set MDM_BACKEND_PYTHON (or create <repo>/.venv)")
    root = tmp_path_factory.mktemp("tiny")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from tests.helpers.tiny_models import "
            "write_tiny_model_dir, write_tiny_clip; write_tiny_model_dir(sys.argv[2] + '/model', diffusion_steps=8); "
            "write_tiny_clip(sys.argv[2] + '/clip')")
    subprocess.run([python, "-c", code, str(REPO), str(root)], check=True, timeout=300)
    return python, root / "model", root / "clip"


@pytest.fixture
def real_backend(scene, tiny_model):
    from blender_mdm_addon import controller
    python, model, clip = tiny_model
    prefs = bpy.context.preferences.addons["blender_mdm_addon"].preferences
    prefs.python_exe, prefs.model_dir, prefs.text_encoder_dir, prefs.device = python, str(model), str(clip), 'cpu'
    controller.CONTROLLER.client_factory = controller.default_client_factory
    yield controller.CONTROLLER
    controller.CONTROLLER.stop_backend()
    prefs.python_exe, prefs.model_dir, prefs.text_encoder_dir, prefs.device = sys.executable, "", "", 'auto'


def test_backend_start_and_stop(real_backend):
    assert bpy.ops.mdm.backend_start() == {'FINISHED'}
    assert real_backend.backend_alive and real_backend.message == "Backend ready (model loaded)"
    pid = real_backend.client.pid
    assert bpy.ops.mdm.backend_stop() == {'FINISHED'} and not real_backend.backend_alive
    with pytest.raises(ProcessLookupError):
        import os
        os.kill(pid, 0)


def test_generate_with_the_real_backend(real_backend, scene):
    scene.render.fps = 24
    assert bpy.ops.mdm.generate(prompt="a person walks forward", seconds=1.5, seed=4, num_samples=2) == {'FINISHED'}
    rig = bpy.context.active_object
    actions = sorted((a for a in bpy.data.actions), key=lambda a: a["mdm_sample"])
    assert len(actions) == 2 and rig.animation_data.action == actions[0]
    assert actions[0]["mdm_prompt"] == "a person walks forward" and actions[0]["mdm_seed"] == 4
    result = real_backend.result_path
    ref = reference_joints(result, 0, 24)
    errors = [abs(evaluated_joints(rig, 1 + i) - ref[i]).max() for i in range(len(ref))]
    assert max(errors) < 0.01, f"worst joint error {max(errors) * 100:.2f} cm"


def test_headless_script_generates(tiny_model, tmp_path):
    python, model, clip = tiny_model
    proc = subprocess.run([sys.executable, str(REPO / "blender_mdm_addon" / "headless.py"), "--", "--prompt",
                           "a person jumps", "--seconds", "1", "--python", python, "--model-dir", str(model),
                           "--text-encoder-dir", str(clip), "--device", "cpu", "--save", str(tmp_path / "j.blend")],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MDM_RESULT" in proc.stdout and (tmp_path / "j.blend").is_file()


@pytest.mark.parametrize("output", ["VERTEX", "ARMATURE_MESH"])
def test_mesh_outputs_with_the_real_backend(real_backend, scene, tmp_path, output):
    """The backend fits on the user's (here: synthetic) SMPL file and, for vertex animation, sends
    its LBS vertices; the mesh in Blender shows exactly those vertices."""
    import numpy as np
    from addon_helpers import tpose_rest_joints, write_synthetic_smpl
    write_synthetic_smpl(tmp_path / "smpl" / "SMPL_NEUTRAL.npz", tpose_rest_joints())
    bpy.context.preferences.addons["blender_mdm_addon"].preferences.smpl_dir = str(tmp_path / "smpl")
    try:
        scene.render.fps = 20
        assert bpy.ops.mdm.generate(prompt="a person waves", seconds=1.0, seed=2, output=output) == {'FINISHED'}
    finally:
        bpy.context.preferences.addons["blender_mdm_addon"].preferences.smpl_dir = ""
    data = np.load(real_backend.result_path)
    body = next(o for o in scene.objects if o.type == 'MESH')
    if output == "VERTEX":
        assert "vertices" in data.files and not any(o.type == 'ARMATURE' for o in scene.objects)
        expected = data["vertices"][0]
    else:
        from addon_helpers import lbs
        v = np.load(tmp_path / "smpl" / "SMPL_NEUTRAL.npz")
        expected = lbs(v["v_template"], v["weights"], data["poses"][0].astype(float), data["trans"][0].astype(float),
                       data["rest_joints"].astype(float))
    z_up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    for frame in (1, 10, 20):
        scene.frame_set(frame)
        ev = body.evaluated_get(bpy.context.evaluated_depsgraph_get())
        co = np.array([ev.matrix_world @ vert.co for vert in ev.data.vertices])
        assert np.abs(co - expected[frame - 1] @ z_up.T).max() < 2e-3, f"frame {frame}"
