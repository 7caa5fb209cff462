"""Protocol parsing/validation and event encoding, in-process (fast; the subprocess is tested in
test_service.py)."""
from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from backend.errors import BackendError
from backend.service import client, protocol
from backend.service.server import read_lines

ERROR_CODES = {"bad_request", "unknown_op", "bad_input"}


def line(msg) -> bytes:
    return json.dumps(msg).encode()


def rejected(raw: bytes) -> BackendError:
    with pytest.raises(BackendError) as info:
        protocol.parse_request(raw)
    assert info.value.code in ERROR_CODES, info.value.code
    return info.value


def test_client_and_server_speak_the_same_version():
    assert client.PROTOCOL_VERSION == protocol.PROTOCOL_VERSION


def test_generate_defaults_and_paths(tmp_path):
    req = protocol.parse_request(line({"id": "a1", "op": "generate",
                                       "params": {"prompt": "a person walks", "model_dir": str(tmp_path)}}))
    assert (req.job, req.op) == ("a1", "generate")
    p = req.params
    assert p["model_dir"] == str(tmp_path) and p["text_encoder_dir"] is None
    assert (p["seconds"], p["seed"], p["num_samples"], p["guidance"], p["steps"], p["fit"]) == (6.0, 0, 1, 2.5, None, False)
    assert p["device"] == "auto" and p["vertices"] is False
    assert protocol.parse_request(b'{"id": 7, "op": "hello"}\r').params == {"protocol": None}
    assert protocol.parse_request(b'{"id": 7, "op": "cancel", "params": {"job": "x"}}').params == {"job": "x"}


@pytest.mark.parametrize("raw, code, words", [
    (b"", "bad_request", "empty"),
    (b"\xff\xfe{}", "bad_request", "UTF-8"),
    (b"[1, 2]", "bad_request", "JSON object"),
    (b'{"op": "hello"}', "bad_request", "no 'id'"),
    (b'{"id": true, "op": "hello"}', "bad_request", "'id'"),
    (b'{"id": 1.5, "op": "hello"}', "bad_request", "'id'"),
    (b'{"id": 1, "op": "dance"}', "unknown_op", "unknown op"),
    (b'{"id": 1, "op": 3}', "bad_request", "'op'"),
    (b'{"id": 1, "op": "hello", "extra": 1}', "bad_request", "unknown field"),
    (b'{"id": 1, "op": "generate", "params": {"seconds": NaN}}', "bad_request", "NaN"),
    (b'{"id": 1, "op": "generate", "params": {"seconds": -Infinity}}', "bad_request", "Infinity"),
    (b'{"id": 1, "op": "generate", "params": {"guidance": 1e999}}', "bad_request", "too large"),
    (b'{"id": 1, "op": "generate", "params": {"seed": ' + b"9" * 5000 + b"}}", "bad_request", "JSON"),
    (b"[" * 100000 + b"]" * 100000, "bad_request", "nested"),
    (b'{"id": 1, "op": "generate", "params": []}', "bad_request", "'params'"),
    (b'{"id": 1, "op": "generate", "params": {"sedd": 1}}', "bad_request", "unknown parameter 'sedd'"),
    (b'{"id": 1, "op": "generate", "params": {"seed": true}}', "bad_request", "'seed' must be an integer"),
    (b'{"id": 1, "op": "generate", "params": {"seed": -1}}', "bad_input", "'seed'"),
    (b'{"id": 1, "op": "generate", "params": {"seconds": 0}}', "bad_input", "'seconds'"),
    (b'{"id": 1, "op": "generate", "params": {"seconds": 9.81}}', "bad_input", "at most 9.8"),
    (b'{"id": 1, "op": "generate", "params": {"steps": 0}}', "bad_input", "'steps'"),
    (b'{"id": 1, "op": "generate", "params": {"num_samples": 33}}', "bad_input", "'num_samples'"),
    (b'{"id": 1, "op": "generate", "params": {"device": "tpu"}}', "bad_input", "'device'"),
    (b'{"id": 1, "op": "generate", "params": {"prompt": "\\ud800"}}', "bad_input", "surrogate"),
    (b'{"id": 1, "op": "generate", "params": {"prompt": "a\\u0000b"}}', "bad_input", "NUL"),
    (b'{"id": 1, "op": "generate", "params": {"model_dir": "/no/such/dir"}}', "bad_input", "does not exist"),
    (b'{"id": 1, "op": "generate", "params": {"model_dir": ""}}', "bad_input", "empty"),
    (b'{"id": 1, "op": "fit", "params": {}}', "bad_request", "needs the parameter 'input_path'"),
    (b'{"id": 1, "op": "cancel", "params": {"job": [1]}}', "bad_request", "'job'"),
])
def test_malformed_requests_are_rejected_with_a_clear_reason(raw, code, words):
    err = rejected(raw)
    assert err.code == code and words in err.message, err.message


