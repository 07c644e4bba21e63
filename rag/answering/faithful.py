"""Is an English rendering faithful to its German quote? Checked by code, never by the model.

The English answer is a rendering of the chosen German sentences; it may say no more than they
do. Four checks, each a kind of drift seen in English answers: numbers and dates ("18. März"
rendered as "about 18 minutes"), names and places ("in Washington" for a quote that says "Air
Force One"), negations (a flipped "nicht"), and meaning (a cross-lingual similarity between the
rendering and the quote below the fitted threshold). A rendering that fails any check is not
shown; the answer is then the German quote with a one-line English note.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

NUMBER_WORDS = {
    # English and German number words up to twenty, and the round ones news text uses
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "hundred": 100, "thousand": 1000,
    "null": 0, "eins": 1, "ein": 1, "eine": 1, "einen": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5,
    "sechs": 6, "sieben": 7, "acht": 8, "neun": 9, "zehn": 10, "elf": 11, "zwölf": 12, "dreizehn": 13,
    "vierzehn": 14, "fünfzehn": 15, "sechzehn": 16, "siebzehn": 17, "achtzehn": 18, "neunzehn": 19,
    "zwanzig": 20, "dreißig": 30, "vierzig": 40, "fünfzig": 50, "hundert": 100, "tausend": 1000,
    "first": 1, "second": 2, "third": 3, "erste": 1, "ersten": 1, "erster": 1, "zweite": 2, "zweiten": 2, "dritte": 3,
    "half": 0.5, "halb": 0.5, "halbe": 0.5, "hälfte": 0.5, "once": 1, "twice": 2, "einmal": 1, "zweimal": 2,
}
# "one"/"ein" are articles as often as numbers: a rendering may add or drop them freely.
SOFT_NUMBERS = {1}
MONTHS = {
    "january": 1, "januar": 1, "jänner": 1, "february": 2, "februar": 2, "march": 3, "märz": 3, "april": 4,
    "may": 5, "mai": 5, "june": 6, "juni": 6, "july": 7, "juli": 7, "august": 8, "september": 9,
    "october": 10, "oktober": 10, "november": 11, "december": 12, "dezember": 12,
    "monday": 101, "montag": 101, "tuesday": 102, "dienstag": 102, "wednesday": 103, "mittwoch": 103,
    "thursday": 104, "donnerstag": 104, "friday": 105, "freitag": 105, "saturday": 106, "samstag": 106,
    "sonnabend": 106, "sunday": 107, "sonntag": 107,
}
ENGLISH_NEGATIONS = frozenset("not no never none nobody nothing neither nor without cannot n't".split())
GERMAN_NEGATIONS = frozenset(
    "nicht kein keine keinen keinem keiner keines nie niemals nichts niemand weder noch ohne".split()
)
# Capitalised English words that are no names (sentence starts, titles, pronouns, weekdays are dates).
ENGLISH_COMMON_CAPITALS = frozenset(
    """i the a an he she it they we you his her their its this that these those there then when what who
    why how where which after before while if but and or so as at in on of for to from with by about
    according also however meanwhile yet still mr mrs ms dr president prime minister chancellor
    secretary state foreign defence defense envoy spokesman spokeswoman minister's article articles
    us u.s. usa""".split()
)
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)


@dataclass
class FaithfulnessReport:
    problems: list[str] = field(default_factory=list)
    similarity: float | None = None

    @property
    def faithful(self) -> bool:
        return not self.problems


def fold(text: str) -> str:
    """Lower case without accents, and the spellings that transliterate the same name apart
    (Selenskyj / Zelensky, Leschtschenko / Leshchenko, Uschakow / Ushakov)."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    for a, b in (("sch", "sh"), ("tsch", "ch"), ("zh", "sh"), ("ck", "k"), ("w", "v"), ("z", "s"),
                 ("y", "j"), ("ij", "i"), ("ji", "i"), ("ph", "f"), ("c", "k"), ("ee", "e"), ("ss", "s")):
        text = text.replace(a, b)
    return text


