"""The caption grammar: HumanML3D text lines, canonical prompts in-distribution, held-out
paraphrases provably outside it."""
import re

import numpy as np
import pytest

from backend.training.corpus import HELD_OUT_PARAPHRASES, captions as C
from backend.training.corpus.base import Phrase

# The prompts of issue 8's acceptance tests: the demo model must have seen exactly these.
CANONICAL = ("a person walks forward", "a person jumps", "a person sits down", "a person waves with the right hand",
             "a person turns around", "a person kicks with the left leg", "a person runs forward",
             "a person walks forward then turns left", "a person jumps then sits down", "a person stands still")
POS_TAGS = {"DET", "PRON", "ADP", "CCONJ", "AUX", "NUM", "ADJ", "ADV", "VERB", "NOUN", "PUNCT"}


def test_conjugation():
    assert [C.conjugate(v, "3sg") for v in ("walk", "punch", "do", "box", "run")] == ["walks", "punches", "does", "boxes", "runs"]
    assert [C.conjugate(v, "ing") for v in ("take", "run", "squat", "sit", "see", "clap")] == \
        ["taking", "running", "squatting", "sitting", "seeing", "clapping"]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_prompts_are_in_the_grammar(text):
    assert C.producible(text)


def test_held_out_paraphrases_are_outside_the_grammar():
    assert len(HELD_OUT_PARAPHRASES) >= 12
    families = {h["family"] for h in HELD_OUT_PARAPHRASES}
    assert {"walk", "run", "jump", "sit_down", "wave", "turn", "kick"} <= families
    for item in HELD_OUT_PARAPHRASES:
        assert not C.producible(item["text"]), item["text"]
    assert C.producible("the man jumps up and down twice")  # the checker itself does find grammar sentences


# The word each held-out paraphrase hinges on: no training caption may contain it in any form, or
# the paraphrase check would quietly become an in-distribution one.
UNSEEN_STEMS = ("stroll", "amble", "dash", "race", "hop", "leap", "spring", "settle", "stool", "greet", "about",
                "spin", "boot")


def test_the_paraphrases_key_words_never_occur_in_training_captions():
    vocabulary = {w for caption in C._single_caption_set() for w in caption.split()}
    vocabulary |= {w for frame in C.DOUBLE_FRAMES for w in frame.split() if "{" not in w}
    for stem in UNSEEN_STEMS:
        assert any(stem in item["text"] for item in HELD_OUT_PARAPHRASES), stem
        assert not [w for w in vocabulary if w.startswith(stem)], stem


def test_every_verb_phrase_renders_cleanly():
    for phrase in C.enumerate_phrases():
        vps = C.verb_phrases(phrase)
        assert vps and len(set(vps)) == len(vps), phrase
        for vp in vps:
            for subject in ("a man", "someone"):
                for form in ("3sg", "ing"):
                    text = C.render(vp, form, subject).replace("{poss}", "his")
                    assert re.fullmatch(r"[a-z ,\-]+", text), text


def test_humanml_lines_tag_every_word():
    rng = np.random.default_rng(0)
    phrases = C.enumerate_phrases()
    for k in range(0, len(phrases), 3):
        pair = [phrases[k], phrases[(7 * k + 1) % len(phrases)]]
        for caption in C.sample_captions(pair[: 1 + k % 2], rng):
            line = C.humanml_line(caption)
            text, tokens, start, end = line.split("#")
            assert text == caption and (start, end) == ("0.0", "0.0")
            pairs = [t.rsplit("/", 1) for t in tokens.split()]
            assert len(pairs) == len(caption.replace(",", " , ").split())
            assert all(pos in POS_TAGS for _, pos in pairs)
            # verbs are lemmatised the way HumanML3D's spaCy pass does ("walks" -> "walk")
            words = caption.replace(",", " , ").split()
            for word, (lemma, pos) in zip(words, pairs):
                if word in ("walks", "walking", "runs", "jumps", "kicks", "waves", "sits", "turns"):
                    assert pos == "VERB" and word.startswith(lemma[:3]) and lemma in ("walk", "run", "jump", "kick", "wave", "sit", "turn")


def test_sample_captions_are_distinct_and_agree_with_the_subject():
    rng = np.random.default_rng(3)
    for _ in range(30):
        caps = C.sample_captions([Phrase("kick", {"leg": "left", "count": 1})], rng)
        assert len(set(caps)) == 3
        for cap in caps:
            if cap.startswith(("a man", "the man")):
                assert " her " not in cap and " their " not in cap
            if cap.startswith(("a woman", "the woman")):
                assert " his " not in cap
