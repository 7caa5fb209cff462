"""Captions for corpus clips: a small grammar (subjects x verb phrases x sentence frames) with
synonyms, HumanML3D-style token/POS strings, and a held-out paraphrase list for evaluation.

Verb phrases are written with ``[verb]`` for a verb to conjugate, ``{poss}`` for a possessive
that agrees with the subject ("his" / "her" / "their" / "the") and ``{self}`` for a reflexive.
``producible(text)`` tells whether the grammar can generate a sentence at all, which is how the
held-out paraphrases are guaranteed never to appear in training captions.
"""
from __future__ import annotations

import re
from itertools import product

import numpy as np

from .base import Phrase

SUBJECTS = ("a person", "someone", "a man", "a woman", "the person", "the figure", "a human",
            "the man", "the woman")
_POSSESSIVES = {"man": ("his", "the"), "woman": ("her", "the")}
_REFLEXIVES = {"man": "himself", "woman": "herself"}

# lemma -> (third person singular, -ing form) where the regular rules do not apply.
_IRREGULAR = {"do": ("does", "doing"), "run": ("runs", "running"), "jog": ("jogs", "jogging"),
              "step": ("steps", "stepping"), "sidestep": ("sidesteps", "sidestepping"),
              "squat": ("squats", "squatting"), "sit": ("sits", "sitting"), "get": ("gets", "getting"),
              "put": ("puts", "putting"), "stop": ("stops", "stopping"), "clap": ("claps", "clapping"),
              "stay": ("stays", "staying"), "sway": ("sways", "swaying"), "lie": ("lies", "lying")}


def conjugate(lemma: str, form: str) -> str:
    """form: 'lemma', '3sg' (walks) or 'ing' (walking)."""
    if form == "lemma":
        return lemma
    if lemma in _IRREGULAR:
        return _IRREGULAR[lemma][0 if form == "3sg" else 1]
    if form == "3sg":
        return lemma + ("es" if re.search(r"(s|sh|ch|x|o)$", lemma) else "s")
    if lemma.endswith("e") and not lemma.endswith("ee"):
        return lemma[:-1] + "ing"
    return lemma + "ing"


COUNT_ADVERBS = {1: ("once",), 2: ("twice", "two times"), 3: ("three times",), 4: ("four times",),
                 5: ("five times",), 6: ("six times",)}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}
SIDE_WORDS = ("left", "right")


def _with(bases, suffixes):
    return [f"{b} {s}".strip() for b, s in product(bases, suffixes)]


# ---------------------------------------------------------------------------------------------
# verb phrases per action
# ---------------------------------------------------------------------------------------------
_WALK_FORWARD = ["[walk] forward", "[walk] straight ahead", "[walk] ahead", "[walk] straight",
                 "[walk] forwards", "[move] forward", "[take] steps forward", "[walk] in a straight line"]
_PACE = {"slow": ["slowly", "at a slow pace", "leisurely"], "normal": ["", "at a normal pace", "steadily"],
         "fast": ["quickly", "fast", "briskly", "at a fast pace", "hurriedly"]}
_TURN_WORDS = {"left": ["[turn] left", "[turn] to the left", "[turn] to {poss} left", "[make] a left turn",
                        "[turn] ninety degrees to the left"],
               "right": ["[turn] right", "[turn] to the right", "[turn] to {poss} right", "[make] a right turn",
                         "[turn] ninety degrees to the right"],
               "around": ["[turn] around", "[turn] all the way around", "[turn] back", "[make] a half turn",
                          "[turn] one hundred and eighty degrees", "[turn] to face the other way",
                          "[do] a half turn", "[do] a u-turn", "[make] a u-turn", "[reverse] direction",
                          "[face] the other way", "[turn] to face backward"]}


