"""Context selection: from retrieved chunks, only the sentences the model needs, within a budget.

Each candidate sentence is scored by the idf-weighted share of the question's terms it contains
plus a prior from its chunk's retrieval rank; the best sentences are taken with their preceding
sentence (which often names the speaker), merged into runs, and numbered. The numbers are what
the model cites, so every citation points at one exact, verbatim sentence of an article.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from rag.keyword import KeywordIndex
from rag.retrieve import ScoredChunk
from rag.store import SourceRecord, Store
from rag.text import Span, content_terms, sentence_spans

logger = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]


@dataclass
class Sentence:
    number: int  # the [n] the model sees and cites
    source: str
    start: int
    end: int
    text: str
    score: float


@dataclass
class SourceInfo:
    source: str
    title: str
    date: str
    outlet: str


@dataclass
class Context:
    sentences: list[Sentence]
    sources: dict[str, SourceInfo]
    text: str
    tokens: int
    coverage: float  # idf-weighted share of question terms found anywhere in the context
    best_sentence_coverage: float = 0.0
    groups: list[tuple[str, list[Sentence]]] = field(default_factory=list)
    prefix_text: str = ""  # the pinned top chunk's block: the same for every question, so cacheable

    def by_number(self, number: int) -> Sentence | None:
        for sentence in self.sentences:
            if sentence.number == number:
                return sentence
        return None

    @property
    def empty(self) -> bool:
        return not self.sentences


class Corpus:
    """Source texts and their sentences (content only: furniture never enters a context)."""

    def __init__(self, store: Store, keywords: KeywordIndex) -> None:
        self.store = store
        self.keywords = keywords
        self._records: dict[str, SourceRecord] = {}
        self._sentences: dict[str, list[Span]] = {}
        self._generation = ""
        self._lock = threading.RLock()

    def _sync(self) -> None:
        if self.keywords.generation != self._generation:
            self._records.clear()
            self._sentences.clear()
            self._generation = self.keywords.generation

    def record(self, source: str) -> SourceRecord | None:
        with self._lock:
            self._sync()
            if source not in self._records:
                found = self.store.source_records([source])
                if source not in found:
                    return None
                self._records[source] = found[source]
            return self._records[source]

    def sentences(self, source: str) -> list[Span]:
        """All content sentences of a source in order, from its chunks' spans."""
        with self._lock:
            self._sync()
            if source not in self._sentences:
                record = self.record(source)
                spans = sorted(sp for src, sp in zip(self.keywords.sources, self.keywords.spans) if src == source)
                self._sentences[source] = [
                    sentence for start, end in spans for sentence in sentence_spans(record.text, start, end)
                ] if record else []
            return self._sentences[source]


def select_context(
    question_terms: dict[str, float],
    hits: list[ScoredChunk],
    corpus: Corpus,
    budget_tokens: int,
    count_tokens: TokenCounter,
    expand_top: int = 3,
    pin_first: bool = True,
) -> Context:
    """Greedy selection: best sentences first; the top few bring both neighbours along.

    With pin_first, the top chunk is given whole and first, always in the same form, so the
    model state after reading it can be cached and reused by every question it answers.
    """
    total_weight = sum(question_terms.values()) or 1.0
    chosen: dict[tuple[str, int], float] = {}
    pinned: list[tuple[str, int]] = []
    used = 0
    header_cost = 18
    if pin_first and hits:
        top = hits[0]
        record = corpus.record(top.source)
        if record is not None:
            for index, span in enumerate(corpus.sentences(top.source)):
                if span.start >= top.start and span.end <= top.end:
                    pinned.append((top.source, index))
                    used += count_tokens(record.text[span.start:span.end]) + 3
            used += header_cost
    pinned_set = set(pinned)

    candidates: list[tuple[float, int, str, int]] = []  # score, order, source, sentence index
    order = 0
    for rank, hit in enumerate(hits):
        record = corpus.record(hit.source)
        if record is None:
            continue
        prior = 0.25 / (1 + rank)
        for index, span in enumerate(corpus.sentences(hit.source)):
            if span.start < hit.start or span.end > hit.end:
                continue
            terms = content_terms(record.text[span.start:span.end])
            overlap = sum(w for t, w in question_terms.items() if t in terms) / total_weight
            if (hit.source, index) in pinned_set:
                chosen[(hit.source, index)] = overlap + prior
            else:
                candidates.append((overlap + prior, order, hit.source, index))
            order += 1
    candidates.sort(key=lambda c: (-c[0], c[1]))

    extra_sources: set[str] = set()
    for position, (score, _, source, index) in enumerate(candidates):
        if (source, index) in chosen:
            continue
        record = corpus.record(source)
        spans = corpus.sentences(source)
        wanted = [index]
        if position < expand_top:
            wanted = [index - 1, index, index + 1]
        elif _wants_neighbour(record.text, spans[index]):
            wanted = [index - 1, index]
        wanted = [i for i in wanted if 0 <= i < len(spans) and (source, i) not in chosen]
        cost = sum(count_tokens(record.text[spans[i].start:spans[i].end]) + 3 for i in wanted)
        if source not in extra_sources:
            cost += header_cost
        if used + cost > budget_tokens:
            if used == 0:
                wanted = [index]  # always give the model the single best sentence
            else:
                continue
        for i in wanted:
            chosen[(source, i)] = score if i == index else score * 0.5
        extra_sources.add(source)
        used += cost
        if used >= budget_tokens:
            break
    return _render(chosen, pinned, corpus, question_terms, total_weight, count_tokens)


