"""The service's wire format (version 1): JSON lines, one request or event per line.

A request is ``{"id": <str|int>, "op": <name>, "params": {...}}``; every request line gets exactly one
terminal event (``result`` or ``error``) carrying its id as ``job``; job ops also get ``progress``
events first. This module parses and validates requests (types, ranges, limits) and encodes events;
it has no state and imports nothing heavy. The human description is backend/PROTOCOL.md.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import BackendError, InputError, RequestError

PROTOCOL_VERSION = 1

# Limits. A legitimate request is a few hundred bytes; these only bound what garbage can cost.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_ID_CHARS = 64
MAX_PROMPT_CHARS = 1000
MAX_PATH_CHARS = 4096
MAX_SECONDS = 9.8            # MDM's window: 196 frames at 20 fps
MAX_SAMPLES = 32
MAX_STEPS = 1000
MAX_GUIDANCE = 30.0
MAX_SEED = 2**32 - 1
DEVICES = ("auto", "cpu", "cuda")
EDIT_MODES = ("in_between", "upper_body")

CONTROL_OPS = ("hello", "ping", "cancel", "shutdown")       # answered at once, even while a job runs
JOB_OPS = ("load_model", "generate", "edit", "fit")  # run one at a time on the worker
OPS = CONTROL_OPS + JOB_OPS

PHASES = ("load", "encode", "diffusion", "fit", "write")


@dataclass(frozen=True)
class Request:
    job: str | int  # the client's id, echoed as "job" in every event about this request
    op: str
    params: dict


# ---------------------------------------------------------------------------------------------
# Field checkers: (name, value) -> normalised value; wrong type -> RequestError, bad value -> InputError.

def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_error(name: str, expected: str, value: Any) -> RequestError:
    return RequestError(f"'{name}' must be {expected}, got {type(value).__name__} {_show(value)}")


def _int(lo: int, hi: int) -> Callable[[str, Any], int]:
    def check(name, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(name, "an integer", value)
        if not lo <= value <= hi:
            raise InputError(f"'{name}' = {_show(value)} is out of range; use {lo}..{hi}")
        return value
    return check


def _float(lo: float, hi: float, lo_open: bool = False) -> Callable[[str, Any], float]:
    def check(name, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(name, "a number", value)
        value = float(value)
        low_ok = value > lo if lo_open else value >= lo
        if not (math.isfinite(value) and low_ok and value <= hi):
            low = f"greater than {lo:g}" if lo_open else f"at least {lo:g}"
            raise InputError(f"'{name}' = {_show(value)} is out of range; use a number {low} and at most {hi:g}")
        return value
    return check


def _bool(name, value):
    if not isinstance(value, bool):
        raise _type_error(name, "true or false", value)
    return value


def _text(name, value, max_chars):
    if not isinstance(value, str):
        raise _type_error(name, "a string", value)
    if len(value) > max_chars:
        raise InputError(f"'{name}' is {len(value)} characters long; the limit is {max_chars}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"'{name}' contains characters that are not valid Unicode (lone surrogates)") from None
    if "\x00" in value:
        raise InputError(f"'{name}' contains a NUL character")
    return value


def _prompt(name, value):
    return _text(name, value, MAX_PROMPT_CHARS)


def _enum(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    def check(name, value):
        if not isinstance(value, str):
            raise _type_error(name, f"one of {list(choices)}", value)
        if value not in choices:
            raise InputError(f"'{name}' = {_show(value)} is not supported; use one of {list(choices)}")
        return value
    return check


def _path(kind: str, optional: bool) -> Callable[[str, Any], str | None]:
    """An existing folder (kind "dir") or file (kind "file"), absolute after expanding ~."""
    def check(name, value):
        if value is None and optional:
            return None
        if value is None:
            raise RequestError(f"'{name}' is required (a path to a {'folder' if kind == 'dir' else 'file'})")
        value = _text(name, value, MAX_PATH_CHARS)
        if not value.strip():
            raise InputError(f"'{name}' is empty; give a path or null")
        path = os.path.abspath(os.path.expanduser(value))
        exists = os.path.isdir(path) if kind == "dir" else os.path.isfile(path)
        if not exists:
            what = "folder" if kind == "dir" else "file"
            raise InputError(f"'{name}': the {what} {path!r} does not exist; check the path in the preferences")
        return path
    return check


def _job_ref(name, value):
    if value is None:
        return None
    return _job_id(value, name)


def _job_id(value, name="id"):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _type_error(name, "a string or an integer", value)
    if isinstance(value, str) and not (1 <= len(value) <= MAX_ID_CHARS and value.isprintable()):
        raise RequestError(f"'{name}' must be 1..{MAX_ID_CHARS} printable characters")
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        raise RequestError(f"'{name}' must fit in 64 bits")
    return value


REQUIRED = object()  # marks a parameter without default

_MODEL = {
    "model_dir": (None, _path("dir", optional=True)),         # null = the embedded demo model
    "text_encoder_dir": (None, _path("dir", optional=True)),  # null = look in the usual places
    "device": ("auto", _enum(DEVICES)),
}
_FIT = {
    "smpl_path": (None, _path("file", optional=True)),  # null = the built-in skeleton
    "fit_betas": (False, _bool),
    "vertices": (False, _bool),
}
_SAMPLING = {
    "prompt": ("", _prompt),
    "seed": (0, _int(0, MAX_SEED)),
    "num_samples": (1, _int(1, MAX_SAMPLES)),
    "guidance": (2.5, _float(0.0, MAX_GUIDANCE)),
    "steps": (None, lambda n, v: None if v is None else _int(2, MAX_STEPS)(n, v)),  # null = the model's own
    "fit": (False, _bool),
    "foot_lock": (False, _bool),   # with fit: pin planted feet (MDM's contact labels) before fitting
}
SCHEMAS: dict[str, dict[str, tuple[Any, Callable]]] = {
    "hello": {"protocol": (None, lambda n, v: None if v is None else _int(0, 2**31)(n, v))},
    "ping": {},                           # liveness check: answered at once, touches nothing
    "cancel": {"job": (None, _job_ref)},  # null = whatever is running
    "shutdown": {},
    "load_model": dict(_MODEL),
    "generate": {**_MODEL, **_SAMPLING, **_FIT, "seconds": (6.0, _float(0.0, MAX_SECONDS, lo_open=True)),
                 "upper_prompt": ("", _prompt)},   # non-empty: spine, arms and head redone for it (2 passes)
    "edit": {**_MODEL, **_SAMPLING, **_FIT,
             "input_path": (REQUIRED, _path("file", optional=False)),
             "mode": ("in_between", _enum(EDIT_MODES)),
             "edit_start": (REQUIRED, _int(0, 10**6)),
             "edit_end": (REQUIRED, _int(0, 10**6))},
    "fit": {"input_path": (REQUIRED, _path("file", optional=False)), **_FIT},
}


def validate_params(op: str, params: Any) -> dict:
    """Check every parameter of ``op`` and fill in defaults; unknown names are refused (typos)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _type_error("params", "an object", params)
    schema = SCHEMAS[op]
    unknown = sorted(set(params) - set(schema))
    if unknown:
        raise RequestError(f"unknown parameter {_show(unknown[0])} for '{op}'; "
                           f"allowed: {', '.join(schema) or 'none'}")
    out = {}
    for name, (default, check) in schema.items():
        if name not in params:
            if default is REQUIRED:
                raise RequestError(f"'{op}' needs the parameter '{name}'")
            out[name] = default
        else:
            out[name] = check(name, params[name])
    if out.get("vertices") and out.get("smpl_path") is None:
        raise InputError("'vertices' needs an SMPL model file: set 'smpl_path' (see smpl_assets/README.md)")
    if op in ("generate", "edit") and (out["vertices"] or out["smpl_path"] or out["fit_betas"]
                                       or out["foot_lock"]) and not out["fit"]:
        raise InputError("'smpl_path', 'fit_betas', 'vertices' and 'foot_lock' only apply with 'fit': true")
    if op == "edit" and out["edit_end"] <= out["edit_start"]:
        raise InputError(f"edit range {out['edit_start']}..{out['edit_end']} is empty; "
                         "edit_end must be greater than edit_start")
    return out


