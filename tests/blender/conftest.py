"""Fixtures for tests inside real Blender (the ``bpy`` module): the add-on enabled through Blender's
add-on manager, a clean scene per test, and the scriptable fake backend client (addon_helpers)."""
from __future__ import annotations

import sys

import pytest

try:
    import bpy
except ImportError:  # each test module skips itself with the reason (see BPY_REASON)
    bpy = None

ADDON = "blender_mdm_addon"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/blender/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.blender)


@pytest.fixture(scope="session")
def addon():
    import addon_utils
    module = addon_utils.enable(ADDON, default_set=True, handle_error=None)
    assert module is not None, "the add-on failed to enable"
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.python_exe = sys.executable  # exists: setup checks pass; the fake client never runs it
    yield module
    addon_utils.disable(ADDON, default_set=True)


@pytest.fixture
def fake(scene):
    """The fake backend client the controller gets (restarted like a real one after stop())."""
    from addon_helpers import FakeClient
    from blender_mdm_addon import controller
    client = FakeClient()
    controller.CONTROLLER.client_factory = client.connect
    return client


@pytest.fixture
def scene(addon):
    """An empty scene at 24 fps, frame 1, object mode, an idle controller with a fake client."""
    from blender_mdm_addon import controller
    for collection in (bpy.data.objects, bpy.data.actions, bpy.data.armatures, bpy.data.meshes):
        for block in list(collection):
            collection.remove(block)
    sc = bpy.context.scene
    sc.render.fps, sc.render.fps_base = 24, 1.0
    sc.frame_set(1)
    ctl = controller.CONTROLLER
    ctl.stop_backend()
    ctl.reset()
    yield sc
    ctl.stop_backend()
    ctl.reset()
    ctl.client_factory = controller.default_client_factory
