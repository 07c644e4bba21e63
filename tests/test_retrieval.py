"""Fusion and filters (unit), and retrieval quality over the real seeds (integration)."""

import json
import statistics

import pytest

from rag.context import Corpus, select_context
from rag.evaluate import evidence_hit
from rag.keyword import KeywordIndex
from rag.retrieve import HybridSearch, RetrievalFilter, fuse
from rag.text import approx_tokens, tokenize

from conftest import DEV_QUESTIONS


def test_fuse_weights_and_ties():
    fused = fuse({"bm25": ["a", "b", "c"], "dense": ["c", "a"]}, {"bm25": 1.0, "dense": 0.3}, k=5)
    assert [item for item, _ in fused] == ["a", "c", "b"]
    only_bm25 = fuse({"bm25": ["a", "b"], "dense": ["b", "a"]}, {"bm25": 1.0, "dense": 0.0}, k=5)
    assert [item for item, _ in only_bm25] == ["a", "b"]


def test_chroma_where_for_filters():
    assert RetrievalFilter().chroma_where() is None
    where = RetrievalFilter(frozenset({"x"}), 20250101, None).chroma_where()
    assert where == {"$and": [{"source": {"$in": ["x"]}}, {"date_ord": {"$gte": 20250101}}]}


@pytest.fixture(scope="module")
def search(seeded):
    settings, store = seeded
    keywords = KeywordIndex(settings.keyword_dir)
    return HybridSearch(store, keywords, settings.bm25_weight, settings.dense_weight, settings.top_k, settings.rrf_k), Corpus(store, keywords), settings


def test_source_and_date_filters(search):
    hybrid, _, _ = search
    only = hybrid.search(["Waffenruhe Trump Putin"], filters=RetrievalFilter(sources=frozenset({"003_abdad34a08e92d8c"})))
    assert only and {h.source for h in only} == {"003_abdad34a08e92d8c"}
    dated = hybrid.search(["Waffenruhe Trump Putin"], filters=RetrievalFilter(date_from=20250200, date_to=20250299))
    assert dated and {h.source for h in dated} == {"001_d0d0cfa9444d8be7"}  # the only dated article


def test_unknown_words_fall_back_to_known_stems(search):
    hybrid, _, _ = search
    hybrid.keywords.ensure_current(hybrid.store)
    assert "punkt" in hybrid.keywords.expand(tokenize("Punkteskala"))


def test_german_questions_find_their_evidence(search):
    """The integration bar for German questions (English ones need the model to translate: see the eval)."""
    hybrid, corpus, settings = search
    questions = [json.loads(line) for line in DEV_QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    german = [q for q in questions if q["evidence"] and q.get("lang", "de") == "de"]
    hits, tokens = 0, []
    for q in german:
        chunks = hybrid.search([q["question"]])
        terms = {t: hybrid.keywords.idf(t) for t in tokenize(q["question"])}
        context = select_context(terms, chunks, corpus, settings.context_tokens, approx_tokens)
        hits += evidence_hit(q, context.text)
        tokens.append(context.tokens)
    assert hits / len(german) >= 0.85, f"{hits}/{len(german)}"
    assert statistics.median(tokens) <= 600