def _locomotion(s: dict) -> list[str]:
    kind, direction, pace = s["kind"], s["direction"], s.get("pace", "normal")
    if direction == "backward":
        bases = ["[walk] backward", "[walk] backwards", "[step] backward", "[move] backward",
                 "[walk] in reverse", "[back] up"]
    elif direction in SIDE_WORDS:
        d = direction
        bases = [f"[walk] sideways to the {d}", f"[step] to the {d}", f"[sidestep] to the {d}",
                 f"[shuffle] sideways to the {d}", f"[move] sideways to the {d}", f"[side] step to {{poss}} {d}"]
    elif kind == "walk":
        bases = _with(_WALK_FORWARD, _PACE[pace])
    elif kind == "jog":
        bases = ["[jog]", "[jog] forward", "[jog] ahead", "[jog] straight", "[jog] at an easy pace"]
    elif pace == "fast":
        bases = ["[sprint]", "[sprint] forward", "[run] fast", "[run] quickly", "[run] forward very fast",
                 "[run] at full speed"]
    else:
        bases = ["[run]", "[run] forward", "[run] ahead", "[run] straight", "[run] straight ahead"]
    if s.get("curve"):
        d = s["curve"]
        verb = {"walk": "walk", "jog": "jog", "run": "run"}[kind]
        bases = ([f"[{verb}] in a circle", f"[{verb}] around in a circle", f"[{verb}] in a full circle",
                  f"[{verb}] in a circle to the {d}"] if s.get("circle") else
                 [f"[{verb}] in a curve to the {d}", f"[{verb}] along a curved path to the {d}",
                  f"[{verb}] in an arc to the {d}", f"[{verb}] forward while curving {d}"])
    if s.get("turn"):
        bases = [f"{b} {c} {t}" for b in bases[:4] for c in ("then", "and then", "and")
                 for t in _TURN_WORDS[s["turn"]]]
    if s.get("stop") and not s.get("turn") and not s.get("curve"):
        bases = bases + _with(bases[:6], ["and [stop]", "then [stop]", "and then [stop]", "before stopping"])
    return bases


def _turn(s):
    extra = {"left": ["[rotate] to the left", "[turn] left in place"],
             "right": ["[rotate] to the right", "[turn] right in place"],
             "around": ["[turn] around in place", "[turn] around on the spot"]}[s["turn"]]
    return _TURN_WORDS[s["turn"]] + extra


def _jump(s):
    count, forward = s["count"], s["forward"]
    if forward:
        bases = ["[jump] forward", "[jump] forwards", "[jump] ahead", "[jump] forward with both feet",
                 "[do] a long jump", "[jump] a short distance forward"]
    else:
        bases = ["[jump]", "[jump] up", "[jump] in place", "[jump] straight up", "[jump] up high",
                 "[jump] into the air", "[jump] upward", "[jump] straight upward", "[bounce] up off the ground",
                 "[push] off the ground and [jump] up"]
    if count == 1:
        return bases + ([] if forward else ["[do] a jump", "[jump] once"])
    more = _with(["[jump] forward", "[jump] ahead"] if forward else ["[jump]", "[jump] up", "[jump] in place",
                                                                   "[jump] up and down"], COUNT_ADVERBS[count])
    return more + [f"[do] {NUMBER_WORDS[count]} jumps" + (" forward" if forward else ""),
                   f"[jump] {NUMBER_WORDS[count]} times in a row" + (" forward" if forward else "")]


def _jacks(s):
    n = NUMBER_WORDS[s["count"]]
    return ["[do] jumping jacks", f"[do] {n} jumping jacks", "[perform] jumping jacks",
            f"[perform] {n} jumping jacks", "[do] star jumps", "[jump] while spreading {poss} arms and legs"]


def _squat(s):
    n = s["count"]
    if n == 1:
        return ["[squat] down", "[squat] down and [stand] back up", "[do] a squat", "[squat]",
                "[crouch] down and [get] back up", "[bend] {poss} knees into a squat"]
    return ["[do] squats", f"[do] {NUMBER_WORDS[n]} squats", *_with(["[squat]", "[squat] down and up"], COUNT_ADVERBS[n])]


def _sit_down(s):
    return ["[sit] down", "[sit] down on a chair", "[take] a seat", "[sit] down on a seat",
            "[sit] on a chair", "[lower] {self} onto a chair", "[sit] down in a chair"]


def _stand_up(s):
    return ["[stand] up", "[stand] up from a chair", "[get] up from the chair", "[rise] from a seated position",
            "[get] up", "[stand] up from sitting"]