def test_error_keeps_the_id_when_it_was_readable():
    assert rejected(b'{"id": "j9", "op": "generate", "params": {"seed": "x"}}').job == "j9"
    assert rejected(b'{"id": "j9", "op": "nope"}').job == "j9"
    assert rejected(b"nope").job is None


def test_huge_prompt_and_huge_message():
    err = rejected(line({"id": 1, "op": "generate", "params": {"prompt": "w" * (protocol.MAX_PROMPT_CHARS + 1)}}))
    assert "limit is 1000" in err.message
    err = rejected(b'{"id": 1, "op": "hello", "x": "' + b"a" * protocol.MAX_MESSAGE_BYTES + b'"}')
    assert "exceeds" in err.message


def test_fit_options_must_be_consistent(tmp_path):
    smpl = tmp_path / "SMPL_NEUTRAL.pkl"
    smpl.write_bytes(b"x")
    err = rejected(line({"id": 1, "op": "generate", "params": {"fit": True, "vertices": True}}))
    assert err.code == "bad_input" and "smpl_path" in err.message
    err = rejected(line({"id": 1, "op": "generate", "params": {"smpl_path": str(smpl)}}))
    assert "'fit': true" in err.message
    err = rejected(line({"id": 1, "op": "edit", "params": {"input_path": str(smpl), "edit_start": 1, "edit_end": 3,
                                                           "foot_lock": True}}))
    assert "foot_lock" in err.message and "'fit': true" in err.message
    assert protocol.parse_request(line({"id": 1, "op": "generate", "params": {"fit": True, "foot_lock": True}}))
    ok = protocol.parse_request(line({"id": 1, "op": "generate", "params": {"fit": True, "vertices": True,
                                                                            "smpl_path": str(smpl)}}))
    assert ok.params["smpl_path"] == str(smpl)


def test_edit_range_must_not_be_empty(tmp_path):
    src = tmp_path / "motion.npz"
    src.write_bytes(b"x")
    ok = protocol.parse_request(line({"id": 1, "op": "edit", "params": {
        "input_path": str(src), "edit_start": 10, "edit_end": 30, "mode": "upper_body"}}))
    assert ok.params["mode"] == "upper_body" and ok.params["input_path"] == str(src)
    err = rejected(line({"id": 1, "op": "edit", "params": {"input_path": str(src), "edit_start": 30, "edit_end": 30}}))
    assert "empty" in err.message


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
param_names = st.sampled_from(sorted({n for schema in protocol.SCHEMAS.values() for n in schema}) + ["bogus"])


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(protocol.OPS + ("bogus",)), params=st.dictionaries(param_names, json_values, max_size=6),
       job=json_values)
def test_any_json_envelope_is_accepted_or_rejected_cleanly(op, params, job):
    raw = line({"id": job, "op": op, "params": params})
    try:
        req = protocol.parse_request(raw)
    except BackendError as exc:
        assert exc.code in ERROR_CODES and exc.message
    else:  # everything accepted is fully normalised
        assert set(req.params) == set(protocol.SCHEMAS[op])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_other_exceptions(raw):
    try:
        protocol.parse_request(raw)
    except BackendError as exc:
        assert exc.code in ERROR_CODES


def test_events_are_single_ascii_lines_without_nan():
    data = protocol.encode_event(protocol.result_event("j", None, {"err": float("nan"), "name": "pr\u00e9\nx",
                                                                     "nested": [float("inf"), 1.5]}))
    assert data.endswith(b"\n") and data.count(b"\n") == 1 and data.isascii()
    event = json.loads(data)
    assert event["info"] == {"err": None, "name": "pr\u00e9\nx", "nested": [None, 1.5]}


def test_read_lines_skips_oversized_lines_without_losing_the_next():
    big = b"x" * 300_000
    stream = io.BytesIO(b"first\n" + big + b"\n" + b"second\r\n" + b"y" * 50 + b"\n" + big + b"last")
    out = list(read_lines(stream, limit=100))
    assert out == [(b"first", None), (None, 300_001), (b"second", None), (b"y" * 50, None), (None, 300_004)]
