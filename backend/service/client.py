"""Client for ``python -m backend.serve`` — standard library only, safe to import inside Blender.

The server runs in its own Python (the backend's venv, never Blender's). A reader thread turns its
stdout into a queue, so ``poll()`` never blocks the UI thread; ``request()`` is the blocking path for
``blender --background``. The client notices a server that died (exit code) or hangs (silent while a
job runs, and no answer to a ping), reports ``backend_died`` / ``backend_hung`` for the job in flight, and
starts a fresh server on the next request. This file must keep working when copied or loaded under
another package name: no imports from the backend package.

    client = BackendClient(python_exe, backend_root)
    job = client.submit("generate", {"prompt": "a person walks", "seconds": 4, "seed": 1})
    for event in client.poll(): ...          # from a timer; see backend/PROTOCOL.md for events
    client.cancel(job)
    result = client.request("generate", params, progress=print)   # blocking
    client.stop()
"""
from __future__ import annotations

import atexit
import collections
import itertools
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import weakref

PROTOCOL_VERSION = 1  # must equal backend.service.protocol.PROTOCOL_VERSION (a test checks)

log = logging.getLogger("blender_mdm.client")

_EOF = None  # queued by the stdout reader when the server's stdout closes


class BackendClientError(Exception):
    """A failed request: ``code`` is the protocol's machine code (or one of the client's own:
    backend_start_failed, backend_died, backend_hung, protocol_mismatch, timeout)."""

    def __init__(self, code: str, message: str, job=None):
        super().__init__(message)
        self.code, self.message, self.job = code, message, job


def _error(job, code: str, message: str) -> dict:
    return {"event": "error", "job": job, "code": code, "message": message}


class _Job:
    def __init__(self, op: str):
        self.op = op
        self.cancel_deadline: float | None = None
        self.abandoned = False  # a blocking request gave up on it: its events are swallowed


