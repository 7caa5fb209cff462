"""The job state machine between the UI and the backend client (plain Python, no bpy).

One warm backend client per Blender session and at most one job at a time. The modal operator (or
a ``bpy.app.timers`` poller) calls ``tick()``; tests drive it the same way with a fake client.
The client itself notices a dead or hung server and a cancel the server ignores (it kills it after
a grace period): all of those arrive here as ``error`` events.

    idle --start--> loading --progress(diffusion)--> running --result--> done
                       \\________________\\______error / backend died--> error
                        \\________________\\_____cancel (acknowledged)--> cancelled
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from . import backend_link, setup_check

IDLE, LOADING, RUNNING, DONE, ERROR, CANCELLED = "idle", "loading", "running", "done", "error", "cancelled"
BUSY_STATES = (LOADING, RUNNING)
LOG_PATH = Path(tempfile.gettempdir()) / "blender_mdm_backend.log"


def default_client_factory(python_exe: str, backend_root: str, log_path: str):
    """The real client; it runs ``python -m backend.serve`` with PYTHONPATH = backend_root."""
    client_mod = backend_link.load("service.client")
    return client_mod.BackendClient(python_exe, backend_root, log_path=log_path)


class Controller:
    def __init__(self, client_factory=default_client_factory):
        self.client_factory = client_factory
        self.client = None
        self._client_python = None
        self.reset()

    def reset(self) -> None:
        self.state, self.op, self.job = IDLE, None, None
        self.phase, self.step, self.total = "", 0, 0
        self.message, self.result_path, self.info = "", None, {}
        self.cancel_requested = False

    # ---- queries for the UI ------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state in BUSY_STATES

    @property
    def backend_alive(self) -> bool:
        return self.client is not None and bool(self.client.alive)

    @property
    def fraction(self) -> float:
        return self.step / self.total if self.total else 0.0

    @property
    def label(self) -> str:
        if self.state == LOADING:
            return {"load": "Loading model…", "encode": "Encoding text…"}.get(self.phase, "Starting backend…")
        if self.state == RUNNING:
            name = {"diffusion": "Diffusion step", "fit": "Fitting SMPL"}.get(self.phase, self.phase.title())
            return f"{name} {self.step}/{self.total}" if self.total else f"{name}…"
        return self.message

    # ---- actions -------------------------------------------------------------------------------
    def ensure_client(self, settings: setup_check.Settings):
        python = str(setup_check.resolve_python(settings))
        if self.client is not None and self._client_python != python:
            self.stop_backend()
        if self.client is None:
            self.client = self.client_factory(python, str(backend_link.backend_root().parent), str(LOG_PATH))
            self._client_python = python
        return self.client

    def start(self, op: str, params: dict, settings: setup_check.Settings) -> None:
        """Submit ``op`` without waiting (raises SetupError/Busy before anything starts)."""
        if self.busy:
            raise backend_link.load("errors").Busy("a generation is already running: wait for it or press Cancel")
        setup_check.require_ready(settings, need_smpl=bool(params.get("vertices")))
        client = self.ensure_client(settings)
        self.reset()
        self.op, self.state = op, LOADING
        self.job = client.submit(op, params)

    def tick(self) -> str:
        """Consume the client's events; returns the new state."""
        if not self.busy:
            return self.state
        for event in self.client.poll():
            if event.get("job") not in (None, self.job):
                continue
            kind = event.get("event")
            if kind == "progress":
                self.phase, self.step, self.total = event.get("phase", ""), event.get("step", 0), event.get("total", 0)
                self.state = RUNNING if self.phase in ("diffusion", "fit") else LOADING
            elif kind == "result":
                self._finish(event)
            elif kind == "error":
                self._fail(event.get("code", "error"), event.get("message", "unknown backend error"))
            if not self.busy:
                break
        return self.state

    def _finish(self, event: dict) -> None:
        self.state, self.result_path, self.info = DONE, event.get("result_path"), event.get("info") or {}
        self.message = "Backend ready (model loaded)" if self.op == "load_model" else "Done"

    def _fail(self, code: str, message: str) -> None:
        if code == "cancelled" or self.cancel_requested:
            self.state, self.message = CANCELLED, "Cancelled"
        else:
            self.state, self.message = ERROR, f"{message} (backend log: {LOG_PATH})" if code.startswith("backend_") else message

    def cancel(self) -> None:
        if self.busy and not self.cancel_requested:
            self.cancel_requested = True
            self.client.cancel(self.job)

    def run_blocking(self, op: str, params: dict, settings: setup_check.Settings, progress=None) -> dict:
        """The background-mode path: same checks, waits for the result (raises BackendError)."""
        if self.busy:
            raise backend_link.load("errors").Busy("a generation is already running: wait for it or cancel it")
        setup_check.require_ready(settings, need_smpl=bool(params.get("vertices")))
        client = self.ensure_client(settings)
        self.reset()
        self.op = op
        errors = backend_link.load("errors")
        try:
            result = client.request(op, params, progress=progress)
        except Exception as exc:
            code, message = getattr(exc, "code", None), getattr(exc, "message", None)
            if code is None or message is None:
                raise  # a bug, not a backend report: keep the traceback
            self._fail(code, message)
            raise errors.BackendError(self.message, code=code) from None
        self._finish(result)
        return result

    def stop_backend(self) -> None:
        if self.client is not None:
            self.client.stop()
        self.client, self._client_python = None, None
        if self.busy:
            self.state, self.message = ERROR, "the backend was stopped"


CONTROLLER = Controller()
