"""Prompt adherence of the shipped demo model (issue 8), measured on generated joints.

Fixed seed, 4 samples per prompt in one batched call, guidance 2.5 (the product default). A main
prompt passes when at least 3 of 4 samples clear the issue's threshold, a held-out paraphrase when
at least 2 of 4 do (bench/demo_model.py prints the whole table).

KNOWN_FAILURES are the checks the shipped model does not meet yet (issue 8 stays open for them):
they are strict xfails, so a model that starts passing them fails here until the list is updated,
and every other check guards against regressions.
"""
import numpy as np
import pytest

from backend.mdm import DEMO_MODEL_DIR
from backend.training import evaluate as E

pytestmark = pytest.mark.slow

SPEED = "mean_horizontal_speed"
KNOWN_FAILURES: dict[str, str] = {
    # empty since unseen verbs are reworded with WordNet (backend/mdm/rewording.py): "a person springs
    # upward" had risen 0/4 samples (0.00, 0.04, 0.00, 0.00) with "springs" hidden; it reads as "jumps" now
}


def _xfail_known(checks):
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[c.prompt]))
            if c.prompt in KNOWN_FAILURES else c for c in checks]


@pytest.fixture(scope="module")
def results():
    from backend.mdm.pipeline import MotionGenerator
    generator = MotionGenerator.load(None, device="cpu")
    assert generator.model_id.startswith("demo@")
    return E.by_prompt_and_measure(E.run_checks(generator, E.CHECKS + E.paraphrase_checks()))


def test_the_shipped_model_was_trained_on_the_corpus_this_checkout_generates():
    # otherwise the recorded command no longer reproduces it (bench/reproduce_training.py refuses)
    import json

    from backend.training.corpus import GENERATOR_VERSION
    record = json.loads((DEMO_MODEL_DIR / "training_record.json").read_text())
    assert str(record["corpus"]["generator_version"]) == GENERATOR_VERSION, \
        "the caption grammar or motions changed since the demo model was trained: train and ship it again"


def test_the_demo_model_is_the_default_and_small():
    files = list(DEMO_MODEL_DIR.glob("model*.pt"))
    assert len(files) == 1 and (DEMO_MODEL_DIR / "args.json").is_file()
    assert sum(p.stat().st_size for p in DEMO_MODEL_DIR.iterdir()) <= 20 * 1024 * 1024


@pytest.mark.parametrize("check", _xfail_known([c for c in E.CHECKS if c.measure != SPEED]), ids=lambda c: c.prompt)
def test_prompt_adherence(results, check):
    r = results[(check.prompt, check.measure)]
    assert r.pass_fraction >= 0.75, f"{check.prompt!r}: {check.measure} = {r.values}"


def test_running_is_faster_than_walking(results):
    walk = results[("a person walks forward", SPEED)]
    run = results[("a person runs forward", SPEED)]
    assert min(run.values) > max(walk.values), (run.values, walk.values)   # every run sample beats every walk
    assert run.median > 1.3 * walk.median


@pytest.mark.parametrize("check", _xfail_known([c for c in E.paraphrase_checks() if c.measure != SPEED]),
                         ids=lambda c: c.prompt)
def test_paraphrases_outside_the_caption_templates(results, check):
    from backend.training.corpus.captions import producible
    assert not producible(check.prompt)          # really never a training caption
    r = results[(check.prompt, check.measure)]
    assert r.pass_fraction >= 0.5, f"{check.prompt!r}: {check.measure} = {r.values}"


def test_running_paraphrases_are_faster_than_walking(results):
    walk = results[("a person walks forward", SPEED)].median
    paraphrases = [c for c in E.paraphrase_checks() if c.measure == SPEED]
    assert paraphrases
    for check in paraphrases:
        assert results[(check.prompt, SPEED)].median > 1.3 * walk, check.prompt


def test_foot_lock_cuts_the_skating_of_a_generated_walk():
    from backend.fitting.results import fit_result_arrays
    from backend.mdm.pipeline import MotionGenerator
    from backend.motion.skeleton import FOOT_CONTACT
    from backend.training.motion_metrics import foot_skate
    out = MotionGenerator.load(None, device="cpu").generate("a person walks forward", seconds=4.0, seed=0,
                                                             num_samples=4)
    plain = fit_result_arrays(out.joints, out.lengths)["joints_fitted"][..., :22, :]
    locked = fit_result_arrays(out.joints, out.lengths, foot_contacts=out.features[..., FOOT_CONTACT])
    before = np.mean([foot_skate(plain[k], out.joints[k]) for k in range(4)])
    after = np.mean([foot_skate(locked["joints_fitted"][k, :, :22], out.joints[k]) for k in range(4)])
    assert before > 0.015 and after < 0.6 * before, (before, after)   # measured: 2.07 -> 1.03 cm per frame


def test_an_upper_body_prompt_adds_a_second_action_to_the_walk():
    # "walks forward and waves" from one prompt mostly comes out as one of the two (README); the upper
    # body pass keeps the walk's root and legs and redoes the arms: measured 4/4 walk 4.2-4.4 m and
    # wave 68-89 % of frames
    from backend.editing import with_upper_body
    from backend.mdm.pipeline import MotionGenerator
    from backend.training import motion_metrics as M
    generator = MotionGenerator.load(None, device="cpu")
    walk = generator.generate("a person walks forward", seconds=4.0, seed=0, num_samples=4)
    both = with_upper_body(generator, walk, "a person waves with the right hand")
    assert both.recipe["upper_prompt"] == "a person waves with the right hand"
    walked = [M.forward_displacement(j) for j in both.joints]
    waved = [M.wrist_above_head_fraction(j, "right") for j in both.joints]
    assert sum(w >= 1.5 and f >= 0.3 for w, f in zip(walked, waved)) >= 3, (walked, waved)
    assert max(M.wrist_above_head_fraction(j, "right") for j in walk.joints) < 0.3   # the walk alone does not wave
