"""The context order: lexical by default, a fitted scorer's when decisions.json carries one."""

from __future__ import annotations

import pytest

from rag.answering.context import SentenceCandidate, candidates_of, context_signals, select_context
from rag.answering.fitted import DecisionModels, LogisticModel
from rag.answering.retrieve import HybridSearch
from rag.index.keyword import KeywordIndex

QUESTION = "Welche Rolle spielte das Gespräch zwischen den Präsidenten?"


def test_signals_measure_each_candidate_against_the_best_of_its_question():
    found = [SentenceCandidate("a", 0, 0, "x" * 10, 0.8, 1.2, 0.5), SentenceCandidate("a", 1, 3, "y" * 99, 0.2, 0.21, 0.9)]
    first, second = context_signals(found, english=True)
    assert first["overlap_gap"] == 0.0 and second["overlap_gap"] == pytest.approx(0.6)
    assert first["dense_gap"] == pytest.approx(0.4) and second["dense_gap"] == 0.0
    assert first["prior"] == 1.0 and second["prior"] == 0.25 and first["english"] == 1.0


def test_a_scorer_reorders_the_context_and_none_keeps_the_lexical_order(seeded):
    settings, store = seeded
    keywords = KeywordIndex(settings.keyword_dir)
    search = HybridSearch(store, keywords, settings.bm25_weight, settings.dense_weight, settings.top_k, settings.rrf_k)
    from rag.answering.context import Corpus

    corpus = Corpus(store, keywords)
    hits = search.search([QUESTION], 8)
    terms = {t: keywords.idf(t) for t in ("gespräch", "präsident")}
    # a stand-in similarity: longer sentences are "closer", which the lexical order ignores
    similarity = lambda texts: [len(t) / 1000 for t in texts]  # noqa: E731
    found = candidates_of(terms, hits, corpus, similarity)
    longest = max(found, key=lambda c: len(c.text))
    by_length = LogisticModel("context", ["dense"], [5.0], 0.0, [0.0], [1.0])
    count = lambda text: len(text.split())  # noqa: E731
    fitted = select_context(terms, hits, corpus, 260, count, similarity=similarity, scorer=by_length)
    plain = select_context(terms, hits, corpus, 260, count, similarity=similarity)
    best_lexical = max(found, key=lambda c: c.lexical)
    assert longest.text != best_lexical.text  # the two orders differ for this question
    assert longest.text in fitted.sentences[0].text or any(s.text == longest.text for s in fitted.groups[0][1])
    assert any(s.text == best_lexical.text for s in plain.groups[0][1])
    # the pick model still reads the lexical score, whatever order the context has
    lexical = {c.text: c.lexical for c in found}
    assert all(s.score in (lexical[s.text], lexical[s.text] * 0.5) for s in fitted.sentences if s.text in lexical)


def test_the_context_model_is_saved_and_loaded_with_the_decisions(tmp_path):
    from rag.answering.fitted import DEFAULT_PATH

    models = DecisionModels.load(DEFAULT_PATH)
    models.context = LogisticModel("context", ["dense"], [2.0], 0.1, [0.0], [1.0])
    models.save(tmp_path / "d.json")
    again = DecisionModels.load(tmp_path / "d.json")
    assert again.context is not None and again.context.score({"dense": 1.0}) == pytest.approx(models.context.score({"dense": 1.0}))
    models.context = None
    models.save(tmp_path / "plain.json")
    assert DecisionModels.load(tmp_path / "plain.json").context is None
