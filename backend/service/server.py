"""The service loop: read requests on one thread, run jobs one at a time on a worker thread.

The reading thread answers control ops (hello, ping, cancel, shutdown) and every malformed request at once,
even while a job runs; a job op that arrives while another job runs is refused with ``busy`` (no
queue: the client always knows what the server is doing). Jobs report progress, can be cancelled
between diffusion steps, and any exception inside one becomes an ``error`` event. Results travel as
.npz files in a temp folder this server owns (backend/PROTOCOL.md says when they are deleted).
"""
from __future__ import annotations

import collections
import gc
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, BinaryIO, Callable

from .. import __version__
from ..errors import BackendError, Busy, Cancelled, RequestError
from . import protocol
from .protocol import Request

log = logging.getLogger("backend.service")

# A handler runs one job op: handler(params, job) -> (arrays to write as the result .npz or None, info).
Handler = Callable[[dict, "Job"], "tuple[dict | None, dict]"]


class Job:
    """One running request; handlers use it to report progress and to check for cancellation."""

    def __init__(self, request: Request, server: "Server"):
        self.id, self.op, self.params = request.job, request.op, request.params
        self.cache = server.cache
        self.started = time.perf_counter()
        self._server = server
        self._cancel = threading.Event()
        self.cancel_reason = "cancelled by the user"
        self.step = self.total = 0       # last diffusion step reported
        self.step_at_cancel: int | None = None

    def progress(self, phase: str, step: int, total: int) -> None:
        if phase == "diffusion":
            self.step, self.total = int(step), int(total)
        self._server.emit(protocol.progress_event(self.id, phase, int(step), int(total)))

    def cancel(self, reason: str = "cancelled by the user") -> None:
        self.cancel_reason = reason
        if self.step_at_cancel is None:
            self.step_at_cancel = self.step
        self._cancel.set()

    def cancelled(self) -> bool:
        """The pipeline's ``cancel`` callback: True once a cancel request arrived."""
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled(self.cancel_reason)


class ModelCache:
    """Loaded generators keyed by (model dir, device, text-encoder dir), least recently used evicted.

    ``loader(model_dir, device, text_encoder_dir)`` builds one; ``device`` is already resolved
    (never "auto") so that "auto" and the device it means share one entry."""

    def __init__(self, loader: Callable[[str | None, str, str | None], Any], max_models: int = 2):
        self._loader = loader
        self._max = max(1, max_models)
        self._entries: collections.OrderedDict[tuple, dict] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, model_dir: str | None, device: str, text_encoder_dir: str | None) -> tuple[Any, bool]:
        """(generator, was_already_loaded)."""
        key = (model_dir, device, text_encoder_dir)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry["uses"] += 1
                return entry["model"], True
        t0 = time.perf_counter()
        model = self._loader(model_dir, device, text_encoder_dir)
        entry = {"model": model, "uses": 1, "load_seconds": round(time.perf_counter() - t0, 3)}
        with self._lock:
            self.loads += 1
            self._entries[key] = entry
            while len(self._entries) > self._max:
                _, old = self._entries.popitem(last=False)
                log.info("model cache full: unloading %s", getattr(old["model"], "model_id", "?"))
                old.clear()
        if len(self._entries) >= self._max:
            _release_memory()
        return model, False

    def info(self) -> list[dict]:
        with self._lock:
            return [{"model_dir": k[0], "device": k[1], "text_encoder_dir": k[2],
                     "model_id": getattr(e["model"], "model_id", None), "uses": e["uses"],
                     "load_seconds": e["load_seconds"]} for k, e in self._entries.items()]


