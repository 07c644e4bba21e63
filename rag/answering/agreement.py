"""Do two cited articles disagree on a fact? Same fact (dense similarity), different numbers or names.

An answer quotes the sentence the decisions picked. When another article in the context states
the same fact with a different figure or name ("40 Kilometer" on 1 March, "55 Kilometer" a week
later), picking one would hide the disagreement, so the answer shows both quotes with their dates
(`AnswerService._answer_core`). "Same fact" is a cosine similarity between the two sentences'
embeddings at or above `SAME_FACT_THRESHOLD`; "different" is a pure token comparison
(`conflict`): each sentence states a number, or a capitalised name, that the other lacks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.text import ENGLISH_STOPWORDS, GERMAN_STOPWORDS, fold, words

# Cosine similarity (the default embedder, multilingual-e5-small, passage vectors) from which two
# sentences of different articles state the same fact. Measured by scripts/measure_same_fact.py on
# benchmarks/same_fact/pairs.jsonl (52 German pairs: 18 same fact with another figure or name, 16
# restatements, 18 different facts of one topic): best threshold 0.937, accuracy 51/52. Same-fact
# pairs measured 0.943-0.991, different facts 0.833-0.957 (the one above: the AfD's share and the
# turnout of one election, both "... Prozent"). With the token comparison, 50/52 pairs are shown
# right: that pair reads as a disagreement, and "Washington"/"Brüssel" (dictionary words, so read
# as nouns) does not.
SAME_FACT_THRESHOLD = 0.937
# What a disagreement shows for an article without a date.
UNDATED = {"de": "Datum unbekannt", "en": "date unknown"}
# Names are compared by their folded first letters, so inflected forms meet ("Kesslers"/"Kessler").
NAME_PREFIX = 5
# A name conflict is a substitution: at most this many unmatched names on both sides together, and
# at least one shared capitalised word (more unmatched names mean a reworded sentence, not another name).
MAX_NAME_CHANGES = 4

_COMMON = GERMAN_STOPWORDS | ENGLISH_STOPWORDS
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"^\d{1,3}(?:\.\d{3})+$")
_HYPHEN = re.compile(r"[-'’]")
# Number words as news text writes small figures ("knapp drei Stunden"); "ein/eine" is mostly an article.
_NUMBER_WORDS = {w: n for n, w in enumerate("zwei drei vier fünf sechs sieben acht neun zehn elf zwölf".split(), start=2)}
_NUMBER_WORDS.update({"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10})


@dataclass(frozen=True)
class Conflict:
    """What each sentence states that the other does not (folded numbers and name prefixes)."""

    numbers: tuple[frozenset[str], frozenset[str]]
    names: tuple[frozenset[str], frozenset[str]]

    def __bool__(self) -> bool:
        return bool(all(self.numbers) or all(self.names))


def numbers(text: str) -> set[str]:
    """Numbers as written, normalised: "1.500" and "1500" meet, "2,5" becomes "2.5"."""
    out = {str(_NUMBER_WORDS[w.casefold()]) for w in words(text) if w.casefold() in _NUMBER_WORDS}
    for raw in _NUMBER.findall(text):
        raw = raw.rstrip(".,")
        out.add(raw.replace(".", "") if _THOUSANDS.match(raw) else raw.replace(",", "."))
    return out


def names(text: str) -> set[str]:
    """Names, as folded prefixes: the parts of capitalised words after the first that are acronyms
    ("CSU") or no German dictionary word ("Uschakow", "Carolabrücke"). German nouns are capitalised
    too; a reworded sentence ("Teuerung" for "Inflationsrate") must not read as another name."""
    import simplemma

    out = set()
    for index, word in enumerate(words(text)):
        if index == 0 or not word[:1].isupper():
            continue
        for part in _HYPHEN.split(word):
            if len(part) < 2 or part.casefold() in _COMMON or not part[:1].isupper():
                continue
            if (part.isupper() and len(part) <= 5) or not simplemma.is_known(part, lang="de"):
                out.add(fold(part)[:NAME_PREFIX])
    return out


def capitalised(text: str) -> set[str]:
    """Every capitalised word part after the first word, as a folded prefix (what two sentences share)."""
    return {fold(part)[:NAME_PREFIX] for index, word in enumerate(words(text)) if index
            for part in _HYPHEN.split(word) if part[:1].isupper() and part.casefold() not in _COMMON}


def conflict(first: str, second: str) -> Conflict:
    """Each side's numbers and names that the other sentence lacks; truthy when both sides have some."""
    num_a, num_b = numbers(first), numbers(second)
    words_a = {fold(part)[:NAME_PREFIX] for w in words(first) for part in _HYPHEN.split(w)}
    words_b = {fold(part)[:NAME_PREFIX] for w in words(second) for part in _HYPHEN.split(w)}
    only_a, only_b = frozenset(names(first) - words_b), frozenset(names(second) - words_a)
    shared = capitalised(first) & capitalised(second)
    if not shared or len(only_a) + len(only_b) > MAX_NAME_CHANGES:
        only_a = only_b = frozenset()
    return Conflict((frozenset(num_a - num_b), frozenset(num_b - num_a)), (only_a, only_b))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))


def disagreements(picked: list[str], others: list[str], vectors: np.ndarray,
                  threshold: float = SAME_FACT_THRESHOLD) -> list[tuple[int, int, float]]:
    """(picked index, other index, similarity) of each pair that states one fact differently, most
    similar first. `vectors` holds the picked sentences' rows, then the others'."""
    found = []
    for i, text in enumerate(picked):
        for j, other in enumerate(others):
            similarity = cosine(vectors[i], vectors[len(picked) + j])
            if similarity >= threshold and conflict(text, other):
                found.append((i, j, similarity))
    return sorted(found, key=lambda f: -f[2])


def disagreement_text(citations, lead: str, language: str) -> str:
    """The lead-in, then each verbatim quote on its own line after its article's date."""
    undated = UNDATED.get(language, UNDATED["de"])
    return "\n".join([lead, *(f"{c.date or undated}: {' '.join(c.quote.split())} [{c.n}]" for c in citations)])
