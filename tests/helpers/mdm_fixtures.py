"""Pytest fixtures for the MDM tests: import them into a test module with
``from tests.helpers.mdm_fixtures import tiny_encoders  # noqa: F401``.
The tiny text encoders are written once per test session, whichever module asks first."""
from __future__ import annotations

import pytest

from .tiny_models import write_tiny_clip, write_tiny_distilbert, write_tiny_minilm

_written: dict = {}


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict:
    """{'clip': folder, 'bert': folder, 'minilm': folder, 'minilm_tokens': folder} of tiny random text
    encoders ('minilm_tokens' reads the same MiniLM folder as 'minilm')."""
    if not _written:
        root = tmp_path_factory.mktemp("tiny_text_encoders")
        _written.update(clip=write_tiny_clip(root / "clip"), bert=write_tiny_distilbert(root / "bert"),
                        minilm=write_tiny_minilm(root / "minilm"))
        _written["minilm_tokens"] = _written["minilm"]
    return dict(_written)
