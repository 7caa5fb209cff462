"""Prompt adherence of the shipped demo model (issue 8), measured on generated joints.

Fixed seeds, 4 samples per prompt in one batched call; a check passes when at least 3 of 4 samples
clear the issue's threshold (the median is reported in bench/demo_model.py).
"""
import numpy as np
import pytest

from backend.mdm import DEMO_MODEL_DIR
from backend.training import evaluate as E

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generator():
    from backend.mdm.pipeline import MotionGenerator
    return MotionGenerator.load(None, device="cpu")


@pytest.fixture(scope="module")
def results(generator):
    return {r.check.prompt: r for r in E.run_checks(generator, E.CHECKS + E.paraphrase_checks())}


def test_the_demo_model_is_the_default_and_small():
    files = list(DEMO_MODEL_DIR.glob("model*.pt"))
    assert len(files) == 1 and (DEMO_MODEL_DIR / "args.json").is_file()
    assert sum(p.stat().st_size for p in DEMO_MODEL_DIR.iterdir()) <= 20 * 1024 * 1024


@pytest.mark.parametrize("check", [c for c in E.CHECKS if c.measure != "mean_horizontal_speed"],
                         ids=lambda c: c.prompt)
def test_prompt_adherence(results, check):
    r = results[check.prompt]
    assert r.pass_fraction >= 0.75, f"{check.prompt!r}: {check.measure} = {r.values}"


def test_running_is_faster_than_walking(results):
    walk, run = results["a person walks forward"], results["a person runs forward"]
    assert min(run.values) > np.median(walk.values)   # every run sample beats the walk median
    assert run.median > 1.3 * walk.median


@pytest.mark.parametrize("check", [c for c in E.paraphrase_checks() if c.measure != "mean_horizontal_speed"],
                         ids=lambda c: c.prompt)
def test_paraphrases_outside_the_caption_templates(results, check):
    from backend.training.corpus.captions import producible
    assert not producible(check.prompt)          # really never a training caption
    r = results[check.prompt]
    assert r.pass_fraction >= 0.5, f"{check.prompt!r}: {check.measure} = {r.values}"


def test_running_paraphrases_are_faster_than_walking(results):
    walk = results["a person walks forward"].median
    for check in E.paraphrase_checks():
        if check.measure == "mean_horizontal_speed":
            assert results[check.prompt].median > 1.3 * walk, check.prompt
