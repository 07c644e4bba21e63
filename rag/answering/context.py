"""Context selection: from retrieved chunks, only the sentences the model needs, within a budget.

Each candidate sentence is scored by the idf-weighted share of the question's terms it contains,
scaled up by its chunk's retrieval rank; the best sentences come first, each with the neighbours
it leans on, numbered [1]..[9]. The numbers are what the model cites, so every citation points
at one exact, verbatim sentence of an article.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rag.answering.fitted import LogisticModel
from rag.answering.retrieve import ScoredChunk
from rag.german import NEIGHBOUR_STARTS
from rag.index.keyword import KeywordIndex
from rag.index.store import SourceRecord, Store
from rag.text import Span, content_terms, sentence_spans

# Tuning constants of the context packing (chosen on the German dev questions, evidence in context
# at NEWSBOT_CONTEXT_TOKENS=260; see benchmarks/README.md):
# A chunk's retrieval rank scales its sentences' evidence by 1 + CHUNK_RANK_PRIOR / (1 + rank):
# multiplicative, so a sentence without question terms is never chosen for its chunk's sake
# (+1 hit at 420 tokens over an additive prior).
CHUNK_RANK_PRIOR = 0.5
# Among sentences without any question term, the better-ranked chunk's come first.
RANK_TIE_BREAK = 0.01
# A neighbour that comes along with a picked sentence gets this share of its score.
NEIGHBOUR_SCORE_SHARE = 0.5
# Sentences shorter than this are fragments that bring the sentence before them along.
SHORT_SENTENCE_CHARS = 120
# Tokens of a block's header line (source letter, title, date) in the budget.
HEADER_TOKENS = 18
# Questions about the latest state: evidence shares (idf-weighted question coverage) within this
# step count as a tie, which the newer article wins. 0.05: one minor question word.
RECENCY_TIE = 0.05

logger = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]
Similarity = Callable[[list[str]], list[float]]  # sentences -> cosine to the question


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
    prefix_text: str = ""  # the first block: depends only on the top sentence, so its model state is cacheable

    def by_number(self, number: int) -> Sentence | None:
        for sentence in self.sentences:
            if sentence.number == number:
                return sentence
        return None

    @property
    def empty(self) -> bool:
        return not self.sentences

    def sentence_at(self, source: str, start: int, end: int, text: str) -> Sentence:
        """The context sentence at this span, added (unseen by the model) when an answer quotes a
        neighbour that the context left out."""
        for sentence in self.sentences:
            if sentence.source == source and sentence.start == start:
                return sentence
        added = Sentence(len(self.sentences) + 1, source, start, end, text, 0.0)
        self.sentences.append(added)
        return added


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

    def sources(self) -> list[str]:
        """The ids of the indexed sources, sorted."""
        return sorted(set(self.keywords.sources))

    def sentence_texts(self, source: str) -> list[str]:
        record = self.record(source)
        return [record.text[span.start:span.end] for span in self.sentences(source)] if record else []

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


@dataclass
class SentenceCandidate:
    """A sentence of a retrieved chunk, with the signals the fitted context scorer reads."""

    source: str
    index: int
    rank: int  # its chunk's retrieval rank
    text: str
    overlap: float  # idf-weighted share of the question's terms it contains
    lexical: float  # overlap scaled by the chunk-rank prior: the unfitted order, and a signal of the pick model
    dense: float = 0.0


def context_signals(candidates: list[SentenceCandidate], english: bool) -> list[dict[str, float]]:
    """Per candidate: its own evidence and its distance to the best candidate of the same question
    (the gaps make the scores comparable across questions with many or few matching terms)."""
    if not candidates:
        return []
    best_overlap = max(c.overlap for c in candidates)
    best_dense = max(c.dense for c in candidates)
    return [{
        "overlap": c.overlap, "overlap_gap": best_overlap - c.overlap, "dense": c.dense, "dense_gap": best_dense - c.dense,
        "prior": 1.0 / (1 + c.rank), "lexical": c.lexical, "english": float(english),
        "length": math.log(1 + len(c.text)),
    } for c in candidates]


def candidates_of(question_terms: dict[str, float], hits: list[ScoredChunk], corpus: Corpus,
                  similarity: Similarity | None = None) -> list[SentenceCandidate]:
    """Every content sentence of the retrieved chunks, once, in retrieval order."""
    total_weight = sum(question_terms.values()) or 1.0
    found: list[SentenceCandidate] = []
    seen: set[tuple[str, int]] = set()
    for rank, hit in enumerate(hits):
        record = corpus.record(hit.source)
        if record is None:
            continue
        prior = CHUNK_RANK_PRIOR / (1 + rank)
        for index, span in enumerate(corpus.sentences(hit.source)):
            if span.start < hit.start or span.end > hit.end or (hit.source, index) in seen:
                continue
            seen.add((hit.source, index))
            text = record.text[span.start:span.end]
            terms = content_terms(text)
            overlap = sum(w for t, w in question_terms.items() if t in terms) / total_weight
            # The chunk's rank only scales a sentence's own evidence: a sentence without question terms
            # is never chosen for its chunk's sake (measured: +1 hit at 420 tokens over an additive prior).
            found.append(SentenceCandidate(hit.source, index, rank, text, overlap, overlap * (1 + prior) + RANK_TIE_BREAK * prior))
    if similarity is not None and found:
        for candidate, value in zip(found, similarity([c.text for c in found])):
            candidate.dense = float(value)
    return found


def select_context(
    question_terms: dict[str, float],
    hits: list[ScoredChunk],
    corpus: Corpus,
    budget_tokens: int,
    count_tokens: TokenCounter,
    expand_top: int = 1,
    max_sentences: int = 9,
    prefer_recent: bool = False,
    similarity: Similarity | None = None,
    scorer: LogisticModel | None = None,
    english: bool = False,
) -> Context:
    """Evidence first: the best sentences lead, each in a small window of its neighbours.

    A small model tends to cite what it reads first, so blocks are ordered by evidence, not by
    article order: the fitted scorer's probability that a sentence holds the answer (from its
    question-term overlap, its dense similarity to the question and its chunk's rank) when one is
    given with a similarity function, else the lexical score. The first block depends only on the
    top sentence, so the model state after reading it can be cached and reused by every question
    whose best sentence it is (see LlamaCppLLM).
    """
    found = candidates_of(question_terms, hits, corpus, similarity if scorer is not None else None)
    if scorer is not None and similarity is not None:
        order = [scorer.score(s) for s in context_signals(found, english)]
        tie = order
    else:
        order = [c.lexical for c in found]
        tie = [c.overlap for c in found]
    candidates = [(order[i], i, c.source, c.index) for i, c in enumerate(found)]
    lexical = {(c.source, c.index): c.lexical for c in found}
    if prefer_recent:  # "neuester Stand": between sentences with equal evidence, the newer article leads
        dated = {s: (r.date_ord if (r := corpus.record(s)) else 0) for s in {c.source for c in found}}
        candidates.sort(key=lambda c: (-round(tie[c[1]] / RECENCY_TIE), -dated[c[2]], -c[0], c[1]))
    else:
        candidates.sort(key=lambda c: (-c[0], c[1]))

    blocks: list[tuple[str, list[int]]] = []
    scores: dict[tuple[str, int], float] = {}
    used = 0
    for position, (_, _, source, index) in enumerate(candidates):
        score = lexical[(source, index)]  # what the pick model reads as `lexical`
        if (source, index) in scores:
            continue
        record = corpus.record(source)
        spans = corpus.sentences(source)
        if position < expand_top:
            wanted = [index - 1, index, index + 1]
        elif _wants_neighbour(record.text, spans[index]):
            wanted = [index - 1, index]
        else:
            wanted = [index]
        wanted = [i for i in wanted if 0 <= i < len(spans) and (source, i) not in scores]
        if len(scores) + len(wanted) > max_sentences:  # the model cites one digit: [1]..[9]
            wanted = [index] if len(scores) < max_sentences else []
        if not wanted:
            continue
        cost = HEADER_TOKENS + sum(count_tokens(record.text[spans[i].start:spans[i].end]) + 3 for i in wanted)
        if used + cost > budget_tokens:
            if blocks:
                continue
            wanted = [index]  # always give the model the single best sentence
        blocks.append((source, wanted))
        for i in wanted:
            scores[(source, i)] = score if i == index else score * NEIGHBOUR_SCORE_SHARE
        used += cost
        if used >= budget_tokens:
            break
    return _render(blocks, scores, corpus, question_terms, sum(question_terms.values()) or 1.0, count_tokens)


_LATEST = re.compile(r"\b(neueste[nrsm]?|neuester?\s+stand|aktuelle[nrsm]?\s+stand|zuletzt|jüngste[nrsm]?|"
                     r"latest|most\s+recent(ly)?|newest|currently|current\s+state)\b", re.IGNORECASE)


def asks_for_latest(question: str) -> bool:
    """"Was ist der neueste Stand …", "zuletzt", "latest": newer articles win ties."""
    return bool(_LATEST.search(question or ""))


def _wants_neighbour(text: str, span: Span) -> bool:
    """A sentence that leans on the one before (a quote, a pronoun, a short fragment)."""
    sentence = text[span.start:span.end]
    first = sentence.split(None, 1)[0].casefold() if sentence.split() else ""
    return (
        len(sentence) < SHORT_SENTENCE_CHARS
        or sentence[:1] in "„“\"»«"
        or first in NEIGHBOUR_STARTS
    )


def _render(blocks, scores, corpus: Corpus, question_terms, total_weight, count_tokens) -> Context:
    letters: dict[str, str] = {}
    sentences: list[Sentence] = []
    groups: list[tuple[str, list[Sentence]]] = []
    infos: dict[str, SourceInfo] = {}
    lines: list[str] = []
    prefix_text = ""
    number = 1
    context_terms: set[str] = set()
    best = 0.0
    for source, indices in blocks:
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
            sentence = Sentence(number, source, span.start, span.end, text, scores.get((source, index), 0.0))
            terms = content_terms(text)
            context_terms |= terms
            best = max(best, sum(w for t, w in question_terms.items() if t in terms) / total_weight)
            sentences.append(sentence)
            group.append(sentence)
            lines.append(f"[{number}] {' '.join(text.split())}")
            number += 1
        groups.append((source, group))
        if not prefix_text:
            prefix_text = "\n".join(lines) + "\n"
    text = "\n".join(lines)
    coverage = sum(w for t, w in question_terms.items() if t in context_terms) / total_weight
    return Context(sentences, infos, text, count_tokens(text) if text else 0, coverage, best, groups, prefix_text)


def first_block_text(corpus: Corpus, source: str, index: int, budget_tokens: int, count_tokens: TokenCounter) -> str:
    """`Context.prefix_text` of every context whose best sentence is sentence `index` of `source`:
    the block `select_context` puts first (with both neighbours, or alone when they do not fit),
    so its model state can be computed ahead (rag/answering/block_states.py)."""
    record = corpus.record(source)
    spans = corpus.sentences(source)
    if record is None or not 0 <= index < len(spans):
        return ""
    wanted = [i for i in (index - 1, index, index + 1) if 0 <= i < len(spans)]
    cost = HEADER_TOKENS + sum(count_tokens(record.text[spans[i].start:spans[i].end]) + 3 for i in wanted)
    if cost > budget_tokens:
        wanted = [index]
    return _render([(source, wanted)], {}, corpus, {}, 1.0, count_tokens).prefix_text