def _wave(s):
    hand = s["hand"]
    if hand == "both":
        return ["[wave] with both hands", "[wave] both arms above {poss} head", "[wave] both hands in the air",
                "[raise] both hands and [wave]", "[wave] with both arms"]
    bases = [f"[wave] with {{poss}} {hand} hand", f"[wave] {{poss}} {hand} hand", f"[raise] {{poss}} {hand} hand and [wave]",
             f"[wave] with the {hand} arm", f"[wave] hello with {{poss}} {hand} hand",
             f"[wave] {{poss}} {hand} hand above {{poss}} head", f"[wave] {{poss}} {hand} arm in the air"]
    return bases + (["[wave]", "[wave] hello"] if hand == "right" else [])


def _raise_arms(s):
    which, direction, times = s["which"], s["direction"], s.get("times", 1)
    if which != "both":
        bases = [f"[raise] {{poss}} {which} arm", f"[raise] the {which} hand", f"[lift] {{poss}} {which} arm above {{poss}} head",
                 f"[put] {{poss}} {which} hand up", f"[raise] {{poss}} {which} arm up high"]
    elif direction == "up":
        bases = ["[raise] both arms", "[raise] both arms above {poss} head", "[raise] {poss} arms up",
                 "[lift] both hands over {poss} head", "[put] {poss} hands up", "[raise] {poss} hands in the air",
                 "[reach] up with both arms"]
    elif direction == "forward":
        bases = ["[raise] both arms in front", "[stretch] {poss} arms out in front", "[hold] {poss} arms straight out in front",
                 "[raise] {poss} arms forward", "[lift] both arms to shoulder height in front"]
    else:
        bases = ["[raise] {poss} arms to the sides", "[stretch] {poss} arms out to the sides",
                 "[hold] {poss} arms out horizontally", "[spread] {poss} arms wide", "[lift] both arms out sideways"]
    return bases if times == 1 else _with(bases[:3], ["twice", "two times"])


def _clap(s):
    n, overhead = s["count"], s["overhead"]
    if overhead:
        return ["[clap] above {poss} head", "[clap] {poss} hands over {poss} head", "[clap] with {poss} hands raised high"]
    counted = COUNT_ADVERBS.get(n, ())
    return ["[clap]", "[clap] {poss} hands", "[applaud]", "[clap] {poss} hands together",
            *_with(["[clap]", "[clap] {poss} hands"], counted)]


def _punch(s):
    hand, n = s["hand"], s["count"]
    if hand == "alternate":
        return ["[throw] punches", "[punch] with both fists", "[box]", "[throw] a series of punches",
                "[punch] the air", "[punch] left and right", "[throw] left and right punches"]
    bases = [f"[punch] with {{poss}} {hand} hand", f"[punch] forward with the {hand} fist", f"[throw] a {hand} punch",
             f"[punch] with {{poss}} {hand} arm", f"[jab] with {{poss}} {hand} hand"]
    if n > 1:
        bases = bases[:1] + [f"[throw] punches with {{poss}} {hand} arm"] + _with(bases[:2], COUNT_ADVERBS.get(n, ()))
    return bases


def _bow(s):
    return {"slight": ["[give] a slight bow", "[bow] slightly", "[bow] a little", "[bow] {poss} head and shoulders"],
            "normal": ["[bow]", "[bow] forward", "[take] a bow", "[bow] down", "[bend] forward in a bow"],
            "deep": ["[bow] deeply", "[bow] down low", "[make] a deep bow", "[bend] forward at the waist",
                     "[bow] all the way down"]}[s["depth"]]


def _kick(s):
    leg, n = s["leg"], s["count"]
    bases = [f"[kick] with {{poss}} {leg} leg", f"[kick] with the {leg} foot", f"[kick] forward with {{poss}} {leg} leg",
             f"[do] a {leg} kick", f"[kick] {{poss}} {leg} leg out", f"[kick] the air with {{poss}} {leg} foot",
             f"[kick] high with {{poss}} {leg} leg"]
    return bases if n == 1 else bases[:2] + _with(bases[:3], COUNT_ADVERBS[n])