class BackendClient:
    """One warm server per client; see the module docstring. Thread-safe; all public methods except
    ``request`` return immediately."""

    def __init__(self, python_exe: str, backend_root: str, log_path: str | None = None,
                 env: dict | None = None, server_args: tuple[str, ...] = (),
                 start_timeout: float = 60.0, hang_timeout: float = 30.0, ping_interval: float = 5.0,
                 cancel_grace: float = 20.0):
        self.python_exe, self.backend_root = str(python_exe), os.path.abspath(str(backend_root))
        self.log_path, self.env, self.server_args = log_path, dict(env or {}), tuple(server_args)
        self.start_timeout, self.hang_timeout = start_timeout, hang_timeout
        self.ping_interval, self.cancel_grace = ping_interval, cancel_grace
        self.server_info: dict | None = None    # the server's "ready" event
        self.restarts = 0                        # servers started by this client
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._generation = 0                     # events from an older server are ignored
        self._events: queue.Queue = queue.Queue()
        self._pending: list[dict] = []           # events waiting for the next poll()
        self._jobs: dict[object, _Job] = {}      # submitted, no result/error yet
        self._internal: set = set()              # our own pings/cancels: answers are swallowed
        self._ids = itertools.count(1)
        self._started_at = self._last_heard = 0.0
        self._ping_sent: float | None = None     # an unanswered ping, sent at this time
        self._readers: list[threading.Thread] = []
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._stale_dirs: list[str] = []
        _live_clients.add(self)

    # -- public API -------------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def submit(self, op: str, params: dict | None = None):
        """Send a request; returns its job id at once. Starts (or restarts) the server if needed.
        Everything that happens to the job, including failure to start, arrives through poll()."""
        with self._lock:
            job = next(self._ids)
            try:
                self._ensure_started()
            except BackendClientError as exc:
                self._pending.append(_error(job, exc.code, exc.message))
                return job
            self._jobs[job] = _Job(op)
            self._send({"id": job, "op": op, "params": params or {}})
            return job

    def poll(self) -> list[dict]:
        """Events that arrived since the last call (never blocks): progress / result / error dicts."""
        return self._collect(0.0)

    def cancel(self, job=None) -> None:
        """Ask the server to stop ``job`` (None: whatever runs) between two diffusion steps. If it has
        not stopped after ``cancel_grace`` seconds the server is killed and the job reported cancelled."""
        with self._lock:
            targets = [j for j in self._jobs if job is None or j == job]
            if not targets or not self.alive:
                return
            deadline = time.monotonic() + self.cancel_grace
            for j in targets:
                self._jobs[j].cancel_deadline = deadline
            self._send_internal("cancel", {"job": job})

    def request(self, op: str, params: dict | None = None, progress=None, timeout: float | None = None) -> dict:
        """Blocking: the ``result`` event of the request, or BackendClientError. ``progress(event)``
        is called for each progress event. On timeout (or any exception, e.g. Ctrl+C or one raised
        by ``progress``) the job is cancelled and waited for, so the server is idle again on return."""
        job = self.submit(op, params)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                for event in self._job_events(job, 0.1):
                    if event["event"] == "progress":
                        if progress is not None:
                            progress(event)
                    elif event["event"] == "result":
                        return event
                    else:
                        raise BackendClientError(event.get("code", "error"), event.get("message", ""), job)
                if deadline is not None and time.monotonic() > deadline:
                    raise BackendClientError("timeout", f"'{op}' took longer than {timeout:.0f} s; it was cancelled", job)
        except BaseException:
            if job in self._jobs:
                self.cancel(job)
                self._forget(job)
                end = time.monotonic() + self.cancel_grace + 10.0
                while job in self._jobs and time.monotonic() < end:  # ends by itself or by the grace kill
                    self._job_events(job, 0.1)
            raise

    def _job_events(self, job, wait: float) -> list[dict]:
        """Collect events; those of ``job`` are returned, the others kept for the next poll()."""
        mine, others = [], []
        for event in self._collect(wait, always_wait=True):  # others' events must not make us spin
            (mine if event.get("job") == job else others).append(event)
        if others:
            with self._lock:
                self._pending[:0] = others
        return mine

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the server down (cancelling a running job) and reap it; jobs still in flight get an
        error event. Safe to call repeatedly; a later submit() starts a new server."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return
            if proc.poll() is None:
                self._send_internal("shutdown", {})
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            self._reap(proc, timeout)
            self._handle_exit(self._pending, stopped=True)

    def close(self) -> None:
        self.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def log_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    # -- process management -----------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._handle_exit(self._pending)  # a death nobody polled for yet: report it first
        if self._proc is None:
            self._start()

    def _command(self) -> list[str]:
        return [self.python_exe, "-m", "backend.serve", *self.server_args]

    def _start(self) -> None:
        for path in self._stale_dirs:  # result folders of servers that died without cleaning up
            shutil.rmtree(path, ignore_errors=True)
        self._stale_dirs.clear()
        if not os.path.isfile(os.path.join(self.backend_root, "backend", "serve.py")):
            raise BackendClientError("backend_start_failed", f"no backend found in {self.backend_root!r} "
                                     "(expected backend/serve.py there)")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update({"PYTHONPATH": self.backend_root, "PYTHONIOENCODING": "utf-8"})
        env.update(self.env)
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # Ctrl+C in Blender's terminal doesn't kill the server
        else:
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            proc = subprocess.Popen(self._command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=self.backend_root, env=env, close_fds=True, **kwargs)
        except OSError as exc:
            raise BackendClientError("backend_start_failed", f"cannot run the backend Python {self.python_exe!r}: "
                                     f"{exc.strerror or exc}; set it in the add-on preferences") from None
        self._proc, self.server_info = proc, None
        self._generation += 1
        self.restarts += 1
        self._stderr_tail.clear()
        self._started_at = self._last_heard = time.monotonic()
        self._ping_sent = None
        self._readers = [
            threading.Thread(target=self._read_events, args=(proc.stdout, self._generation), daemon=True,
                             name="mdm-backend-events"),
            threading.Thread(target=self._read_log, args=(proc.stderr,), daemon=True, name="mdm-backend-log")]
        for thread in self._readers:
            thread.start()
        log.info("started backend pid %d: %s", proc.pid, " ".join(self._command()))

    def _read_events(self, stream, generation: int) -> None:
        for line in iter(stream.readline, b""):
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict):
                self._events.put((generation, event))
            else:
                log.warning("ignoring a non-protocol line from the backend: %r", line[:200])
        self._events.put((generation, _EOF))

    def _read_log(self, stream) -> None:
        sink = None
        if self.log_path:
            try:
                sink = open(self.log_path, "a", encoding="utf-8")
            except OSError as exc:
                log.warning("cannot write the backend log %s: %s", self.log_path, exc)
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip()
                self._stderr_tail.append(line)
                if sink is not None:
                    sink.write(line + "\n")
                    sink.flush()
        finally:
            if sink is not None:
                sink.close()

    def _send(self, message: dict) -> None:
        try:
            self._proc.stdin.write(json.dumps(message).encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except (OSError, ValueError):  # broken pipe / closed: the exit is reported by poll()
            pass

    def _send_internal(self, op: str, params: dict) -> None:
        rid = f"{op}-{next(self._ids)}"
        self._internal.add(rid)
        self._send({"id": rid, "op": op, "params": params})

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            self._reap(proc, 5.0)

    @staticmethod
    def _reap(proc: subprocess.Popen, timeout: float) -> None:
        """Wait for the process to end (terminate, then kill, if it won't), so no zombie is left."""
        for action in (None, proc.terminate, proc.kill):
            if action is not None:
                try:
                    action()
                except OSError:
                    pass
            try:
                proc.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue
        proc.wait()

    # -- event handling -------------------------------------------------------------------------------
    def _collect(self, wait: float, always_wait: bool = False) -> list[dict]:
        """Pending events plus whatever the reader queued (waiting up to ``wait`` s for a new one if
        nothing is pending, or anyway with ``always_wait``), after the health checks."""
        try:
            waiting = wait > 0 and (always_wait or not self._pending)
            first = [self._events.get(timeout=wait)] if waiting else []
        except queue.Empty:
            first = []
        with self._lock:
            out, self._pending = self._pending, []
            items = first
            while True:
                try:
                    items.append(self._events.get_nowait())
                except queue.Empty:
                    break
            for generation, event in items:
                if generation != self._generation:
                    continue
                if event is _EOF:
                    self._handle_exit(out)
                else:
                    self._dispatch(event, out)
            self._check_health(out)
            return out

    def _forget(self, job) -> None:
        with self._lock:
            if job in self._jobs:  # kept until it ends (cancel escalation still applies), but silent
                self._jobs[job].abandoned = True

    def _dispatch(self, event: dict, out: list[dict]) -> None:
        self._last_heard = time.monotonic()
        self._ping_sent = None  # any line proves the server's reading thread is alive
        kind, job = event.get("event"), event.get("job")
        if kind == "ready":
            self.server_info = event
            if event.get("protocol") != PROTOCOL_VERSION:
                self._kill_and_fail(out, "protocol_mismatch", f"the backend speaks protocol {event.get('protocol')}, "
                                    f"this add-on needs {PROTOCOL_VERSION}: install matching add-on and backend versions")
            return
        terminal = kind in ("result", "error")
        if job in self._internal:
            if terminal:
                self._internal.discard(job)
                if kind == "error" and event.get("code") != "cancelled":
                    log.warning("backend refused an internal request: %s", event)
            return
        if job not in self._jobs:
            log.debug("backend event for no pending job: %s", event)
            return
        state = self._jobs.pop(job) if terminal else self._jobs[job]
        if not state.abandoned:
            out.append(event)

    def _fail_all(self, out: list[dict], code: str, message: str) -> None:
        for job, state in self._jobs.items():
            if not state.abandoned:
                out.append(_error(job, code, message.replace("{op}", state.op)))
        self._jobs.clear()
        self._internal.clear()

    def _handle_exit(self, out: list[dict], stopped: bool = False) -> None:
        """The server's stdout closed: reap it, deliver what it still sent, fail the jobs in flight."""
        proc = self._proc
        if proc is None:
            return
        self._reap(proc, 5.0)
        for thread in self._readers:
            thread.join(2.0)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        while True:  # lines it wrote before dying
            try:
                generation, event = self._events.get_nowait()
            except queue.Empty:
                break
            if generation == self._generation and event is not _EOF:
                self._dispatch(event, out)
        if self.server_info and self.server_info.get("result_dir"):
            self._stale_dirs.append(self.server_info["result_dir"])
        self._generation += 1
        self._proc = None
        code = proc.returncode
        if stopped:
            self._fail_all(out, "cancelled", "cancelled: the backend was stopped")
        elif self.server_info is None:
            self._fail_all(out, "backend_start_failed", f"the backend exited during start-up (exit code {code}); "
                           f"check the backend Python and its packages. Its last output:\n{self.log_tail()}")
        else:
            self._fail_all(out, "backend_died", f"the backend process exited (exit code {code}) while running "
                           "'{op}'; it will be restarted on the next request. Its last output:\n" + self.log_tail())
        log.info("backend pid %d exited with code %s", proc.pid, code)

    def _check_health(self, out: list[dict]) -> None:
        if self._proc is None or not self._jobs:
            return
        now = time.monotonic()
        if self._proc.poll() is not None:
            return  # the reader delivers the end of its output and then _EOF
        expired = [j for j, s in self._jobs.items() if s.cancel_deadline is not None and now > s.cancel_deadline]
        if expired:
            self._kill_and_fail(out, "cancelled", f"cancelled: the backend did not stop within {self.cancel_grace:.0f} s, "
                                "so it was killed; the next request starts a fresh one")
        elif self.server_info is None and now - self._started_at > self.start_timeout:
            self._kill_and_fail(out, "backend_start_failed", f"the backend did not start within {self.start_timeout:.0f} s. "
                                f"Its last output:\n{self.log_tail()}")
        elif self._ping_sent is not None and now - self._ping_sent > self.hang_timeout:
            self._kill_and_fail(out, "backend_hung", f"the backend did not answer a ping for {self.hang_timeout:.0f} s "
                                "while running '{op}'; it was killed and will be restarted on the next request")
        elif self.server_info is not None and self._ping_sent is None and now - self._last_heard > self.ping_interval:
            self._ping_sent = now  # silent for a while (loading?): ask the reading thread, it answers at once
            self._send_internal("ping", {})

    def _kill_and_fail(self, out: list[dict], code: str, message: str) -> None:
        self._fail_all(out, code, message)
        self._kill()
        self._handle_exit(out)


# Servers must not outlive Blender: stop every client's server when the interpreter exits.
_live_clients: "weakref.WeakSet[BackendClient]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for client in list(_live_clients):
        try:
            client.stop(timeout=2.0)
        except Exception:  # interpreter shutdown: best effort
            pass
