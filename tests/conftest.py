"""Shared fixtures. ../shared (golden vectors, the HumanML3D sample) is found beside the repository
or through $MDM_SHARED_DIR; tests that need it are marked ``shared`` and skip with a reason when absent.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def shared_dir() -> Path | None:
    candidate = Path(os.environ.get("MDM_SHARED_DIR", REPO.parent / "shared"))
    return candidate if (candidate / "mdm_compat").is_dir() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    path = shared_dir()
    if path is None:
        pytest.skip("../shared (golden vectors) not present; set MDM_SHARED_DIR to run this test")
    return path


@pytest.fixture(scope="session")
def sample_012314(shared):
    """The one real HumanML3D motion: (features [170, 263], joints [170, 22, 3])."""
    return (np.load(shared / "humanml3d/new_joint_vecs/012314.npy"),
            np.load(shared / "humanml3d/new_joints/012314.npy"))


def pytest_collection_modifyitems(config, items):
    """``onnx_venv`` tests build a fresh virtualenv from the package index (about a minute, needs the
    network or a pip cache): they run only when selected, e.g. ``scripts/test.sh -m onnx_venv``."""
    if "onnx_venv" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="builds a fresh torch-free venv; select it with -m onnx_venv")
    for item in items:
        if "onnx_venv" in item.keywords:
            item.add_marker(skip)
