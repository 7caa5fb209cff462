"""The real ``python -m backend.serve`` subprocess with a tiny model, driven through the client:
progress for every step, results in the shared format, the model cache, cancel within one step,
a server killed mid-job, 1,000+ malformed messages, and a protocol stream no stray print can corrupt."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from backend.service import protocol
from backend.service.client import BackendClient, BackendClientError
from tests.conftest import REPO

STEPS = 1000  # the tiny model's own step count: ~5 ms a step, long enough to cancel or kill mid-run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.helpers.tiny_models import write_tiny_clip, write_tiny_model_dir
    root = tmp_path_factory.mktemp("service_models")
    model = write_tiny_model_dir(root / "tiny", diffusion_steps=STEPS, pos_embed_max_len=STEPS)
    return {"model_dir": str(model), "text_encoder_dir": str(write_tiny_clip(root / "clip")), "device": "cpu"}


@pytest.fixture(scope="module")
def client():
    c = BackendClient(sys.executable, str(REPO), server_args=("--threads", "1"), hang_timeout=120)
    yield c
    c.stop()


def collect(client, job, timeout=60.0, on_event=None):
    """Poll (like the add-on's timer) until ``job`` ends: (progress events, terminal event)."""
    progress, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in client.poll():
            assert event["job"] == job, event
            if event["event"] == "progress":
                progress.append(event)
                if on_event is not None:
                    on_event(event)
            else:
                return progress, event
        time.sleep(0.005)
    raise AssertionError(f"job {job} did not finish in {timeout} s")


def test_generate_reports_every_step_and_writes_the_shared_result_format(client, tiny):
    params = {**tiny, "prompt": "a person walks forward", "seconds": 2.0, "seed": 3, "steps": 20, "num_samples": 2}
    job = client.submit("generate", params)
    progress, result = collect(client, job)
    assert result["event"] == "result", result
    phases = [(e["phase"], e["step"], e["total"]) for e in progress]
    assert phases == [("load", 0, 1), ("load", 1, 1)] + [("diffusion", n, 20) for n in range(1, 21)]
    with np.load(result["result_path"], allow_pickle=False) as data:
        assert data["joints"].shape == (2, 40, 22, 3) and data["joints"].dtype == np.float32
        assert data["features"].shape == (2, 40, 263) and data["lengths"].tolist() == [40, 40]
        assert float(data["fps"]) == 20.0
        recipe = json.loads(str(data["recipe"]))
        joints = data["joints"]
    assert (recipe["prompt"], recipe["seed"], recipe["steps"], recipe["fit"]) == ("a person walks forward", 3, 20, False)
    assert result["info"]["recipe"] == recipe and result["info"]["cached_model"] is False
    # the same motion as the pipeline in this process: the server really ran this model and seed
    from backend.mdm.pipeline import MotionGenerator
    local = MotionGenerator.load(tiny["model_dir"], "cpu", tiny["text_encoder_dir"])
    expected = local.generate("a person walks forward", 2.0, 3, num_samples=2, steps=20).joints
    np.testing.assert_allclose(joints, expected, atol=1e-5)


def test_generate_with_fit_and_the_fit_op_give_the_shared_fitting_output(client, tiny, tmp_path):
    from backend.fitting.results import fit_result_arrays
    out = client.request("generate", {**tiny, "seconds": 3.0, "steps": 3, "fit": True, "num_samples": 2}, timeout=60)
    with np.load(out["result_path"]) as data:
        result = {key: data[key] for key in data.files}
    assert result["poses"].shape == (2, 60, 24, 3) and result["trans"].shape == (2, 60, 3)
    assert result["joints_fitted"].shape == (2, 60, 24, 3) and result["fit_error"].shape == (2, 60)
    assert result["rest_joints"].shape == (24, 3) and result["parents"].tolist()[:4] == [-1, 0, 0, 0]
    expected = fit_result_arrays(result["joints"], result["lengths"])
    for key, value in expected.items():
        np.testing.assert_array_equal(result[key], value, err_msg=key)
    # the fit op on the same joints, from a .npy (one clip) and from an .npz with lengths
    np.save(tmp_path / "one.npy", result["joints"][1])
    np.savez(tmp_path / "batch.npz", joints=result["joints"], lengths=np.array([60, 45]))
    one = client.request("fit", {"input_path": str(tmp_path / "one.npy")}, timeout=60)
    with np.load(one["result_path"]) as data:
        np.testing.assert_array_equal(data["poses"][0], result["poses"][1])
    batch = client.request("fit", {"input_path": str(tmp_path / "batch.npz")}, timeout=60)
    with np.load(batch["result_path"]) as data:
        assert data["lengths"].tolist() == [60, 45] and data["poses"].shape == (2, 60, 24, 3)
        assert json.loads(str(data["recipe"]))["op"] == "fit"
    # foot lock: the fit of the same motion follows the joints with the planted feet pinned
    locked = client.request("generate", {**tiny, "seconds": 3.0, "steps": 3, "fit": True, "num_samples": 2,
                                         "foot_lock": True}, timeout=60)
    with np.load(locked["result_path"]) as data:
        assert np.array_equal(data["joints"], result["joints"])     # the generated motion itself is unchanged
        assert json.loads(str(data["recipe"]))["foot_lock"] is True
        expected = fit_result_arrays(result["joints"], result["lengths"], foot_contacts=result["features"][..., 259:263])
        np.testing.assert_array_equal(data["joints_fitted"], expected["joints_fitted"])
    assert json.loads(str(result["recipe"]))["foot_lock"] is False


def test_generate_with_an_upper_body_prompt_keeps_the_legs_of_the_first_pass(client, tiny):
    params = {**tiny, "prompt": "a person walks forward", "seconds": 2.0, "seed": 5, "steps": 4, "num_samples": 2}
    plain = client.request("generate", params, timeout=60)
    job = client.submit("generate", {**params, "upper_prompt": "  a person waves  "})
    progress, both = collect(client, job)
    assert [(e["step"], e["total"]) for e in progress if e["phase"] == "diffusion"] == [(n, 8) for n in range(1, 9)]
    with np.load(plain["result_path"]) as a, np.load(both["result_path"]) as b:
        first, second, recipe = a["features"], b["features"], json.loads(str(b["recipe"]))
    from backend.motion.skeleton import lower_body_feature_mask
    lower = lower_body_feature_mask()
    np.testing.assert_allclose(second[..., lower], first[..., lower], atol=1e-4)     # root, legs, contacts
    assert np.abs(second[..., ~lower] - first[..., ~lower]).max() > 1e-2           # the upper body was redone
    assert (recipe["prompt"], recipe["upper_prompt"], recipe["seed"]) == ("a person walks forward", "a person waves", 5)


@pytest.mark.parametrize("mode", ["in_between", "upper_body"])
def test_edit_keeps_everything_outside_the_range(client, tiny, mode, tmp_path):
    source = client.request("generate", {**tiny, "prompt": "a person walks", "seconds": 2.0, "steps": 4}, timeout=60)
    with np.load(source["result_path"]) as data:
        np.savez(tmp_path / "known.npz", features=data["features"][0])  # [40, 263], as the add-on would send
        known = data["features"][0]
    out = client.request("edit", {**tiny, "input_path": str(tmp_path / "known.npz"), "mode": mode,
                                  "edit_start": 10, "edit_end": 30, "prompt": "a person jumps", "steps": 4,
                                  "num_samples": 2}, timeout=60)
    with np.load(out["result_path"]) as data:
        edited = data["features"]
    assert edited.shape == (2, 40, 263) and out["info"]["recipe"]["edit_start"] == 10
    outside = np.r_[0:10, 30:40]
    np.testing.assert_allclose(edited[:, outside], np.broadcast_to(known[outside], (2, 20, 263)), atol=1e-4)
    from backend.motion.skeleton import lower_body_feature_mask
    changed = np.abs(edited[:, 10:30] - known[10:30]).max(axis=(0, 1)) > 1e-3  # [263] per feature
    kept_inside = lower_body_feature_mask() if mode == "upper_body" else np.zeros(263, bool)
    assert not changed[kept_inside].any() and changed[~kept_inside].mean() > 0.5


def test_cancel_stops_within_one_step_and_the_model_stays_loaded(client, tiny):
    client.request("load_model", tiny, timeout=60)
    before = client.request("hello")["info"]
    job = client.submit("generate", {**tiny, "prompt": "a person jumps", "seconds": 9.8})
    sent = {}

    def cancel_at_step_10(event):
        if event["phase"] == "diffusion" and event["step"] >= 10 and not sent:
            sent["t"], sent["step"] = time.perf_counter(), event["step"]
            client.cancel(job)
    progress, result = collect(client, job, on_event=cancel_at_step_10)
    elapsed = time.perf_counter() - sent["t"]
    assert result["code"] == "cancelled" and result["message"] == "cancelled by the user"
    assert result["steps_after_cancel"] <= 1  # the loop noticed the flag at the next step boundary
    assert result["step"] < STEPS // 2 and result["total"] == STEPS
    assert elapsed < 2.0, f"cancel took {elapsed:.2f} s"  # the rest of the run would take several seconds
    # still warm: the next job reuses the loaded model
    after = client.submit("generate", {**tiny, "prompt": "a person jumps", "seconds": 1.0, "steps": 5})
    _, result = collect(client, after)
    assert result["event"] == "result" and result["info"]["cached_model"] is True
    info = client.request("hello")["info"]
    assert info["pid"] == before["pid"] and info["model_loads"] == before["model_loads"]
    entry = next(m for m in info["loaded_models"] if m["model_dir"] == tiny["model_dir"])
    assert entry["device"] == "cpu" and entry["uses"] >= 3


def test_busy_is_refused_while_a_job_runs(client, tiny):
    job = client.submit("generate", {**tiny, "seconds": 9.8})
    collect_until = time.monotonic() + 30
    while not any(e["event"] == "progress" for e in client.poll()) and time.monotonic() < collect_until:
        time.sleep(0.005)
    with pytest.raises(BackendClientError) as info:
        client.request("generate", {**tiny, "steps": 2}, timeout=10)
    assert info.value.code == "busy" and str(job) in info.value.message
    client.cancel(job)
    assert collect(client, job)[1]["code"] == "cancelled"


def test_blocking_request_timeout_cancels_and_leaves_the_server_idle(client, tiny):
    with pytest.raises(BackendClientError) as info:
        client.request("generate", {**tiny, "seconds": 9.8}, timeout=0.5)
    assert info.value.code == "timeout"
    assert client.request("ping")["info"] == {"busy": None}  # the cancelled job has ended already
    assert client.request("generate", {**tiny, "seconds": 1.0, "steps": 2}, timeout=60)["event"] == "result"
    assert client.poll() == []  # the abandoned job's events were swallowed


def test_killed_server_is_reported_and_the_next_request_restarts_it(client, tiny):
    job = client.submit("generate", {**tiny, "seconds": 9.8})
    old_pid = client.pid

    def kill_at_step_5(event):
        if event["phase"] == "diffusion" and event["step"] == 5:
            os.kill(old_pid, signal.SIGKILL)
    _, result = collect(client, job, on_event=kill_at_step_5)
    assert result["code"] == "backend_died" and "exit code -9" in result["message"]
    assert "'generate'" in result["message"] and not client.alive
    with pytest.raises(ChildProcessError):
        os.waitpid(old_pid, os.WNOHANG)  # reaped: no zombie
    out = client.request("generate", {**tiny, "seconds": 1.0, "steps": 3}, timeout=120)
    assert client.pid != old_pid and out["info"]["cached_model"] is False  # a fresh server loaded it again
    assert os.path.isfile(out["result_path"])


def test_stop_while_running_cancels_and_reaps(client, tiny):
    job = client.submit("generate", {**tiny, "seconds": 9.8})
    pid = client.pid
    _, result = collect(client, job, on_event=lambda e: client.stop() if e.get("step") == 3 else None)
    assert result["code"] == "cancelled" and "shutting down" in result["message"]  # the server's own answer
    assert client.pid is None and not client.alive and client.poll() == []
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


# ---------------------------------------------------------------------------------------------
# fuzz: >= 1,000 malformed messages through one server, each answered with an error

def malformed_messages(rng: random.Random, tmp_path, tiny) -> list[bytes]:
    garbage_file = tmp_path / "garbage.npz"
    garbage_file.write_bytes(bytes(rng.randrange(256) for _ in range(500)))
    empty_model = tmp_path / "empty_model"
    empty_model.mkdir()
    enc = lambda obj: json.dumps(obj).encode()  # noqa: E731
    wrong = [None, True, "x", "", -1, 0, 1.5, 10**30, [], [1, "a"], {}, {"a": 1}, "é" * 3, "\u0000"]
    ops = list(protocol.SCHEMAS)
    msgs: list[bytes] = []
    for i in range(300):  # wrong types and values, param by param
        op = rng.choice(ops)
        name = rng.choice(list(protocol.SCHEMAS[op]) or ["anything"])
        value = rng.choice(wrong + [rng.uniform(-1e6, 1e6), rng.randint(-2**40, 2**40)])
        params = {name: value}
        try:
            protocol.validate_params(op, params)
            continue  # accidentally valid (e.g. seed 0): not a malformed message
        except Exception:
            pass
        msgs.append(enc({"id": f"p{i}", "op": op, "params": params}))
    for i in range(120):  # out-of-range numbers
        name, value = rng.choice([("seconds", rng.choice([0, -1, 9.81, 1e6])), ("steps", rng.choice([0, 1, 1001, -5])),
                                  ("num_samples", rng.choice([0, 33, 10**6])), ("guidance", rng.choice([-0.1, 31, 1e300])),
                                  ("seed", rng.choice([-1, 2**32, 2**64])), ("device", rng.choice(["tpu", "CUDA", "gpu0"]))])
        msgs.append(enc({"id": f"r{i}", "op": "generate", "params": {name: value}}))
    for i in range(100):  # NaN / Infinity / huge exponents
        token = rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
        field = rng.choice(["seconds", "guidance", "seed", "steps"])
        msgs.append(f'{{"id": "n{i}", "op": "generate", "params": {{"{field}": {token}}}}}'.encode())
    for i in range(100):  # unknown ops, fields, parameters
        kind = i % 3
        if kind == 0:
            op = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rng.randint(1, 12)))
            msgs.append(enc({"id": i, "op": op if op not in protocol.OPS else op + "x"}))
        elif kind == 1:
            msgs.append(enc({"id": i, "op": "hello", "extra_" + str(i): 1}))
        else:
            msgs.append(enc({"id": i, "op": rng.choice(ops), "params": {f"bogus{i}": 1}}))
    for i in range(100):  # missing / wrong envelope pieces
        msgs.append(rng.choice([enc({"op": "hello"}), enc({"id": i}), enc({"id": i, "op": None}),
                                enc({"id": True, "op": "hello"}), enc({"id": "x" * 100, "op": "hello"}),
                                enc({"id": i, "op": "generate", "params": "seed=1"}),
                                enc(rng.choice([1, "hello", None, [1, 2], 3.5])),
                                enc({"id": i, "op": "fit"}), enc({"id": i, "op": "edit", "params": {}})]))
    for i in range(150):  # broken JSON and binary garbage (never containing a newline)
        if i % 2:
            text = enc({"id": i, "op": "generate", "params": {"prompt": "a person"}})
            msgs.append(text[:rng.randrange(1, len(text) - 1)])
        else:
            msgs.append(bytes(rng.choice([b for b in range(256) if b != 10]) for _ in range(rng.randint(1, 400))))
    for i in range(60):  # huge strings, oversized lines, deep nesting, bad unicode, blank lines
        kind = i % 6
        if kind == 0:
            msgs.append(enc({"id": i, "op": "generate", "params": {"prompt": "walk " * rng.randint(300, 20000)}}))
        elif kind == 1:
            msgs.append(b'{"id": 1, "op": "hello", "pad": "' + b"z" * rng.randint(300_000, 3_000_000) + b'"}')
        elif kind == 2:
            msgs.append(b'{"id": 1, "params": ' + b"[" * 50_000 + b"]" * 50_000 + b"}")
        elif kind == 3:
            msgs.append(b'{"id": 1, "op": "generate", "params": {"prompt": "\\udc00 walks"}}')
        elif kind == 4:
            msgs.append(rng.choice([b"", b"   ", b"\t", b"\r"]))
        else:
            msgs.append(enc({"id": i, "op": "generate", "params": {"model_dir": "/nope/" + "d" * rng.randint(1, 9000)}}))
    for i in range(60):  # well-formed but semantically wrong: files that are not what they claim
        kind = i % 4
        if kind == 0:
            msgs.append(enc({"id": f"s{i}", "op": "fit", "params": {"input_path": str(garbage_file)}}))
        elif kind == 1:
            msgs.append(enc({"id": f"s{i}", "op": "edit", "params": {"input_path": str(garbage_file),
                                                                      "edit_start": 5, "edit_end": 9}}))
        elif kind == 2:
            msgs.append(enc({"id": f"s{i}", "op": "generate", "params": {**tiny, "model_dir": str(empty_model)}}))
        else:
            msgs.append(enc({"id": f"s{i}", "op": "edit", "params": {"input_path": str(garbage_file),
                                                                      "edit_start": 9, "edit_end": 5}}))
    for i in range(100):  # valid JSON with the right envelope and random junk params
        params = {rng.choice(["prompt", "seconds", "seed", "fit", "device"]): rng.choice(wrong[1:4] + [[], {}]),
                  "mystery": rng.random()}
        msgs.append(enc({"id": f"j{i}", "op": rng.choice(ops), "params": params}))
    rng.shuffle(msgs)
    assert all(b"\n" not in m for m in msgs)
    return msgs