def numbers(text: str) -> set[tuple[float, str]]:
    """(value, role): a number next to a month is a day of the month ("18. März", "March 18"),
    any other a quantity; "18 minutes" is then no rendering of "18. März"."""
    tokens = _TOKEN.findall(text)
    found: set[tuple[float, str]] = set()
    for position, token in enumerate(tokens):
        if token[0].isdigit():
            grouped = re.fullmatch(r"\d{1,3}([.,]\d{3})+", token)  # 1.000 (de) or 1,000 (en)
            plain = re.sub(r"[.,]", "", token) if grouped else token.replace(",", ".")
            try:
                value = float(plain)
            except ValueError:
                continue
        elif token.casefold() in NUMBER_WORDS:
            value = float(NUMBER_WORDS[token.casefold()])
        else:
            continue
        near = tokens[max(0, position - 2):position] + tokens[position + 1:position + 3]
        role = "day" if any(t.casefold() in MONTHS and MONTHS[t.casefold()] <= 12 for t in near) else "count"
        found.add((value, role))
    return found


def dates(text: str) -> set[int]:
    return {MONTHS[t.casefold()] for t in _TOKEN.findall(text) if t.casefold() in MONTHS}


def negated(text: str, negations: frozenset[str]) -> bool:
    folded = text.casefold().replace("’", "'")
    return "n't" in folded or any(t in negations for t in _TOKEN.findall(folded))


def names(text: str) -> list[str]:
    """Capitalised words that are not the first word of a sentence, nor common English words."""
    found = []
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n", text):
        tokens = _TOKEN.findall(sentence)
        for token in tokens:
            if token[0].isupper() and token.casefold() not in ENGLISH_COMMON_CAPITALS and token.casefold() not in MONTHS:
                found.append(token)
    return found


def _name_in(name: str, quote_words: list[str]) -> bool:
    target = fold(name)
    for word in quote_words:
        candidate = fold(word)
        if candidate.startswith(target[:5]) and len(target) >= 5:
            return True
        if difflib.SequenceMatcher(None, target, candidate).ratio() >= 0.75:
            return True
    return False


def check_rendering(
    quote: str,
    rendering: str,
    similarity: Callable[[str, str], float] | None = None,
    min_similarity: float = 0.0,
    allowed_names: frozenset[str] = frozenset(),
) -> FaithfulnessReport:
    """Every problem that makes the rendering say more than, or other than, the quote."""
    report = FaithfulnessReport()
    extra_numbers = {n for n in numbers(rendering) - numbers(quote) if n[0] not in SOFT_NUMBERS}
    if extra_numbers:
        shown = ", ".join(f"{value:g} ({role})" for value, role in sorted(extra_numbers))
        report.problems.append(f"numbers not in the quote: {shown}")
    extra_dates = dates(rendering) - dates(quote)
    if extra_dates:
        report.problems.append("dates or weekdays not in the quote")
    quote_words = [t for t in _TOKEN.findall(quote) if not t[0].isdigit()]
    # compounds: "Sicherheitsgarantie" holds "Garantie"; hyphenated parts count on their own
    quote_words += [part for t in quote_words if "-" in t for part in t.split("-")]
    unknown = [n for n in names(rendering) if n.casefold() not in allowed_names and not _name_in(n, quote_words)]
    if unknown:
        report.problems.append(f"names or places not in the quote: {unknown}")
    if negated(rendering, ENGLISH_NEGATIONS) != negated(quote, GERMAN_NEGATIONS | ENGLISH_NEGATIONS):
        report.problems.append("negation differs from the quote")
    if similarity is not None:
        report.similarity = similarity(quote, rendering)
        if report.similarity < min_similarity:
            report.problems.append(f"meaning drifts from the quote (similarity {report.similarity:.2f} < {min_similarity:.2f})")
    return report
