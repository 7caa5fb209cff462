"""Rewording unseen prompt words with WordNet (backend/mdm/wordnet.py, rewording.py) and the
extract builder (scripts/build_wordnet_extract.py)."""
import gzip
import json
import sys
from pathlib import Path

import pytest

from backend.mdm import DEMO_MODEL_DIR
from backend.mdm.rewording import PromptRewording
from backend.mdm.text_tokens import CAPTION_VOCABULARY
from backend.mdm.wordnet import ASSET_DIR, EXTRACT_NAME, WordNet, shipped_wordnet

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import build_wordnet_extract  # noqa: E402

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def _write_wndb(folder: Path) -> Path:
    """A few synsets in WordNet's own database format (offsets are byte positions in the real files;
    any unique number works for the reader)."""
    folder.mkdir()
    (folder / "data.verb").write_text(HEADER + "\n".join([
        "00000100 38 v 04 jump 0 leap 0 bound 1 spring 0 001 @ 00000300 v 0000 01 + 02 00 | move forward by leaps",
        "00000200 30 v 02 spring 0 rise 0 000 01 + 01 00 | develop suddenly",
        "00000300 38 v 03 travel 0 go 0 locomote 0 000 01 + 01 00 | change location",
        "00000400 38 v 02 hop 0 hop-skip 0 001 @ 00000100 v 0000 01 + 02 00 | jump lightly",
        "00000500 38 v 02 walk_out 0 exit 0 000 01 + 01 00 | leave",
    ]) + "\n")
    (folder / "index.verb").write_text(HEADER + "\n".join([
        "exit v 1 0 1 0 00000500", "go v 1 0 1 0 00000300", "hop v 1 1 @ 1 0 00000400",
        "hop-skip v 1 1 @ 1 0 00000400", "jump v 1 1 @ 1 1 00000100", "spring v 2 1 @ 2 1 00000100 00000200",
        "walk_out v 1 0 1 0 00000500",
    ]) + "\n")
    (folder / "verb.exc").write_text("sprang spring\nsprung spring\nwent go\n")
    (folder / "data.noun").write_text(HEADER + "00000600 04 n 01 spring 0 000 | the season\n")   # not read
    (folder / "LICENSE").write_text("WordNet Release 3.0 (test copy)\n")
    return folder


