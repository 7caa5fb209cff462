"""The slice of Princeton WordNet 3.0 the prompt rewording needs (pure Python, no torch).

``backend/assets/wordnet/wordnet30.json.gz`` (built by ``scripts/build_wordnet_extract.py``, licence
beside it) holds WordNet's verbs: every single-word lemma with its synsets in WordNet's sense order
(most frequent sense first), each synset's single-word lemmas and hypernyms, and the irregular
forms ("ran" -> "run"). Only verbs: the rewording reads nothing else (see ``rewording.py``).
"""
from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

EXTRACT_NAME = "wordnet30.json.gz"
ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "wordnet"
POS_FILES = {"v": "verb"}      # part of speech -> WNDB file suffix (n: noun, a: adj, r: adv would add more)
RELATIONS = {"@"}              # hypernym

# WordNet's morphy detachment rules: (suffix, replacement) per part of speech
_DETACHMENTS = {
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
}


class WordNet:
    """Lemmas, senses and relations of the extract; ``synsets`` are numbered rows [lemmas, related]."""

    def __init__(self, data: dict):
        self.synsets: list[list] = data["synsets"]
        self.index: dict[str, dict[str, list[int]]] = {p: t["index"] for p, t in data["pos"].items()}
        self.exceptions: dict[str, dict[str, list[str]]] = {p: t["exceptions"] for p, t in data["pos"].items()}

    @classmethod
    def read(cls, path: str | Path) -> "WordNet":
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def lemmas(self, word: str, pos: str) -> list[str]:
        """Base forms of ``word`` as part of speech ``pos`` (WordNet's morphy): itself if it is a
        lemma, its irregular bases, then the regular detachments that give a lemma."""
        word = word.lower()
        index = self.index[pos]
        out = [word] if word in index else []
        for base in self.exceptions[pos].get(word, []):
            if base in index and base not in out:
                out.append(base)
        for suffix, replacement in _DETACHMENTS[pos]:
            if word.endswith(suffix) and len(word) > len(suffix):
                base = word[: len(word) - len(suffix)] + replacement
                if base in index and base not in out:
                    out.append(base)
        return out

    def senses(self, lemma: str, pos: str) -> list[int]:
        """The synsets of ``lemma`` (a base form), most frequent sense first."""
        return self.index[pos].get(lemma, [])

    def synonyms(self, synset: int) -> list[str]:
        return self.synsets[synset][0]

    def related(self, synset: int) -> list[int]:
        """Hypernyms: the more general concepts ("hop" -> "jump")."""
        return self.synsets[synset][1]


@functools.lru_cache(maxsize=1)
def shipped_wordnet() -> WordNet:
    """The extract in backend/assets/wordnet (read once)."""
    return WordNet.read(ASSET_DIR / EXTRACT_NAME)
