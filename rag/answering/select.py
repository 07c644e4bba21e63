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

from rag.answering.context import Context, Corpus, Sentence
from rag.answering.refusal import REFUSAL_TOKEN
from rag.german import CONTINUES_STARTS, CONTRAST_WORDS, LEANS_BACK_STARTS
from rag.llm.base import LLM, Choice, Message
from rag.text import content_terms

_FIRST_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# An answer quotes at most this many sentences: the pick, the one before it, the one after it.
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
    return bool(stripped) and (stripped[0].islower() or stripped[0] in "“”\"»" or _first_word(stripped) in LEANS_BACK_STARTS)


def _continues(text: str, following: str) -> bool:
    opened = text.count("„") + text.count("“") + text.count('"')
    opening = {w.casefold() for w in _FIRST_WORD.findall(following)[:3]}
    return (
        text.rstrip().endswith(":")
        or _first_word(following) in CONTINUES_STARTS
        or bool(opening & CONTRAST_WORDS)  # "Jetzt gibt er jedoch an, ..." answers the second half
        or opened % 2 == 1  # a quotation that goes on in the next sentence
    )


def cited_text(sentences: list[Sentence]) -> str:
    """The answer in the model's citation format ("[n] sentence"), for verification and display."""
    return " ".join(f"[{s.number}] {' '.join(s.text.split())}" for s in sentences)


# The model cites one digit, so it chooses among the first nine context sentences.
MAX_OPTIONS = 9
# A greedy pick without probabilities (a backend without `supports_choice`): as sure as the model can be.
GREEDY_MARGIN = 20.0


def _selection_grammar(options: int) -> str:
    """For backends without token probabilities: the refusal token or one marker [1]..[options]."""
    return f'root ::= "{REFUSAL_TOKEN}" | "[" [1-{max(1, options)}] "]"'


def choose(llm: LLM, messages: list[Message], context: Context) -> Choice:
    """The model's preference among the first nine context sentences (or its refusal).

    Backends that expose next-token probabilities (llama.cpp in-process) give the full
    distribution; others make one greedy, grammar-constrained pick, which then stands alone."""
    options = min(MAX_OPTIONS, len(context.sentences))
    prefix = "<artikel>\n" + context.prefix_text if context.prefix_text else ""
    choice = llm.choose(messages, prefix=prefix, options=options, refusal=REFUSAL_TOKEN) if llm.supports_choice else None
    if choice is not None:
        return choice
    completion = llm.complete(messages, max_tokens=12, grammar=_selection_grammar(options), prefix=prefix)
    found = re.match(r"\s*\[(\d)\]", completion.text)
    if found is None:
        return Choice({n: 0.0 for n in range(1, options + 1)}, GREEDY_MARGIN, completion.prompt_tokens,
                      completion.prefill_tokens, completion.total_s, completion.generated_tokens)
    picked = int(found.group(1))
    return Choice({n: 0.0 if n == picked else -GREEDY_MARGIN for n in range(1, options + 1)}, -GREEDY_MARGIN,
                  completion.prompt_tokens, completion.prefill_tokens, completion.total_s, completion.generated_tokens)
