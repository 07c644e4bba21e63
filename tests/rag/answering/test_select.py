"""The shipped fitted decisions in the service: the answering sentence, its neighbours, refusals.

The service runs over the real seeded Chroma store with the real embedder; only the model is a
stand-in that reports chosen probabilities, so each decision can be driven to both sides."""

from __future__ import annotations

import pytest
from doubles.llm import ScriptedLLM

from rag.answering.decide import join_signals, with_reading
from rag.llm.base import Choice

WAFFEN = "Nach seinem Willen sollen zuvor alle Waffenlieferungen an die ukrainische Armee gestoppt werden."
ZUDEM = "Zudem müsse die Weitergabe von Geheimdienstinformationen an Kiew eingestellt werden."


ChoosingLLM = ScriptedLLM.choosing
GreedyLLM = ScriptedLLM.greedy


@pytest.fixture
def service_with(seeded, embeddings):
    from rag.wiring import build_service

    settings, _ = seeded
    return lambda llm: build_service(settings, embeddings=embeddings, llm_factory=lambda: llm)


def test_the_next_sentence_joins_when_it_continues_the_answer(service_with):
    service = service_with(ChoosingLLM(-3.0))
    question = "Welche Bedingungen stellte Putin im März für eine Waffenruhe?"
    _, queries, context = service.retrieve(question)
    choice = Choice({n: -2.0 for n in range(1, min(9, len(context.sentences)) + 1)}, -3.0)
    evidence = with_reading(service.measure(question, queries, context, "de"), choice.logprobs, choice.refusal_margin)
    pick = next(c for c in evidence.candidates if c.text == WAFFEN)
    following = evidence.neighbour(pick, 1)
    assert following is not None and following.text == ZUDEM  # from the article, even if the context lacked it
    assert service.decisions.join.accepts(join_signals(evidence, pick, following, 0.0))  # "Zudem ..." adds a condition
    unrelated = min(evidence.offered, key=lambda c: c.coverage)
    assert not service.decisions.join.accepts(join_signals(evidence, pick, unrelated, 0.0))
    assert all(service.corpus.record(s.source).text[s.start:s.end] == s.text for s in context.sentences)


def test_a_model_that_clearly_prefers_to_refuse_is_followed(service_with):
    answer = service_with(ChoosingLLM(margin=2.0)).answer("Wie hoch ist laut den Artikeln die Inflationsrate in Deutschland?")
    assert answer.refused and not answer.citations


def test_a_question_about_what_no_article_holds_is_refused_at_a_slight_refusal_preference(service_with):
    answered = service_with(ChoosingLLM(margin=0.5)).answer("Mit wem telefonierte Trump nach seinem Gespräch mit Putin?")
    assert not answered.refused and answered.citations
    refused = service_with(ChoosingLLM(margin=0.5)).answer("Was hat Xi Jinping beim Gipfel in Alaska gesagt?")
    assert refused.refused and not refused.citations


def test_the_answer_is_the_chosen_sentence_verbatim(service_with):
    service = service_with(ChoosingLLM(-1.0, prefer=2))
    answer = service.answer("In welcher Stadt trafen sich Trump und Putin in Alaska?")
    assert not answer.refused and answer.citations
    for citation in answer.citations:
        assert service.corpus.record(citation.source).text[citation.start:citation.end] == citation.quote
        assert " ".join(citation.quote.split()).rstrip(".") in answer.text


def test_a_backend_without_probabilities_picks_greedily(service_with):
    llm = GreedyLLM("[1]")
    answer = service_with(llm).answer("Mit wem telefonierte Trump nach seinem Gespräch mit Putin?")
    assert not answer.refused and llm.grammars[-1].startswith('root ::= "NICHT_IN_DEN_ARTIKELN" | "["')
    refusing = service_with(GreedyLLM("NICHT_IN_DEN_ARTIKELN")).answer("Wie hoch ist die Inflationsrate in Deutschland?")
    assert refusing.refused
