"""The stdlib client against misbehaving servers (written here as tiny scripts) and against the real
``python -m backend.serve`` without a model: start failures, hangs, ignored cancels, garbage output,
protocol mismatch, restarts, clean stop without zombies."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from backend.service.client import BackendClient, BackendClientError
from tests.conftest import REPO

FAKE_SERVER = textwrap.dedent('''
    import json, os, sys, time
    mode = os.environ["FAKE_MODE"]
    out = sys.stdout
    def send(event):
        out.write(json.dumps(event) + "\\n"); out.flush()
    if mode == "crash_at_start":
        print("Traceback ...\\nModuleNotFoundError: No module named 'torch'", file=sys.stderr)
        sys.exit(1)
    if mode == "never_ready":
        time.sleep(60)
    out.write("some library printed this\\n")
    send({"event": "ready", "job": None, "protocol": 99 if mode == "old_protocol" else 1})
    for line in sys.stdin:
        msg = json.loads(line)
        if mode == "silent":
            continue
        if mode == "ignores_cancel":
            if msg["op"] == "cancel":
                send({"event": "result", "job": msg["id"], "result_path": None, "info": {}})
                continue
            for step in range(10**6):
                send({"event": "progress", "job": msg["id"], "phase": "diffusion", "step": step, "total": 10**6})
                time.sleep(0.05)
        send({"event": "result", "job": msg["id"], "result_path": None, "info": {"garbage_first": True}})
''')


def fake_root(tmp_path, mode: str, monkeypatch) -> str:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "__init__.py").write_text("")
    (tmp_path / "backend" / "serve.py").write_text(FAKE_SERVER)
    monkeypatch.setenv("FAKE_MODE", mode)
    return str(tmp_path)


def assert_reaped(pid: int) -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # not our child any more: it was waited for, no zombie


def wait_for_events(client, until=lambda events: bool(events), timeout=10.0):
    events, deadline = [], time.monotonic() + timeout
    while not until(events) and time.monotonic() < deadline:
        events += client.poll()
        time.sleep(0.02)
    return events


def has_terminal(events):
    return any(e["event"] != "progress" for e in events)


def test_missing_python_and_missing_backend_are_reported(tmp_path):
    client = BackendClient(str(tmp_path / "no-python"), str(REPO))
    with pytest.raises(BackendClientError) as info:
        client.request("hello")
    assert info.value.code == "backend_start_failed" and "no-python" in info.value.message
    job = client.submit("hello")  # the UI path gets the same as an event, never an exception
    assert client.poll() == [{"event": "error", "job": job, "code": "backend_start_failed",
                              "message": info.value.message}]
    with pytest.raises(BackendClientError, match="no backend found"):
        BackendClient(sys.executable, str(tmp_path)).request("hello")


def test_crash_at_start_reports_the_servers_last_words(tmp_path, monkeypatch):
    client = BackendClient(sys.executable, fake_root(tmp_path, "crash_at_start", monkeypatch))
    with pytest.raises(BackendClientError) as info:
        client.request("hello", timeout=20)
    assert info.value.code == "backend_start_failed"
    assert "exit code 1" in info.value.message and "No module named 'torch'" in info.value.message


def test_start_timeout(tmp_path, monkeypatch):
    client = BackendClient(sys.executable, fake_root(tmp_path, "never_ready", monkeypatch), start_timeout=1.0)
    with pytest.raises(BackendClientError, match="did not start within 1 s"):
        client.request("hello", timeout=20)
    assert not client.alive


def test_garbage_lines_are_ignored(tmp_path, monkeypatch):
    with BackendClient(sys.executable, fake_root(tmp_path, "normal", monkeypatch)) as client:
        assert client.request("hello", timeout=20)["info"] == {"garbage_first": True}


def test_protocol_mismatch(tmp_path, monkeypatch):
    client = BackendClient(sys.executable, fake_root(tmp_path, "old_protocol", monkeypatch))
    with pytest.raises(BackendClientError) as info:
        client.request("hello", timeout=20)
    assert info.value.code == "protocol_mismatch" and "protocol 99" in info.value.message
    assert not client.alive


def test_hung_server_is_killed_after_unanswered_pings(tmp_path, monkeypatch):
    client = BackendClient(sys.executable, fake_root(tmp_path, "silent", monkeypatch),
                           hang_timeout=1.0, ping_interval=0.3)
    job = client.submit("generate", {})
    pid = client.pid
    events = wait_for_events(client)
    assert [(e["job"], e["code"]) for e in events] == [(job, "backend_hung")]
    assert "'generate'" in events[0]["message"] and not client.alive
    assert_reaped(pid)


def test_cancel_that_is_ignored_kills_the_server_and_next_request_restarts(tmp_path, monkeypatch):
    client = BackendClient(sys.executable, fake_root(tmp_path, "ignores_cancel", monkeypatch), cancel_grace=0.5)
    job = client.submit("generate", {})
    assert wait_for_events(client)[0]["event"] == "progress"
    first_pid = client.pid
    client.cancel(job)
    t0 = time.monotonic()
    events = [e for e in wait_for_events(client, has_terminal) if e["event"] != "progress"]
    assert [e["code"] for e in events] == ["cancelled"] and "did not stop" in events[0]["message"]
    assert time.monotonic() - t0 < 2.5
    assert_reaped(first_pid)
    monkeypatch.setenv("FAKE_MODE", "normal")
    assert client.request("hello", timeout=20)["event"] == "result"
    assert client.pid != first_pid and client.restarts == 2
    client.stop()


def test_real_server_restart_after_kill_and_clean_stop(monkeypatch):
    monkeypatch.setenv("PYTHONHOME", "/nonexistent")  # as inside some Blender builds: must not reach the server
    client = BackendClient(sys.executable, str(REPO), server_args=("--no-warm-up",))
    info = client.request("hello", timeout=60)["info"]
    assert info["pid"] == client.pid and client.server_info["protocol"] == 1
    result_dir = info["result_dir"]
    os.kill(client.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert client.poll() == [] and not client.alive  # nothing was in flight: nothing to report
    async_job = client.submit("hello")  # the UI's job: its events must survive a blocking request
    second = client.request("hello", timeout=60)["info"]
    assert [(e["job"], e["event"]) for e in wait_for_events(client)] == [(async_job, "result")]
    assert second["pid"] != info["pid"] and client.restarts == 2
    assert not os.path.exists(result_dir)  # the killed server's folder is cleaned up by the client
    pid = client.pid
    t0 = time.monotonic()
    client.stop()
    assert time.monotonic() - t0 < 5 and not client.alive
    assert_reaped(pid)
    assert not os.path.exists(second["result_dir"])  # the server removed its own folder on shutdown


def test_client_is_stdlib_only_and_works_loaded_under_another_name(tmp_path):
    # as the add-on loads it: from its file, under its own package name, without the backend on sys.path
    script = textwrap.dedent(f'''
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("addon_pkg_client", {str(REPO / "backend/service/client.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("numpy", "torch", "backend"))
        assert not heavy, heavy
        client = module.BackendClient(sys.executable, {str(REPO)!r}, server_args=("--no-warm-up",))
        print(client.request("ping", timeout=60)["info"])
        client.stop()
    ''')
    out = subprocess.run([sys.executable, "-c", script], cwd=str(tmp_path), capture_output=True, text=True,
                         timeout=120, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'busy': None}"


@pytest.mark.parametrize("how", ["stdout_closed", "sigterm"])
def test_server_exits_and_cleans_up_when_its_client_is_gone(how):
    import json
    proc = subprocess.Popen([sys.executable, "-m", "backend.serve", "--no-warm-up"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(REPO),
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    ready = json.loads(proc.stdout.readline())
    assert os.path.isdir(ready["result_dir"])
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        proc.stdout.close()  # nobody reads the events any more: the next write fails
        proc.stdin.write(b'{"id": 1, "op": "ping"}\n')
        proc.stdin.flush()
    assert proc.wait(30) == 0
    assert not os.path.exists(ready["result_dir"])