def _release_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def resident_memory_mb() -> float | None:
    """Current resident set size of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        try:
            import resource
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
        except (ImportError, OSError):
            return None


def read_lines(stream: BinaryIO, limit: int):
    """Yield (line without its newline, None) per line, or (None, size) for a line over ``limit``
    bytes, which is skipped without holding more than 64 KiB of it in memory."""
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1].rstrip(b"\r"), None
        elif len(line) <= limit:  # last line without newline
            yield line.rstrip(b"\r"), None
        else:
            size = len(line)
            while True:
                chunk = stream.readline(65536)
                size += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield None, size


class Server:
    def __init__(self, in_stream: BinaryIO, out_fd: int, handlers: dict[str, Handler],
                 loader: Callable | None = None, max_models: int = 2, keep_results: int = 8):
        self.in_stream, self.out_fd = in_stream, out_fd
        self.handlers = handlers
        self.cache = ModelCache(loader or _no_loader, max_models)
        self.result_dir = tempfile.mkdtemp(prefix="blender-mdm-results-")
        self.keep_results = max(1, keep_results)
        self.results: collections.deque[str] = collections.deque()
        self.result_count = 0
        self.jobs_done = 0
        self.current: Job | None = None
        self.stopping = False
        self._lock = threading.Lock()        # guards current / stopping
        self._out_lock = threading.Lock()    # one event line at a time on the protocol stream
        self._queue: collections.deque[Job | None] = collections.deque()
        self._wake = threading.Semaphore(0)
        self._worker = threading.Thread(target=self._work, name="service-worker", daemon=True)
        self.warm_up: Callable[[], None] | None = None

    # -- output ---------------------------------------------------------------------------------
    def emit(self, event: dict) -> None:
        data = protocol.encode_event(event)
        with self._out_lock:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.out_fd, view):]
            except OSError as exc:  # the client closed our stdout: nobody is listening any more
                log.warning("protocol stream closed (%s); exiting", exc)
                self.close()
                os._exit(0)

    # -- main loop --------------------------------------------------------------------------------
    def serve(self) -> None:
        """Run until shutdown or end of input (the client went away), then clean up."""
        self._worker.start()
        self.emit(protocol.ready_event(version=__version__, pid=os.getpid(), result_dir=self.result_dir,
                                       python=sys.version.split()[0]))
        try:
            for line, oversize in read_lines(self.in_stream, protocol.MAX_MESSAGE_BYTES):
                if line is None:
                    self.emit(protocol.error_event(None, RequestError.code,
                                                   f"message of {oversize} bytes exceeds the "
                                                   f"{protocol.MAX_MESSAGE_BYTES}-byte limit"))
                else:
                    self.handle_line(line)
                if self.stopping:
                    break
            else:
                log.info("end of input: the client went away; shutting down")
        finally:
            self.stop_worker(timeout=10.0)
            self.close()

    def handle_line(self, line: bytes) -> None:
        try:
            request = protocol.parse_request(line)
        except BackendError as exc:
            self.emit(protocol.error_event(getattr(exc, "job", None), exc.code, exc.message))
            return
        except Exception as exc:  # a parser bug must not end the loop either
            log.exception("could not parse a request")
            self.emit(protocol.error_event(None, "internal_error", f"{type(exc).__name__}: {exc}"))
            return
        try:
            if request.op == "hello":
                self.emit(protocol.result_event(request.job, None, self.capabilities(request.params)))
            elif request.op == "ping":
                current = self.current
                self.emit(protocol.result_event(request.job, None, {"busy": None if current is None else current.id}))
            elif request.op == "cancel":
                self.emit(protocol.result_event(request.job, None, self.cancel(request.params["job"])))
            elif request.op == "shutdown":
                self.request_stop()
                self.emit(protocol.result_event(request.job, None, {"stopping": True}))
            else:
                self.start_job(request)
        except BackendError as exc:
            self.emit(protocol.error_event(request.job, exc.code, exc.message))
        except Exception as exc:
            log.exception("control request %s failed", request.op)
            self.emit(protocol.error_event(request.job, "internal_error", f"{type(exc).__name__}: {exc}"))

    # -- control ops --------------------------------------------------------------------------------
    def capabilities(self, params: dict) -> dict:
        current = self.current
        client_protocol = params.get("protocol")
        return {
            "protocol": protocol.PROTOCOL_VERSION, "protocol_ok": client_protocol in (None, protocol.PROTOCOL_VERSION),
            "version": __version__, "pid": os.getpid(), "python": sys.version.split()[0],
            "ops": list(protocol.OPS), "devices": available_devices(),
            "busy": None if current is None else {"job": current.id, "op": current.op},
            "loaded_models": self.cache.info(), "model_loads": self.cache.loads,
            "jobs_done": self.jobs_done, "result_dir": self.result_dir, "keep_results": self.keep_results,
            "rss_mb": _round(resident_memory_mb()),
            "limits": {"max_message_bytes": protocol.MAX_MESSAGE_BYTES, "max_seconds": protocol.MAX_SECONDS,
                       "max_samples": protocol.MAX_SAMPLES, "max_steps": protocol.MAX_STEPS,
                       "max_prompt_chars": protocol.MAX_PROMPT_CHARS},
        }

    def cancel(self, target) -> dict:
        with self._lock:
            job = self.current
            if job is None or (target is not None and job.id != target):
                return {"cancelled": None, "message": "no such job is running"}
            job.cancel()
        log.info("cancel requested for job %r", job.id)
        return {"cancelled": job.id}

    def request_stop(self) -> None:
        with self._lock:
            self.stopping = True
            if self.current is not None:
                self.current.cancel("cancelled: the backend is shutting down")

    # -- jobs ---------------------------------------------------------------------------------------
    def start_job(self, request: Request) -> None:
        with self._lock:
            if self.current is not None:
                raise Busy(f"job {self.current.id!r} ({self.current.op}) is still running; "
                           "wait for its result or cancel it first")
            if self.stopping:
                raise Busy("the backend is shutting down")
            self.current = job = Job(request, self)
        self._queue.append(job)
        self._wake.release()

    def _work(self) -> None:
        if self.warm_up is not None:
            try:
                self.warm_up()
            except Exception:
                log.exception("warm-up failed (jobs will report the problem)")
        while True:
            self._wake.acquire()
            job = self._queue.popleft()
            if job is None:
                return
            event = self._run(job)
            with self._lock:
                self.current = None
                self.jobs_done += 1
            self.emit(event)  # after clearing `current`: a client may send the next job right away
            del job, event

    def _run(self, job: Job) -> dict:
        try:
            job.check_cancel()
            arrays, info = self.handlers[job.op](job.params, job)
            path = None
            if arrays is not None:
                job.check_cancel()
                t0 = time.perf_counter()
                path = self.write_result(arrays)
                info.setdefault("timings", {})["write"] = round(time.perf_counter() - t0, 4)
            info["seconds"] = round(time.perf_counter() - job.started, 4)
            return protocol.result_event(job.id, path, info)
        except Cancelled:  # raised by the pipeline or by us; say why it was cancelled
            log.info("job %r (%s) cancelled at diffusion step %d/%d", job.id, job.op, job.step, job.total)
            event = protocol.error_event(job.id, Cancelled.code, job.cancel_reason)
            event.update(step=job.step, total=job.total,
                         steps_after_cancel=job.step - (job.step_at_cancel if job.step_at_cancel is not None else job.step))
            return event
        except BackendError as exc:
            log.info("job %r (%s) failed: %s: %s", job.id, job.op, exc.code, exc.message)
            return protocol.error_event(job.id, exc.code, exc.message)
        except MemoryError:
            log.exception("job %r ran out of memory", job.id)
            _release_memory()
            return protocol.error_event(job.id, "out_of_memory", "out of memory: use fewer samples or "
                                        "frames, or a device with more memory")
        except Exception as exc:
            log.error("job %r (%s) crashed:\n%s", job.id, job.op, traceback.format_exc())
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
                _release_memory()
                return protocol.error_event(job.id, "out_of_memory", f"the device ran out of memory: {exc}"[:500])
            return protocol.error_event(job.id, "internal_error",
                                        f"{type(exc).__name__}: {str(exc)[:300]} (full traceback in the backend log)")

    def write_result(self, arrays: dict) -> str:
        """Write the result .npz atomically (a reader never sees half a file) and delete the oldest
        results beyond ``keep_results``."""
        import numpy as np
        self.result_count += 1
        path = os.path.join(self.result_dir, f"result-{self.result_count:06d}.npz")
        try:
            with open(path + ".part", "wb") as f:
                np.savez(f, **arrays)
            os.replace(path + ".part", path)
        except OSError as exc:
            _remove(path + ".part")
            raise BackendError(f"cannot write the result into {self.result_dir}: {exc.strerror or exc}; "
                               "free some disk space in the temp folder", code="io_error") from None
        self.results.append(path)
        while len(self.results) > self.keep_results:
            _remove(self.results.popleft())
        return path

    def stop_worker(self, timeout: float) -> None:
        self.request_stop()
        self._queue.append(None)
        self._wake.release()
        if self._worker.is_alive():
            self._worker.join(timeout)
            if self._worker.is_alive():
                log.warning("the running job did not stop within %.0f s; exiting anyway", timeout)

    def close(self) -> None:
        shutil.rmtree(self.result_dir, ignore_errors=True)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _no_loader(*_):
    raise BackendError("this server was started without a model loader", code="internal_error")


_DEVICES: list[str] | None = None


def available_devices() -> list[str]:
    """["cpu"] plus "cuda" when torch sees a GPU, or, without torch, when onnxruntime has CUDA
    (imported once, here or by the warm-up)."""
    global _DEVICES
    if _DEVICES is None:
        devices = ["cpu"]
        try:
            import torch
            if torch.cuda.is_available():
                devices.append("cuda")
        except ImportError:
            try:
                import onnxruntime
                if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                    devices.append("cuda")
            except ImportError:
                pass
        _DEVICES = devices
    return list(_DEVICES)
