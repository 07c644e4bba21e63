"""Hybrid retrieval: BM25 over German-normalised text fused with dense Chroma search.

Fusion is weighted reciprocal rank fusion. The weights are measured, not habitual: on the dev
questions the English MiniLM embedder alone ranks German passages poorly (17/26 hits vs 22 for
BM25), but at 0.6 of BM25's weight it rescues one more (benchmarks/README.md, "Fusion weights").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from rag.index.keyword import KeywordIndex
from rag.index.store import Store
from rag.text import tokenize

logger = logging.getLogger(__name__)

RRF_K = 60


@dataclass(frozen=True)
class RetrievalFilter:
    sources: frozenset[str] | None = None
    date_from: int | None = None  # YYYYMMDD
    date_to: int | None = None

    @property
    def empty(self) -> bool:
        return not self.sources and self.date_from is None and self.date_to is None

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.sources:
            clauses.append({"source": {"$in": sorted(self.sources)}})
        if self.date_from is not None:
            clauses.append({"date_ord": {"$gte": self.date_from}})
        if self.date_to is not None:
            clauses.append({"date_ord": {"$lte": self.date_to}})
            clauses.append({"date_ord": {"$gt": 0}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass
class ScoredChunk:
    chunk_id: str
    source: str
    start: int
    end: int
    score: float
    ranks: dict[str, int] = field(default_factory=dict)


def fuse(rankings: dict[str, list[str]], weights: dict[str, float], k: int = RRF_K) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion of several ranked id lists."""
    scores: dict[str, float] = {}
    for name, ranking in rankings.items():
        weight = weights.get(name, 1.0)
        if weight <= 0:
            continue
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank + 1)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))


class HybridSearch:
    def __init__(self, store: Store, keywords: KeywordIndex, bm25_weight: float, dense_weight: float, top_k: int, rrf_k: int = RRF_K) -> None:
        self.rrf_k = rrf_k
        self.store = store
        self.keywords = keywords
        self.bm25_weight = bm25_weight
        self.dense_weight = dense_weight
        self.top_k = top_k

    def search(self, queries: list[str], k: int | None = None, filters: RetrievalFilter | None = None) -> list[ScoredChunk]:
        """Ranked chunks for one question asked in one or more phrasings (e.g. original + German)."""
        k = k or self.top_k
        filters = filters or RetrievalFilter()
        self.keywords.ensure_current(self.store)
        depth = max(k * 3, 20)
        rankings: dict[str, list[str]] = {}
        mask = self.keywords.mask(filters.sources, filters.date_from, filters.date_to)
        for i, query in enumerate(queries):
            hits = self.keywords.search(tokenize(query, query=True), depth, mask)
            rankings[f"bm25:{i}"] = [h.chunk_id for h in hits]
        if self.dense_weight > 0:
            where = filters.chroma_where()
            for i, query in enumerate(queries):
                rankings[f"dense:{i}"] = [cid for cid, _ in self.store.dense_search(query, depth, where)]
        weights = {name: (self.bm25_weight if name.startswith("bm25") else self.dense_weight) for name in rankings}
        fused = fuse(rankings, weights, self.rrf_k)[:k]
        out: list[ScoredChunk] = []
        for chunk_id, score in fused:
            pos = self.keywords.position.get(chunk_id)
            if pos is None:  # the store changed under us; the next call rebuilds the index
                continue
            start, end = self.keywords.spans[pos]
            ranks = {name: ranking.index(chunk_id) for name, ranking in rankings.items() if chunk_id in ranking}
            out.append(ScoredChunk(chunk_id, self.keywords.sources[pos], start, end, score, ranks))
        return out


class NewsRetriever(BaseRetriever):
    """LangChain face of the hybrid search, so it composes with runnables and chains."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    search: HybridSearch
    k: int = 8
    filters: RetrievalFilter | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.search.search([query], self.k, self.filters)
        records = self.search.store.source_records(sorted({h.source for h in hits})) if hits else {}
        docs = []
        for hit in hits:
            record = records.get(hit.source)
            text = record.text[hit.start:hit.end] if record else ""
            docs.append(Document(id=hit.chunk_id, page_content=text, metadata={
                "source": hit.source, "title": record.title if record else "", "date": record.date if record else "",
                "start": hit.start, "end": hit.end, "score": hit.score,
            }))
        return docs