# ---------------------------------------------------------------------------------------------
# Decoding a line.

def _reject_constant(token: str):
    raise RequestError(f"{token} is not allowed in a message (JSON numbers must be finite)")


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise RequestError(f"number {_show(token)} is too large")
    return value


def decode_json(line: bytes) -> Any:
    if len(line) > MAX_MESSAGE_BYTES:
        raise RequestError(f"message of {len(line)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"message is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise RequestError("empty message; send one JSON object per line")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RequestError:
        raise
    except RecursionError:
        raise RequestError("message is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing thousands of digits
        raise RequestError(f"message is not valid JSON: {str(exc)[:120]}") from None


def parse_request(line: bytes) -> Request:
    """Decode and validate one line. Raises a BackendError whose ``job`` attribute holds the request
    id when it could be read (so the error event can name it), else None."""
    job = None
    try:
        msg = decode_json(line)
        if not isinstance(msg, dict):
            raise RequestError(f"message must be a JSON object, got {type(msg).__name__}")
        if "id" not in msg:
            raise RequestError("message has no 'id'; give each request a unique string or integer id")
        job = _job_id(msg["id"])
        unknown = sorted(set(msg) - {"id", "op", "params"})
        if unknown:
            raise RequestError(f"unknown field {_show(unknown[0])}; a request has 'id', 'op' and 'params'")
        op = msg.get("op")
        if not isinstance(op, str):
            raise _type_error("op", "a string", op)
        if op not in OPS:
            raise RequestError(f"unknown op {_show(op)}; known ops: {', '.join(OPS)}", code="unknown_op")
        return Request(job, op, validate_params(op, msg.get("params")))
    except BackendError as exc:
        exc.job = job
        raise


# ---------------------------------------------------------------------------------------------
# Events.

def _finite_only(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite_only(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_only(v) for v in obj]
    return obj


def encode_event(event: dict) -> bytes:
    """One event as a JSON line (ASCII, no NaN/Infinity: non-finite floats become null)."""
    try:
        text = json.dumps(event, ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=str)
    except ValueError:
        text = json.dumps(_finite_only(event), ensure_ascii=True, allow_nan=False, separators=(",", ":"),
                          default=str)
    return text.encode("ascii") + b"\n"


def ready_event(**info) -> dict:
    return {"event": "ready", "job": None, "protocol": PROTOCOL_VERSION, **info}


def progress_event(job, phase: str, step: int, total: int) -> dict:
    return {"event": "progress", "job": job, "phase": phase, "step": step, "total": total}


def result_event(job, result_path: str | None, info: dict) -> dict:
    return {"event": "result", "job": job, "result_path": result_path, "info": info}


def error_event(job, code: str, message: str) -> dict:
    return {"event": "error", "job": job, "code": code, "message": message}
