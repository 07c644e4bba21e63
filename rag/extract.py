"""Extractive answers: the model picks the sentence that answers, the answer quotes it.

Measured on the dev questions with the bundled 1.5B model: its free-text claims were right for
about 60% of the questions, but the sentence it most wanted to cite (read from its next-token
distribution) was the answering sentence for 18 of 24, the lexical score alone for 17, and the
two combined for 21. So the model's preference and the lexical evidence are combined to pick a
sentence, and the answer is that sentence verbatim (with the neighbours it leans on): nothing
can be misquoted, and no time goes into generating text the model would only copy.
"""

from __future__ import annotations

import re
from rag.context import Context, Corpus, Sentence
from rag.llm import Choice
from rag.text import content_terms

# A sentence that begins like this continues the one before it ("Er sagte ...", "Zudem ...").
_LEANS_BACK = frozenset(
    "er sie es dies diese dieser dieses dabei dort damit demnach daraufhin darin dazu davor danach "
    "zudem außerdem auch ferner ebenso".split()
)
# A following sentence that begins like this adds to the one before (a second condition, a reason).
_CONTINUES = frozenset("zudem außerdem ferner ebenso darüber dazu auch".split())
# Within the first words of the next sentence: it contrasts with or updates the picked one.
_CONTRASTS = frozenset("jedoch allerdings aber jetzt nun inzwischen".split())
_FIRST_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MAX_SENTENCES = 3


def combine(choice: Choice, context: Context, lexical_weight: float) -> Sentence | None:
    """The option with the best model log-probability plus lexical weight x the sentence's score."""
    scores: dict[int, float] = {}
    for number, logprob in choice.logprobs.items():
        sentence = context.by_number(number)
        if sentence is not None:
            scores[number] = logprob + lexical_weight * sentence.score
    if not scores:
        return None
    return context.by_number(max(scores, key=lambda n: (scores[n], -n)))


def with_neighbours(sentence: Sentence, context: Context, corpus: Corpus, question_terms: dict[str, float]) -> list[Sentence]:
    """The picked sentence, the one before it if it leans on it, and the one after it if that one
    continues it or adds what the question asks and the picked sentence lacks (from the article,
    whether or not the context had it)."""
    record = corpus.record(sentence.source)
    spans = corpus.sentences(sentence.source)
    index = next((i for i, span in enumerate(spans) if span.start == sentence.start), None)
    if record is None or index is None:
        return [sentence]

    def at(i: int) -> Sentence:
        span = spans[i]
        return context.sentence_at(sentence.source, span.start, span.end, record.text[span.start:span.end])

    picked = [sentence]
    if index > 0 and _leans_back(sentence.text):
        picked.insert(0, at(index - 1))
    if index + 1 < len(spans):
        following = record.text[spans[index + 1].start:spans[index + 1].end]
        covered = set().union(*(content_terms(s.text) for s in picked))
        adds = {t for t in content_terms(following) - covered if t in question_terms}
        if _leans_back(following) or _continues(sentence.text, following) or adds:
            picked.append(at(index + 1))
    return picked[:MAX_SENTENCES]


def _first_word(text: str) -> str:
    match = _FIRST_WORD.search(text)
    return match.group(0).casefold() if match else ""


def _leans_back(text: str) -> bool:
    stripped = text.lstrip()
    return bool(stripped) and (stripped[0].islower() or stripped[0] in "“”\"»" or _first_word(stripped) in _LEANS_BACK)


def _continues(text: str, following: str) -> bool:
    opened = text.count("„") + text.count("“") + text.count('"')
    opening = {w.casefold() for w in _FIRST_WORD.findall(following)[:3]}
    return (
        text.rstrip().endswith(":")
        or _first_word(following) in _CONTINUES
        or bool(opening & _CONTRASTS)  # "Jetzt gibt er jedoch an, ..." answers the second half
        or opened % 2 == 1  # a quotation that goes on in the next sentence
    )


def cited_text(sentences: list[Sentence]) -> str:
    """The answer in the model's citation format ("[n] sentence"), for verification and display."""
    return " ".join(f"[{s.number}] {' '.join(s.text.split())}" for s in sentences)
