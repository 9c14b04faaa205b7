"""Which of the passages given to the model a reply used.

The prompt numbers the passages and asks the model to cite them as [1], [2] (engine.documents.retrieval).
A reply that does so names what it used: :func:`cited_numbers` (markers that name no passage are ignored).
Small models mostly do not (the built-in SmolLM2-135M wrote none in 17 of 23 real replies, its Kelvar
answer among them; the other 6 mostly echoed the prompt's "[1] file" headers), so a reply without markers
is attributed by the app (:func:`matched_scores`): each sentence of the reply is
compared with each passage by the words and word pairs it has that the question does not, and a passage
whose text holds at least :data:`MATCH_THRESHOLD` of some sentence's such words is "matched". Words taken from
the question prove nothing (every retrieved passage shares them), so they are left out; pairs of words
(bigrams) tell a sentence copied or paraphrased closely from a passage from one that only shares its topic.

:func:`attribute` gives each source record (as stored in a reply's ``meta["sources"]``) a ``use``:
``"cited"`` (the reply marks it), ``"matched"`` (no markers in the reply; its wording draws on this passage,
with ``match``, the best sentence's share), or ``"unused"`` (given to the model, neither cited nor matched).
Replies stored before this have no ``use``: :func:`use_of` is None for them, and they are shown as before.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

Use = Literal["cited", "matched", "unused"]
Source = TypeVar("Source", bound=Mapping[str, Any])
USES: tuple[Use, ...] = ("cited", "matched", "unused")

# A sentence draws on a passage when the passage holds more than half of the sentence's evidence (its content
# words and word pairs that are not the question's). Chosen on the built-in model's real replies (temperature
# 0 and 0.8; tests/engine/documents/test_attribution.py, REAL_REPLIES): a sentence taken from a passage scored
# 0.73-1.0 against it (copied, or changed a little: "Tide tables for the northern coast are done." 0.73);
# sentences that do not draw on one scored at most 0.5 against it ("Install the installer." 0.5 against the
# install guide, an echoed "[2] keeper.md, Kelvar lighthouse" 0.44).
MATCH_THRESHOLD = 0.6
# ...and at least this many of its evidence units: one shared word (e.g. "the app") proves nothing.
MIN_SHARED = 2

_MARKER = re.compile(r"\[(\d{1,3}(?:\s*[-–,;]\s*\d{1,3})*)\]")
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?:;。！？：；])\s+|\n+")


def _normal(word: str) -> str:
    # A light plural/verb "s" strip: "sends" and "send", "ships" and "ship" count as one word.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


# Function words (English; in other languages the word pairs still carry the match).
_FUNCTION_WORDS = """
    a an the and or but if then than so of to in on at by for from with without as is are was were
    be been being am do does did doing have has had having it its this that these those there here i
    you he she we they me him her us them my your his our their what which who whom whose when where
    why how not no yes all any some can could will would shall should may might must into about over
    under also just only very more most such one
"""
# Words a reply uses to speak of the task ("According to the sources, the answer is…"), not of the passages.
_TASK_WORDS = (
    " answer question source passage according based provided context mentioned say said state stated"
)
STOPWORDS = frozenset(_normal(w) for w in (_FUNCTION_WORDS + _TASK_WORDS).split())


def cited_numbers(text: str, count: int) -> list[int]:
    """The source numbers (1..``count``) the reply's markers name, in the order first cited: ``[2]``,
    ``[1, 3]``, ``[1][2]``, ``[2-4]``. Numbers outside the sources are ignored."""
    found: list[int] = []
    for marker in _MARKER.finditer(text):
        for part in re.split(r"\s*[,;]\s*", marker.group(1)):
            bounds = re.split(r"\s*[-–]\s*", part)
            low, high = int(bounds[0]), int(bounds[-1])
            if high < low or high - low > count:
                continue
            for number in range(low, high + 1):
                if 1 <= number <= count and number not in found:
                    found.append(number)
    return found


def _words(text: str) -> list[str]:
    return [_normal(w) for w in _WORD.findall(text.lower())]


def _units(words: Sequence[str]) -> set[str]:
    """A text's evidence units: its content words, and its word pairs that hold one ("at noon", "Orla
    Brennick"; not "to the")."""
    units = {w for w in words if _content(w)}
    units.update(f"{a} {b}" for a, b in itertools.pairwise(words) if _content(a) or _content(b))
    return units


