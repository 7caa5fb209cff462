"""User-facing errors with stable machine-readable codes (the service sends ``code`` + ``message``)."""
from __future__ import annotations


class BackendError(Exception):
    """Base class: ``code`` is stable (clients branch on it), ``message`` is for humans."""

    code = "backend_error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class InputError(BackendError):
    """A request value is out of range or malformed (seconds, guidance, device, shapes...)."""
    code = "bad_input"


class CheckpointError(BackendError):
    """A model folder, args.json or checkpoint file is missing, corrupted or of the wrong kind."""
    code = "bad_checkpoint"


class TextEncoderError(BackendError):
    """The text encoder (CLIP / DistilBERT / MiniLM) cannot be found or loaded."""
    code = "bad_text_encoder"


class SMPLFileError(BackendError):
    """An SMPL model file is missing, truncated, unsafe or not an SMPL model."""
    code = "bad_smpl_file"


class Cancelled(BackendError):
    """The job was cancelled between two diffusion steps."""
    code = "cancelled"

    def __init__(self, message: str = "cancelled by the user"):
        super().__init__(message)


class DeviceError(BackendError):
    """The requested device (e.g. cuda) is unknown or not available."""
    code = "bad_device"


class RequestError(BackendError):
    """A service message is malformed: not JSON, wrong types, unknown fields, too large."""
    code = "bad_request"


class Busy(BackendError):
    """The service is already running a job (it runs one at a time and does not queue)."""
    code = "busy"
