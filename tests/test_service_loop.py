"""The server loop in-process, with handlers written here (crashing, slow, cancellable), over real
pipes: robustness, busy refusal, control ops during a job, result-file lifetime, model cache."""
from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

from backend.errors import Cancelled
from backend.service.server import ModelCache, Server, available_devices


def slow_generate(params, job):
    total = params["steps"] or 5
    for step in range(1, total + 1):
        time.sleep(0.01)
        if job.cancelled():
            raise Cancelled()
        job.progress("diffusion", step, total)
    return {"x": np.arange(3, dtype=np.float32) + params["seed"]}, {"steps": total}


def crash(params, job):
    raise RuntimeError("boom")


def out_of_memory(params, job):
    raise MemoryError()


class Harness:
    def __init__(self, **server_kwargs):
        in_r, self.in_w = os.pipe()
        self.out_r, out_w = os.pipe()
        handlers = {"generate": slow_generate, "fit": crash, "load_model": out_of_memory}
        self.server = Server(os.fdopen(in_r, "rb"), out_w, handlers, **server_kwargs)
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()
        self.reader = os.fdopen(self.out_r, "rb")
        assert self.next()["event"] == "ready"

    def send(self, msg):
        os.write(self.in_w, (json.dumps(msg) if isinstance(msg, dict) else msg).encode() + b"\n")

    def next(self) -> dict:
        return json.loads(self.reader.readline())

    def until_done(self, job) -> tuple[list[dict], dict]:
        progress = []
        while True:
            event = self.next()
            assert event["job"] == job, event
            if event["event"] != "progress":
                return progress, event
            progress.append(event)

    def close(self):
        os.close(self.in_w)
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.reader.close()


@pytest.fixture
def harness():
    available_devices()  # imports torch now, not inside the first hello of a timing-sensitive test
    h = Harness()
    yield h
    if h.thread.is_alive():
        h.close()


def test_job_exceptions_are_reported_and_the_loop_keeps_serving(harness, tmp_path):
    src = tmp_path / "j.npy"
    src.write_bytes(b"")
    harness.send({"id": 1, "op": "fit", "params": {"input_path": str(src)}})
    _, event = harness.until_done(1)
    assert event["code"] == "internal_error" and "RuntimeError: boom" in event["message"]
    harness.send({"id": 2, "op": "load_model"})
    _, event = harness.until_done(2)
    assert event["code"] == "out_of_memory"
    harness.send({"id": 3, "op": "generate", "params": {"steps": 3}})
    progress, event = harness.until_done(3)
    assert [p["step"] for p in progress] == [1, 2, 3] and event["event"] == "result"
    assert np.load(event["result_path"])["x"].tolist() == [0, 1, 2]


def test_control_ops_answer_at_once_while_busy_and_cancel_stops_the_job(harness):
    harness.send({"id": "long", "op": "generate", "params": {"steps": 500}})
    assert harness.next()["phase"] == "diffusion"  # running
    harness.send({"id": "p", "op": "ping"})
    harness.send({"id": "second", "op": "generate", "params": {}})
    harness.send({"id": "h", "op": "hello"})
    harness.send({"id": "c", "op": "cancel", "params": {"job": "long"}})
    answers = {}
    while len(answers) < 5:
        event = harness.next()
        if event["event"] != "progress":
            answers[event["job"]] = event
    assert answers["h"]["info"]["busy"] == {"job": "long", "op": "generate"}
    assert answers["p"]["info"] == {"busy": "long"}
    assert answers["second"]["code"] == "busy" and "'long'" in answers["second"]["message"]
    assert answers["c"]["info"] == {"cancelled": "long"}
    assert answers["long"]["code"] == "cancelled"
    assert answers["long"]["steps_after_cancel"] <= 1 and answers["long"]["step"] < 500
    # the worker is free again as soon as the terminal event is out
    harness.send({"id": "next", "op": "generate", "params": {"steps": 2, "seed": 5}})
    _, event = harness.until_done("next")
    assert np.load(event["result_path"])["x"].tolist() == [5, 6, 7]
    harness.send({"id": "c2", "op": "cancel", "params": {"job": "long"}})
    assert harness.next()["info"]["cancelled"] is None  # nothing to cancel: a no-op, not an error


def test_result_files_are_rotated_and_removed_at_exit():
    h = Harness(keep_results=2)
    paths = []
    for i in range(3):
        h.send({"id": i, "op": "generate", "params": {"steps": 2}})
        paths.append(h.until_done(i)[1]["result_path"])
    assert [os.path.exists(p) for p in paths] == [False, True, True]
    assert os.listdir(h.server.result_dir) == [os.path.basename(p) for p in paths[1:]] or \
        sorted(os.listdir(h.server.result_dir)) == sorted(os.path.basename(p) for p in paths[1:])
    h.close()  # end of input = the client went away
    assert not os.path.exists(h.server.result_dir)


def test_shutdown_cancels_the_running_job_then_ends():
    h = Harness()
    h.send({"id": "long", "op": "generate", "params": {"steps": 500}})
    assert h.next()["event"] == "progress"
    h.send({"id": "bye", "op": "shutdown"})
    events = {}
    while len(events) < 2:
        event = h.next()
        if event["event"] != "progress":
            events[event["job"]] = event
    assert events["bye"]["info"] == {"stopping": True}
    assert events["long"]["code"] == "cancelled" and "shutting down" in events["long"]["message"]
    h.thread.join(10)
    assert not h.thread.is_alive() and not os.path.exists(h.server.result_dir)
    os.close(h.in_w)


def test_model_cache_reuses_and_evicts_least_recently_used():
    built = []
    cache = ModelCache(lambda d, dev, te: built.append((d, dev, te)) or object(), max_models=2)
    a, cached = cache.get("/a", "cpu", None)
    assert not cached and cache.get("/a", "cpu", None) == (a, True)
    cache.get("/b", "cpu", None)
    cache.get("/a", "cpu", None)
    cache.get("/a", "cuda", None)  # other device: another entry; evicts /b, the least recently used
    assert [(e["model_dir"], e["device"]) for e in cache.info()] == [("/a", "cpu"), ("/a", "cuda")]
    assert cache.get("/a", "cpu", None)[1] and cache.loads == 3 == len(built)
    assert cache.info()[-1]["uses"] == 4
