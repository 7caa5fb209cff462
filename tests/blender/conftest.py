"""Fixtures for tests inside real Blender (the ``bpy`` module): the add-on enabled through Blender's
add-on manager, a clean scene per test, and a scriptable fake backend client."""
from __future__ import annotations

import sys

import pytest

bpy = pytest.importorskip("bpy", reason="needs the bpy module (pip install bpy==5.0.1)")

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


class FakeClientError(Exception):
    """Like the real client's BackendClientError: ``code`` + ``message``."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class FakeClient:
    """Speaks the client contract of docs/DESIGN.md. ``plan`` is the list of events one job emits
    (one per poll); ``result_path`` fills the result event."""

    def __init__(self):
        self.alive, self.submitted, self.cancelled, self.stopped, self.starts = False, [], [], False, 0
        self.result_path, self.error, self.steps, self._queue = None, None, 5, []

    def connect(self, python_exe, backend_root, log_path=None):
        self.python_exe, self.backend_root = python_exe, backend_root
        self.alive, self.starts = True, self.starts + 1
        return self

    def _plan(self, job):
        events = [{"event": "progress", "job": job, "phase": "load", "step": 0, "total": 0}]
        events += [{"event": "progress", "job": job, "phase": "diffusion", "step": i, "total": self.steps}
                   for i in range(1, self.steps + 1)]
        if self.error:
            events.append({"event": "error", "job": job, **self.error})
        else:
            events.append({"event": "result", "job": job, "result_path": self.result_path, "info": {}})
        return events

    def submit(self, op, params):
        job = f"job{len(self.submitted) + 1}"
        if not self.alive:  # like the real client: submit restarts a dead server
            self.alive, self.starts = True, self.starts + 1
        self.submitted.append((op, params))
        self._queue = self._plan(job)
        return job

    def die(self):
        """The server crashed: like the real client, report backend_died for the job in flight."""
        self.alive = False
        job = self._queue[0]["job"] if self._queue else None
        self._queue = [{"event": "error", "job": job, "code": "backend_died",
                        "message": "the backend process exited (exit code -9) while running 'generate'"}]

    def poll(self):
        return [self._queue.pop(0)] if self._queue else []

    def cancel(self, job):
        self.cancelled.append(job)
        self._queue = [{"event": "error", "job": job, "code": "cancelled", "message": "cancelled by the user"}]

    def request(self, op, params, progress=None, timeout=None):
        job = self.submit(op, params)
        while self._queue:
            event = self._queue.pop(0)
            if event["event"] == "progress" and progress:
                progress(event)
            elif event["event"] == "result":
                return event
            elif event["event"] == "error":
                raise FakeClientError(event["code"], event["message"])
        raise AssertionError(f"fake job {job} ended without a result")

    def stop(self):
        self.stopped, self.alive = True, False