def _content(word: str) -> bool:
    return word not in STOPWORDS and (len(word) > 1 or word.isdigit())


def sentences(text: str) -> list[str]:
    """The reply cut into sentences (and lines)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def sentence_scores(sentence: str, passages: Sequence[str], question: str = "") -> list[tuple[float, int]]:
    """For each passage: the share of the sentence's evidence (its units that are not the question's) that
    the passage holds, and how many units that is. (0.0, 0) for a sentence with no evidence of its own."""
    evidence = _units(_words(sentence)) - _units(_words(question))
    if not evidence:
        return [(0.0, 0) for _ in passages]
    scores = []
    for passage in passages:
        shared = len(evidence & _units(_words(passage)))
        scores.append((shared / len(evidence), shared))
    return scores


def matched_scores(reply: str, passages: Sequence[str], question: str = "") -> dict[int, float]:
    """The passages (numbered from 1) some sentence of ``reply`` draws on, with the best sentence's share."""
    units = [_units(_words(p)) for p in passages]
    asked = _units(_words(question))
    best: dict[int, float] = {}
    for sentence in sentences(_MARKER.sub(" ", reply)):  # a marker's number is not the passage's wording
        evidence = _units(_words(sentence)) - asked
        if not evidence:
            continue
        for number, passage_units in enumerate(units, start=1):
            shared = len(evidence & passage_units)
            share = shared / len(evidence)
            if shared >= MIN_SHARED and share >= MATCH_THRESHOLD and share > best.get(number, 0.0):
                best[number] = share
    return best


def attribute(reply: str, sources: Sequence[Mapping[str, Any]], question: str = "") -> list[dict[str, Any]]:
    """``sources`` (records as stored, each with its ``number`` and ``passage``) each with its ``use``; a
    matched one with its ``match`` (0..1, two decimals). Markers win: a reply that cites any given source is
    attributed by its citations alone."""
    numbers = [int(s.get("number", i)) for i, s in enumerate(sources, start=1)]
    cited = set(cited_numbers(reply, max(numbers, default=0)))
    cited &= set(numbers)
    out: list[dict[str, Any]] = []
    if cited:
        for number, source in zip(numbers, sources, strict=True):
            record = _without_use(source)
            record["use"] = "cited" if number in cited else "unused"
            out.append(record)
        return out
    matched = matched_scores(reply, [str(s.get("passage", "")) for s in sources], question)
    for index, source in enumerate(sources, start=1):
        record = _without_use(source)
        if index in matched:
            record["use"] = "matched"
            record["match"] = round(matched[index], 2)
        else:
            record["use"] = "unused"
        out.append(record)
    return out


def _without_use(source: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if k not in ("use", "match")}


def use_of(source: Mapping[str, Any]) -> Use | None:
    """A stored source's ``use``; None for one stored before replies were attributed (or not understood)."""
    use = source.get("use")
    return use if use in USES else None


def used(sources: Iterable[Source]) -> list[Source]:
    return [s for s in sources if use_of(s) in ("cited", "matched")]


Attribution = Literal["cited", "matched", "none", "unknown"]


def grouped(sources: Sequence[Source]) -> tuple[Attribution, list[Source], list[Source]]:
    """How a reply's stored sources are shown: how it was attributed, the used sources, and the others
    (given to the model, not used). ``"unknown"`` for a reply stored before attribution: all are "others"
    then, shown as they always were."""
    if not sources or any(use_of(s) is None for s in sources):
        return "unknown", [], list(sources)
    used_ones = used(sources)
    others = [s for s in sources if use_of(s) == "unused"]
    if not used_ones:
        return "none", [], others
    return ("cited" if use_of(used_ones[0]) == "cited" else "matched"), used_ones, others


HEADINGS: dict[Attribution, str] = {
    "cited": "Sources the reply cites",
    "matched": "Sources the reply draws on (matched by the app to its wording; the reply cites none)",
    "none": "Given to the model; the reply neither cites them nor matches their wording",
    "unknown": "Sources",
}
OTHERS_HEADING = "Also given to the model, not used"