def _idle(s):
    return {"still": ["[stand] still", "[stand] in place", "[stand] there", "[stand] without moving", "[stay] still",
                      "[remain] standing", "[stand] quietly", "[stand] idle"],
            "look": ["[look] around", "[stand] and [look] around", "[look] left and right", "[stand] still and [look] around"],
            "shift": ["[shift] {poss} weight from foot to foot", "[sway] from side to side", "[rock] from side to side",
                      "[shift] {poss} weight side to side"]}[s["variant"]]


VERB_PHRASES = {"locomotion": _locomotion, "turn": _turn, "jump": _jump, "jumping_jacks": _jacks,
                "squat": _squat, "sit_down": _sit_down, "stand_up": _stand_up, "wave": _wave,
                "raise_arms": _raise_arms, "clap": _clap, "punch": _punch, "bow": _bow, "kick": _kick,
                "idle": _idle}


def verb_phrases(phrase: Phrase) -> list[str]:
    return VERB_PHRASES[phrase.action](phrase.slots)


# ---------------------------------------------------------------------------------------------
# sentences
# ---------------------------------------------------------------------------------------------
SINGLE_FRAMES = ("{S} {A}", "{S} {A}", "{S} is {A:ing}")          # simple present twice as likely
DOUBLE_FRAMES = ("{S} {A} then {B}", "{S} {A} and then {B}", "{S} {A}, then {B}", "{S} {A} and {B}",
                 "{S} {A} before {B:ing}", "after {A:ing}, {S} {B}", "{S} first {A} and then {B}")


def render(vp: str, form: str, subject: str) -> str:
    """Fill a verb phrase for a subject: conjugate [verbs] and agree {poss} / {self}."""
    noun = subject.split()[-1]
    vp = vp.replace("{self}", _REFLEXIVES.get(noun, "themselves"))
    return re.sub(r"\[(\w+)\]", lambda m: conjugate(m.group(1), form), vp)


def _possessives(subject: str) -> tuple[str, ...]:
    return _POSSESSIVES.get(subject.split()[-1], ("their", "the", "his"))


def _fill(frame: str, subject: str, vps: list[str], poss: str) -> str:
    text = frame.replace("{S}", subject)
    for slot, vp in zip("AB", vps):
        text = text.replace("{" + slot + ":ing}", render(vp, "ing", subject)).replace("{" + slot + "}", render(vp, "3sg", subject))
    return re.sub(r"\s+", " ", text.replace("{poss}", poss)).strip()


def sample_captions(phrases: list[Phrase], rng: np.random.Generator, count: int = 3) -> list[str]:
    """``count`` distinct captions describing the phrases in order (one or two actions)."""
    options = [verb_phrases(p) for p in phrases]
    frames = SINGLE_FRAMES if len(phrases) == 1 else DOUBLE_FRAMES
    out: list[str] = []
    for _ in range(50 * count):
        subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
        poss = _possessives(subject)[int(rng.integers(len(_possessives(subject))))]
        frame = frames[int(rng.integers(len(frames)))]
        vps = [opts[int(rng.integers(len(opts)))] for opts in options]
        text = _fill(frame, subject, vps, poss)
        if text not in out:
            out.append(text)
        if len(out) == count:
            break
    return out


def all_single_captions(phrase: Phrase) -> set[str]:
    """Every caption the grammar can produce for one phrase."""
    out = set()
    for subject, frame, vp in product(SUBJECTS, set(SINGLE_FRAMES), verb_phrases(phrase)):
        for poss in (_possessives(subject) if "{poss}" in vp else ("",)):
            out.add(_fill(frame, subject, [vp], poss))
    return out


# ---------------------------------------------------------------------------------------------
# HumanML3D text lines
# ---------------------------------------------------------------------------------------------
_POS = {
    "DET": "a an the both their his her each every".split(),
    "PRON": "someone himself herself themselves".split(),
    "ADP": "with to in on at from above over onto of along into before after like out up down off".split(),
    "CCONJ": "and".split(),
    "AUX": "is".split(),
    "NUM": "one two three four five six seven eight hundred ninety".split(),
    "ADJ": ("left right slow normal fast easy full short long slight deep straight seated curved high wide "
            "star quarter half").split(),
    "ADV": ("forward forwards backward backwards ahead sideways around back then slowly quickly briskly "
            "hurriedly leisurely steadily still there quietly idle once twice times very deeply slightly upward "
            "little together first horizontally high low all way away again apart").split(),
}
_LEMMA = {"arms": "arm", "hands": "hand", "legs": "leg", "feet": "foot", "steps": "step", "squats": "squat",
          "jumps": "jump", "punches": "punch", "jacks": "jack", "fists": "fist", "knees": "knee",
          "times": "time", "shoulders": "shoulder", "degrees": "degree", "sides": "side", "is": "be"}


