"""Reword a prompt's unseen words with a WordNet relative the model was trained on (pure Python).

A model trained on a small caption vocabulary (the embedded demo model) cannot read a word it never
saw: its condition row is hidden (``text_tokens.CaptionVocabulary``) and only the sentence embedding
carries it, which for "a person springs upward" is closer to "reaches upward" than to "jumps".
WordNet knows that to spring is to jump. For each unseen word this module looks, in WordNet's sense
order (most frequent sense first), at the word's synonyms and then its hypernyms ("hop" is a way to
"jump", "amble" a way to "walk") for a word of the training captions, in the same inflection where
the captions have it ("springs" -> "jumps"). Only verbs are reworded: prompts describe actions,
and the noun and adjective senses of other words ("top speed" -> "side", "stool" -> "seat") were
wrong more often than right when tried.
"""
from __future__ import annotations

import re

from .wordnet import WordNet

HYPERNYM_DEPTH = 1          # "amble" -> "walk": one step up; two reach "travel, go, move" for most motions
HYPERNYM_COST = 2           # a hypernym of the first sense ranks with the synonyms of the third
MAX_COST = 3
# function words WordNet happens to list ("can" the container, "it" information technology): kept as typed
FUNCTION_WORDS = frozenset(
    "a an the this that these those it its he she they them him her his hers their theirs who whom which "
    "what i me my we us our you your can could will would shall should may might must be is are was were "
    "been being am have has had do does did not no so as by or if than too very".split())
# verbs too general to carry a motion ("settle" is a way to "put", "lunge" a way to "move"): never a replacement
LIGHT_VERBS = frozenset("be have do make get give take put set let go come keep hold move".split())
_WORD = re.compile(r"[A-Za-z]+(?:-[A-Za-z]+)*")


def _inflection(word: str, lemma: str) -> str:
    """How ``word`` is formed from its base ``lemma``: base, s, ing, ed."""
    if word == lemma:
        return "base"
    for suffix in ("ing", "s", "ed"):
        if word.endswith(suffix):
            return suffix
    return "ed"    # irregular past forms ("ran", "sprang")


class PromptRewording:
    """known_words: the lower-case words of the model's training captions."""

    def __init__(self, known_words, wordnet: WordNet):
        self.known_words = frozenset(w.lower() for w in known_words)
        self.wordnet = wordnet
        # verb lemma -> {inflection: known word}
        self._known_forms: dict[str, dict[str, str]] = {}
        for word in sorted(self.known_words):
            for lemma in wordnet.lemmas(word, "v"):
                self._known_forms.setdefault(lemma, {}).setdefault(_inflection(word, lemma), word)

    def _known_form(self, lemma: str, inflection: str) -> str | None:
        """The training captions' word for verb ``lemma`` in the same inflection ("jump", "s" -> "jumps")."""
        if lemma in LIGHT_VERBS:
            return None
        return self._known_forms.get(lemma, {}).get(inflection)

    def substitute(self, word: str) -> str | None:
        """A known verb for ``word`` (None when WordNet relates none closely enough).

        Candidates are the synonyms of each verb sense of ``word`` and of its hypernyms; each costs
        its sense's rank (0 = most frequent) plus HYPERNYM_COST per level up, the cheapest known one
        wins, and none above MAX_COST is taken (a rare sense's synonym is more often wrong than right:
        "settle" has 22 senses). An unseen form of a known verb ("sit" when the captions say "sits")
        becomes that verb's known form."""
        word = word.lower()
        for lemma in self.wordnet.lemmas(word, "v"):
            forms = self._known_forms.get(lemma)
            if forms and lemma not in LIGHT_VERBS:
                inflection = _inflection(word, lemma)
                return forms.get(inflection) or next(forms[k] for k in ("s", "ing", "base", "ed") if k in forms)
        best = None   # (cost, form)
        for lemma in self.wordnet.lemmas(word, "v"):
            inflection = _inflection(word, lemma)
            for rank, sense in enumerate(self.wordnet.senses(lemma, "v")[: MAX_COST + 1]):
                level = [sense]
                for depth in range(HYPERNYM_DEPTH + 1):
                    cost = rank + HYPERNYM_COST * depth
                    if cost > MAX_COST or (best and cost >= best[0]):
                        break
                    for synset in level:
                        for synonym in self.wordnet.synonyms(synset):
                            form = self._known_form(synonym, inflection) if synonym != lemma else None
                            if form and (best is None or cost < best[0]):
                                best = (cost, form)
                    level = [r for s in level for r in self.wordnet.related(s)]
        return best[1] if best else None

    def reword(self, prompt: str, unseen_words: list[str]) -> tuple[str, dict[str, str]]:
        """-> (prompt with each unseen word that WordNet relates to a known word replaced, {typed
        word: its replacement}). A hyphenated word counts whole when any part of it is unseen
        ("about-face" -> "turn"; the tokenizer names only "about"). A capital first letter is kept."""
        unseen = set(unseen_words)
        pieces, replacements, end = [], {}, 0
        for match in _WORD.finditer(prompt):
            word = match.group(0)
            lower = word.lower()
            if not (word in unseen or unseen.intersection(word.split("-"))):
                continue
            if lower in self.known_words or lower in FUNCTION_WORDS:
                continue
            new = replacements.get(word) or self.substitute(word)
            if new:
                replacements[word] = new[0].upper() + new[1:] if word[0].isupper() else new
                pieces += [prompt[end:match.start()], replacements[word]]
                end = match.end()
        return "".join(pieces) + prompt[end:], replacements