def test_the_builder_keeps_single_word_lemmas_senses_relations_and_irregular_forms(tmp_path):
    source = _write_wndb(tmp_path / "wndb")
    assert build_wordnet_extract.main([str(source), "--out", str(tmp_path / "out")]) == 0
    first = (tmp_path / "out" / EXTRACT_NAME).read_bytes()
    assert build_wordnet_extract.main([str(source), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / EXTRACT_NAME).read_bytes() == first            # byte-identical rebuild
    assert (tmp_path / "out" / "LICENSE.txt").read_text() == "WordNet Release 3.0 (test copy)\n"
    wordnet = WordNet.read(tmp_path / "out" / EXTRACT_NAME)
    senses = wordnet.senses("spring", "v")
    assert [wordnet.synonyms(s) for s in senses] == [["jump", "leap", "bound", "spring"], ["spring", "rise"]]
    assert [wordnet.synonyms(r) for r in wordnet.related(senses[0])] == [["travel", "go", "locomote"]]
    assert [wordnet.synonyms(r) for r in wordnet.related(wordnet.senses("hop", "v")[0])] == \
        [["jump", "leap", "bound", "spring"]]
    assert "walk_out" not in wordnet.index["v"] and wordnet.synonyms(wordnet.senses("exit", "v")[0]) == ["exit"]
    assert wordnet.lemmas("sprang", "v") == ["spring"] and wordnet.lemmas("springs", "v") == ["spring"]
    assert wordnet.lemmas("springing", "v") == ["spring"] and wordnet.lemmas("hops", "v") == ["hop"]
    assert wordnet.lemmas("hopped", "v") == [] and set(wordnet.index) == {"v"}   # verbs only


def test_the_shipped_extract_is_wordnet_3_with_its_licence():
    text = (ASSET_DIR / "LICENSE.txt").read_text()
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in text
    with gzip.open(ASSET_DIR / EXTRACT_NAME, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    assert len(data["synsets"]) == 13767                      # WordNet 3.0's verb synsets
    wordnet = shipped_wordnet()
    assert "jump" in wordnet.synonyms(wordnet.senses("spring", "v")[0])
    assert wordnet.lemmas("ran", "v") == ["run"] and wordnet.lemmas("leaping", "v") == ["leap"]


@pytest.fixture(scope="module")
def demo_rewording():
    """The rewording of the shipped demo model's caption words."""
    words = json.loads((DEMO_MODEL_DIR / CAPTION_VOCABULARY).read_text())["words"]
    return PromptRewording(words, shipped_wordnet())


@pytest.mark.parametrize("typed, read", [
    ("springs", "jumps"),      # first sense's synonym
    ("leaping", "jumping"),    # the same inflection where the captions have it
    ("strolls", "walks"),      # a hypernym: to stroll is to walk
    ("boots", "kicks"),        # the verb sense, though "boot" is first of all a noun
    ("races", "runs"),         # a second sense's synonym beats the first sense's hypernym ("speed")
    ("sit", "sits"),           # an unseen form of a known verb: the verb's known form
    ("settles", None),         # 22 senses; "stop" and "sink" are rare ones: beyond MAX_COST
    ("lunges", None),          # only "move" relates it: too general to carry a motion
    ("kneels", None),          # a way to "rest", a way to "be"
    ("somersaults", None),     # WordNet gives it no hypernym
])
def test_unseen_verbs_read_as_their_closest_caption_word(demo_rewording, typed, read):
    assert demo_rewording.substitute(typed) == read


def test_reword_replaces_whole_words_only_and_keeps_capitals(demo_rewording):
    prompt = "Springs up, then strolls past the springsteen poster as fast as she can"
    unseen = ["Springs", "strolls", "past", "springsteen", "poster", "she", "can"]
    read, reworded = demo_rewording.reword(prompt, unseen)
    assert read == "Jumps up, then walks past the springsteen poster as fast as she can"
    assert reworded == {"Springs": "Jumps", "strolls": "walks"}
    assert demo_rewording.reword("a person walks forward", []) == ("a person walks forward", {})
    # the tokenizer names only the unseen part of a hyphenated word; WordNet knows the whole
    assert demo_rewording.reword("someone does an about-face", ["about"]) == \
        ("someone does an turn", {"about-face": "turn"})
    # a word the captions have is never reworded, even when reported unseen (a split token of it)
    assert demo_rewording.reword("a person jumps", ["jumps"]) == ("a person jumps", {})


def test_cheapest_candidate_wins_and_rare_senses_are_not_reached():
    # "zap": sense 0 {zap} -> hypernym {dart}; sense 1 {zap, flit}; senses 2-4 of nothing known but
    # sense 4 {zap, hop}: dart costs 2, flit 1, hop 4 (> MAX_COST 3)
    synsets = [[["zap"], [5]], [["zap", "flit"], []], [["zap"], []], [["zap"], []], [["zap", "hop"], []],
               [["dart"], []], [["zoom"], [5]]]
    data = {"synsets": synsets, "pos": {p: {"index": {}, "exceptions": {}} for p in "vnar"}}
    data["pos"]["v"]["index"] = {"zap": [0, 1, 2, 3, 4], "flit": [1], "dart": [5], "hop": [4], "zoom": [6]}
    wordnet = WordNet(data)
    assert PromptRewording(["darts", "flits", "hops"], wordnet).substitute("zaps") == "flits"
    assert PromptRewording(["darts", "hops"], wordnet).substitute("zaps") == "darts"
    assert PromptRewording(["hops"], wordnet).substitute("zaps") is None
    assert PromptRewording(["darts"], wordnet).substitute("zooming") is None     # no "darting" in the captions
    assert PromptRewording(["darting"], wordnet).substitute("zooming") == "darting"


def test_a_missing_wordnet_extract_leaves_unseen_words_hidden_not_a_failed_generation(tmp_path, monkeypatch, caplog):
    from backend.mdm import wordnet as wordnet_module
    from backend.mdm.text_tokens import CaptionVocabulary
    monkeypatch.setattr(wordnet_module, "ASSET_DIR", tmp_path)
    shipped_wordnet.cache_clear()
    try:
        vocabulary = CaptionVocabulary("minilm_tokens", [101, 102], words=["a", "person", "jumps"])
        assert vocabulary.rewording(tokens=None) is None
        assert "unseen words are hidden, not reworded" in caplog.text
    finally:
        shipped_wordnet.cache_clear()
    monkeypatch.undo()
    assert CaptionVocabulary("minilm_tokens", [101, 102], words=["jumps"]).rewording(None).substitute("springs") == "jumps"