def _verb_lemmas() -> dict[str, str]:
    """Every conjugated form of every verb used in the grammar -> its lemma."""
    lemmas = set()
    for vp in _all_verb_phrase_texts():
        lemmas.update(re.findall(r"\[(\w+)\]", vp))
    table = {}
    for lemma in lemmas:
        for form in ("lemma", "3sg", "ing"):
            table[conjugate(lemma, form)] = lemma
    table["stopping"] = "stop"
    table["curving"] = "curve"
    table["spreading"] = "spread"
    table["sitting"] = "sit"
    return table


def _all_verb_phrase_texts() -> list[str]:
    texts = []
    for phrase in enumerate_phrases():
        texts.extend(verb_phrases(phrase))
    return texts


_VERB_TABLE: dict[str, str] | None = None


def tag_word(word: str) -> tuple[str, str]:
    """(lemma, coarse POS) of a caption word; approximate, like spaCy's output in HumanML3D."""
    global _VERB_TABLE
    if _VERB_TABLE is None:
        _VERB_TABLE = _verb_lemmas()
    if word == ",":
        return ",", "PUNCT"
    for pos, words in _POS.items():
        if word in words:
            return _LEMMA.get(word, word), pos
    if word in _VERB_TABLE:
        return _VERB_TABLE[word], "VERB"
    return _LEMMA.get(word, word), "NOUN"


def humanml_line(caption: str) -> str:
    """``caption#word/POS word/POS ...#0.0#0.0`` (the whole clip)."""
    words = caption.replace(",", " , ").split()
    tokens = " ".join("{}/{}".format(*tag_word(w)) for w in words)
    return f"{caption}#{tokens}#0.0#0.0"


# ---------------------------------------------------------------------------------------------
# enumeration and held-out paraphrases
# ---------------------------------------------------------------------------------------------
def enumerate_phrases() -> list[Phrase]:
    """Every Phrase the families can emit (slot combinations), for exhaustive checks."""
    out = []
    for kind, direction, pace, stop in product(("walk", "jog", "run"), ("forward", "backward", "left", "right"),
                                               ("slow", "normal", "fast"), (False, True)):
        if (kind, pace) in (("jog", "slow"), ("jog", "fast"), ("run", "slow")):
            continue
        out.append(Phrase("locomotion", dict(kind=kind, direction=direction, pace=pace, stop=stop)))
        if direction == "forward":
            for turn in ("left", "right", "around"):
                out.append(Phrase("locomotion", dict(kind=kind, direction=direction, pace=pace, stop=stop, turn=turn)))
            for curve, circle in product(("left", "right"), (False, True)):
                out.append(Phrase("locomotion", dict(kind=kind, direction=direction, pace=pace, stop=stop,
                                                     curve=curve, circle=circle)))
    out += [Phrase("turn", {"turn": t}) for t in ("left", "right", "around")]
    out += [Phrase("jump", {"count": c, "forward": f}) for c in (1, 2, 3) for f in (False, True)]
    out += [Phrase("jumping_jacks", {"count": c}) for c in range(2, 7)]
    out += [Phrase("squat", {"count": c}) for c in range(1, 5)]
    out += [Phrase("sit_down", {}), Phrase("stand_up", {})]
    out += [Phrase("wave", {"hand": h}) for h in ("left", "right", "both")]
    out += [Phrase("raise_arms", {"which": w, "direction": d, "times": k}) for w in ("both", "left", "right")
            for d in ("up", "forward", "sides") for k in (1, 2) if w == "both" or d == "up"]
    out += [Phrase("clap", {"count": c, "overhead": o}) for c in range(3, 9) for o in (False, True)]
    out += [Phrase("punch", {"hand": h, "count": c}) for h in ("left", "right", "alternate") for c in range(1, 6)]
    out += [Phrase("bow", {"depth": d}) for d in ("slight", "normal", "deep")]
    out += [Phrase("kick", {"leg": g, "count": c}) for g in ("left", "right") for c in (1, 2, 3)]
    out += [Phrase("idle", {"variant": v}) for v in ("still", "look", "shift")]
    return out