def _wants_neighbour(text: str, span: Span) -> bool:
    """A sentence that leans on the one before (a quote, a pronoun, a short fragment)."""
    sentence = text[span.start:span.end]
    first = sentence.split(None, 1)[0].casefold() if sentence.split() else ""
    return (
        len(sentence) < 120
        or sentence[:1] in "„“\"»«"
        or first in {"er", "sie", "es", "dies", "das", "dieser", "diese", "dabei", "dort", "damit", "zudem", "auch", "außerdem"}
    )


def _render(chosen, pinned, corpus: Corpus, question_terms, total_weight, count_tokens) -> Context:
    pinned_set = set(pinned)
    extras: dict[str, list[int]] = {}
    for (source, index) in chosen:
        if (source, index) not in pinned_set:
            extras.setdefault(source, []).append(index)
    ordered = sorted(extras, key=lambda s: -max(chosen[(s, i)] for i in extras[s]))
    groups_spec: list[tuple[str, list[int], bool]] = []
    if pinned:
        groups_spec.append((pinned[0][0], [i for _, i in pinned], True))
    groups_spec += [(source, sorted(extras[source]), False) for source in ordered]

    letters: dict[str, str] = {}
    sentences: list[Sentence] = []
    groups: list[tuple[str, list[Sentence]]] = []
    infos: dict[str, SourceInfo] = {}
    lines: list[str] = []
    prefix_text = ""
    number = 1
    context_terms: set[str] = set()
    best = 0.0
    for source, indices, is_pinned in groups_spec:
        record = corpus.record(source)
        assert record is not None
        infos[source] = SourceInfo(source, record.title, record.date, record.outlet)
        if source in letters:
            lines.append(f"Artikel {letters[source]}, weitere Sätze:")
        else:
            letters[source] = chr(65 + len(letters) % 26)
            lines.append(f"Artikel {letters[source]}: «{record.title}» ({record.date or 'Datum unbekannt'})")
        group: list[Sentence] = []
        spans = corpus.sentences(source)
        for index in indices:
            span = spans[index]
            text = record.text[span.start:span.end]
            sentence = Sentence(number, source, span.start, span.end, text, chosen.get((source, index), 0.0))
            terms = content_terms(text)
            context_terms |= terms
            best = max(best, sum(w for t, w in question_terms.items() if t in terms) / total_weight)
            sentences.append(sentence)
            group.append(sentence)
            lines.append(f"[{number}] {' '.join(text.split())}")
            number += 1
        groups.append((source, group))
        if is_pinned:
            prefix_text = "\n".join(lines) + "\n"
    text = "\n".join(lines)
    coverage = sum(w for t, w in question_terms.items() if t in context_terms) / total_weight
    return Context(sentences, infos, text, count_tokens(text) if text else 0, coverage, best, groups, prefix_text)
