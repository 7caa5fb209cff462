"""Preferences › Set up backend, in real Blender (background mode runs it synchronously), offline:
the venv is really created, pip is replaced by a scripted runner."""
import subprocess
import sys
from pathlib import Path

import bpy
import pytest

from addon_helpers import RecordingLayout

ADDON = "blender_mdm_addon"


@pytest.fixture
def setup_env(addon, tmp_path, monkeypatch):
    from blender_mdm_addon import backend_setup, setup_check, setup_operator
    monkeypatch.setattr(setup_check, "runtime_dir", lambda: tmp_path / "runtime")
    monkeypatch.setattr(backend_setup, "detect_nvidia_gpu", lambda *a, **k: False)
    monkeypatch.setattr(setup_operator, "online_access_allowed", lambda: True)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    before = prefs.python_exe
    setup_operator.STATE.update(running=False, step="", fraction=0.0, error="", done="")
    calls = []

    def use_runner(pip_fails: bool):
        real = backend_setup.run_setup

        def runner(argv, **kw):
            calls.append(argv)
            if argv[1:3] == ["-m", "venv"]:
                return subprocess.run(argv + ["--without-pip"], **kw)
            if pip_fails and "pip" in argv:
                return subprocess.CompletedProcess(argv, 1, "", "ERROR: No matching distribution found for torch==2.13.0")
            return subprocess.CompletedProcess(argv, 0, "", "")
        monkeypatch.setattr(backend_setup, "run_setup", lambda plan, progress=None: real(plan, progress, runner=runner))
    yield prefs, use_runner, calls, tmp_path
    prefs.python_exe = before
    setup_operator.STATE.update(running=False, error="", done="")




def test_setup_creates_the_venv_in_the_user_folder_and_sets_the_preference(setup_env):
    prefs, use_runner, calls, tmp = setup_env
    use_runner(pip_fails=False)
    assert bpy.ops.mdm.setup_backend() == {'FINISHED'}
    py = tmp / "runtime" / "bin" / "python"
    assert py.exists() and Path(prefs.python_exe) == py
    pip = [c for c in calls if "-r" in c][0]
    assert pip[0] == str(py) and pip[pip.index("-r") + 1].endswith("backend/requirements.txt")
    assert "https://download.pytorch.org/whl/cpu" in pip          # no NVIDIA GPU: CPU torch
    assert not str(py).startswith(str(Path(__file__).resolve().parents[2] / "blender_mdm_addon"))


def test_pip_failure_is_reported_and_changes_no_preference(setup_env):
    prefs, use_runner, calls, tmp = setup_env
    use_runner(pip_fails=True)
    before = prefs.python_exe
    with pytest.raises(RuntimeError, match="failed.*exit code 1"):
        bpy.ops.mdm.setup_backend()
    assert prefs.python_exe == before
    from blender_mdm_addon import setup_operator
    assert "No matching distribution" in setup_operator.STATE["error"]


def test_rerun_repairs_a_broken_environment(setup_env):
    prefs, use_runner, calls, tmp = setup_env
    use_runner(pip_fails=False)
    assert bpy.ops.mdm.setup_backend() == {'FINISHED'}
    (tmp / "runtime" / "bin" / "python").unlink()           # break it
    calls.clear()
    assert bpy.ops.mdm.setup_backend() == {'FINISHED'}
    assert "--clear" in calls[0]


def test_offline_mode_downloads_nothing(setup_env, monkeypatch):
    prefs, use_runner, calls, tmp = setup_env
    from blender_mdm_addon import setup_operator
    use_runner(pip_fails=False)
    monkeypatch.setattr(setup_operator, "online_access_allowed", lambda: False)
    with pytest.raises(RuntimeError, match="offline mode"):
        bpy.ops.mdm.setup_backend()
    assert calls == [] and not (tmp / "runtime").exists()


def test_preferences_draw_the_setup_box(setup_env):
    prefs, *_ = setup_env
    from blender_mdm_addon import setup_operator
    log = []
    setup_operator.draw_setup(RecordingLayout(log), prefs)
    assert ("operator", "mdm.setup_backend") in log and ("prop", "setup_use_existing") in log
    setup_operator.STATE.update(error="Installing failed (exit code 1):\nno network")
    log = []
    setup_operator.draw_setup(RecordingLayout(log), prefs)
    assert ("label", "no network", 'ERROR') in log