def producible(text: str) -> bool:
    """Can the caption grammar generate ``text`` (single- or two-action)? Exact match after
    lower-casing and whitespace normalisation."""
    text = re.sub(r"\s+", " ", text.lower()).strip()
    singles = _single_caption_set()
    if text in singles:
        return True
    vp_index = _vp_render_index()
    for subject in SUBJECTS:
        for frame in DOUBLE_FRAMES:
            pattern = re.escape(frame).replace(re.escape("{S}"), re.escape(subject))
            pattern = pattern.replace(re.escape("{A:ing}"), "(?P<a_ing>.+)").replace(re.escape("{B:ing}"), "(?P<b_ing>.+)")
            pattern = pattern.replace(re.escape("{A}"), "(?P<a>.+)").replace(re.escape("{B}"), "(?P<b>.+)")
            m = re.fullmatch(pattern, text)
            if m and all(v in vp_index[("ing" if k.endswith("_ing") else "3sg", subject)] for k, v in m.groupdict().items() if v):
                return True
    return False


_SINGLES: set[str] | None = None
_VP_INDEX: dict | None = None


def _single_caption_set() -> set[str]:
    global _SINGLES
    if _SINGLES is None:
        _SINGLES = set().union(*(all_single_captions(p) for p in enumerate_phrases()))
    return _SINGLES


def _vp_render_index() -> dict:
    global _VP_INDEX
    if _VP_INDEX is None:
        vps = set(_all_verb_phrase_texts())
        _VP_INDEX = {}
        for subject, form in product(SUBJECTS, ("3sg", "ing")):
            _VP_INDEX[(form, subject)] = {re.sub(r"\s+", " ", render(vp, form, subject).replace("{poss}", p)).strip()
                                          for vp in vps for p in (_possessives(subject) if "{poss}" in vp else ("",))}
    return _VP_INDEX


# Phrasings the grammar never produces (checked by producible() in the tests), with the family
# they describe and the acceptance measure they should satisfy. Some use words that appear in no
# training caption at all ("strolls", "hops", "leaps", "about-face", ...): they test whether the
# text encoder carries the model beyond its training vocabulary.
HELD_OUT_PARAPHRASES = (
    {"text": "someone strolls ahead", "family": "walk", "measure": "forward_displacement"},
    {"text": "a person ambles forward at an easy pace", "family": "walk", "measure": "forward_displacement"},
    {"text": "a man moves ahead on foot", "family": "walk", "measure": "forward_displacement"},
    {"text": "the woman dashes forward as fast as she can", "family": "run", "measure": "mean_horizontal_speed"},
    {"text": "a person races ahead at top speed", "family": "run", "measure": "mean_horizontal_speed"},
    {"text": "the man hops up and down", "family": "jump", "measure": "pelvis_rise"},
    {"text": "someone leaps up into the air", "family": "jump", "measure": "pelvis_rise"},
    {"text": "a person springs upward", "family": "jump", "measure": "pelvis_rise"},
    {"text": "someone settles into a chair", "family": "sit_down", "measure": "pelvis_lowering"},
    {"text": "a person lowers down to sit on a stool", "family": "sit_down", "measure": "pelvis_lowering"},
    {"text": "a person greets someone by waving the right hand over the head", "family": "wave",
     "measure": "wrist_above_head_fraction:right"},
    {"text": "the man lifts his right hand high and waves it", "family": "wave",
     "measure": "wrist_above_head_fraction:right"},
    {"text": "someone does an about-face", "family": "turn", "measure": "heading_change:180"},
    {"text": "a person spins around to face the opposite direction", "family": "turn", "measure": "heading_change:180"},
    {"text": "a man boots the air with his left foot", "family": "kick", "measure": "ankle_raise:left"},
    {"text": "a person does a front kick using the left leg", "family": "kick", "measure": "ankle_raise:left"},
)
