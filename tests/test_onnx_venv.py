"""A fresh virtualenv WITHOUT torch, holding only backend/requirements-onnx.txt, runs an exported
model: the ``generate`` command and the warm service (what the add-on talks to), with the same
motion as torch. Opt-in (network or pip cache, about a minute): ``scripts/test.sh -m onnx_venv``."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backend.service.client import BackendClient
from tests.conftest import REPO
from tests.helpers.addon_modules import load_addon_module
from tests.helpers.onnx_fixtures import TINY_ONNX_MODELS, onnx_exports, tiny_encoders  # noqa: F401

pytestmark = [pytest.mark.onnx_venv, pytest.mark.slow]


def _run(argv, **kwargs):
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    return done


def test_fresh_torch_free_venv_generates_from_an_export(onnx_exports, tiny_encoders, tmp_path):  # noqa: F811
    from backend.mdm.pipeline import MotionGenerator
    model_dir, export_dir = onnx_exports("dec_bert")
    venv = tmp_path / "venv"
    t0 = time.perf_counter()
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    python = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r",
          str(REPO / "backend/requirements-onnx.txt")], timeout=900)
    t1 = time.perf_counter()
    probe = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'torch'" in probe.stderr
    addon_setup = load_addon_module("backend_setup.py")
    assert addon_setup.environment_is_healthy(Path(python))  # the add-on accepts an ONNX Runtime environment
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    out = tmp_path / "motion.npz"
    _run([python, "-m", "backend", "generate", "--model-dir", str(export_dir), "--prompt", "a person walks forward",
          "--seconds", "2", "--seed", "11", "--num-samples", "2", "--quiet", "--fit", "--out", str(out)],
         cwd=REPO, env=env, timeout=300)
    t2 = time.perf_counter()
    torch_gen = MotionGenerator.load(model_dir, "cpu", tiny_encoders[TINY_ONNX_MODELS["dec_bert"]["text_encoder"]])
    expected = torch_gen.generate("a person walks forward", seconds=2.0, seed=11, num_samples=2)
    with np.load(out) as data:
        assert data["features"].shape == (2, 40, 263) and data["poses"].shape == (2, 40, 24, 3)
        assert np.abs(torch_gen.normalizer.normalize(data["features"]) -
                      torch_gen.normalizer.normalize(expected.features)).max() <= 1e-4

    client = BackendClient(python, str(REPO), env=env, start_timeout=120)
    try:
        result = client.request("generate", {"model_dir": str(export_dir), "prompt": "a person walks forward",
                                             "seconds": 2.0, "seed": 11, "num_samples": 2}, timeout=120)
        assert client.request("hello")["info"]["devices"] == ["cpu"]
        with np.load(result["result_path"]) as served, np.load(out) as cli:
            np.testing.assert_allclose(served["features"], cli["features"], atol=1e-6)
        np.save(tmp_path / "known.npy", expected.features[0])
        edited = client.request("edit", {"model_dir": str(export_dir), "input_path": str(tmp_path / "known.npy"),
                                         "mode": "in_between", "edit_start": 10, "edit_end": 30,
                                         "prompt": "a person jumps"}, timeout=120)
        with np.load(edited["result_path"]) as data:
            np.testing.assert_allclose(data["features"][0, :10], expected.features[0, :10], atol=1e-4)
        assert edited["info"]["recipe"]["runtime"] == "onnx"
    finally:
        client.stop()
    print(f"\nvenv + pip install -r backend/requirements-onnx.txt: {t1 - t0:.1f} s; "
          f"first `generate` in it (2 x 2 s, 50 steps, --fit): {t2 - t1:.1f} s")