def test_fuzz_every_malformed_message_gets_an_error_and_the_server_keeps_serving(tmp_path, tiny):
    messages = malformed_messages(random.Random(1234), tmp_path, tiny)
    assert len(messages) >= 1000
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "backend.serve", "--no-warm-up"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=str(REPO))
    try:
        assert json.loads(proc.stdout.readline())["event"] == "ready"
        codes = {}
        for raw in messages:
            proc.stdin.write(raw + b"\n")
            proc.stdin.flush()
            while True:
                event = json.loads(proc.stdout.readline())  # every line on stdout is protocol JSON
                if event["event"] != "progress":
                    break
            assert event["event"] == "error", (raw[:200], event)
            assert event["code"] and event["message"]
            codes[event["code"]] = codes.get(event["code"], 0) + 1
        assert set(codes) <= {"bad_request", "unknown_op", "bad_input", "bad_checkpoint"}, codes
        assert codes.get("bad_checkpoint", 0) >= 10 and codes.get("unknown_op", 0) >= 30
        valid = {"id": "ok", "op": "generate", "params": {**tiny, "prompt": "a person waves", "seconds": 1.0,
                                                           "steps": 4}}
        proc.stdin.write(json.dumps(valid).encode() + b"\n")
        proc.stdin.flush()
        events = []
        while not events or events[-1]["event"] == "progress":
            events.append(json.loads(proc.stdout.readline()))
        assert events[-1]["event"] == "result" and events[-1]["job"] == "ok", events[-1]
        assert [e["step"] for e in events if e.get("phase") == "diffusion"] == [1, 2, 3, 4]
        assert np.load(events[-1]["result_path"])["joints"].shape == (1, 20, 22, 3)
    finally:
        proc.stdin.close()
        assert proc.wait(30) == 0  # end of input: a clean exit


def test_stray_prints_never_reach_the_protocol_stream():
    script = ("import os, threading; from backend import serve; "
              "threading.Timer(0.3, lambda: (print('stray print', flush=True), os.write(1, b'C-level write\\n'))).start(); "
              "serve.main(['--no-warm-up'])")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=str(REPO))
    time.sleep(1.0)
    out, err = proc.communicate(b'{"id": 1, "op": "ping"}\n', timeout=60)
    lines = out.decode().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["ready", "result"]
    assert "stray print" in err.decode() and "C-level write" in err.decode()
