"""Choosing the answering sentence, extending it with its neighbours, and the refusal decision.

The service runs over the real seeded Chroma store; only the model is a stand-in that reports
chosen probabilities, so each rule can be driven to both sides."""

from __future__ import annotations

import pytest
from doubles.llm import ScriptedLLM

from rag.answering.context import Context, Sentence
from rag.answering.select import combine, with_neighbours
from rag.llm.base import Choice

WAFFEN = "Nach seinem Willen sollen zuvor alle Waffenlieferungen an die ukrainische Armee gestoppt werden."
ZUDEM = "Zudem müsse die Weitergabe von Geheimdienstinformationen an Kiew eingestellt werden."


def sentence(number: int, text: str, score: float, start: int = 0) -> Sentence:
    return Sentence(number, "a", start, start + len(text), text, score)


def test_combine_adds_lexical_evidence_to_the_model_preference():
    context = Context([sentence(1, "Eins.", 0.1), sentence(2, "Zwei.", 0.6, 10)], {}, "", 0, 0.0)
    unsure = Choice({1: -0.9, 2: -1.1}, -1.0)
    assert combine(unsure, context, lexical_weight=4.0).number == 2  # evidence tips a close call
    assert combine(unsure, context, lexical_weight=0.0).number == 1  # the model alone
    sure = Choice({1: -0.05, 2: -4.0}, -1.0)
    assert combine(sure, context, lexical_weight=4.0).number == 1  # a clear preference stands
    assert combine(Choice({}, 0.0), context, 4.0) is None


ChoosingLLM = ScriptedLLM.choosing
GreedyLLM = ScriptedLLM.greedy


@pytest.fixture
def service_with(seeded, embeddings):
    from rag.wiring import build_service

    settings, _ = seeded
    return lambda llm: build_service(settings, embeddings=embeddings, llm_factory=lambda: llm)


def test_the_next_sentence_joins_when_it_continues_the_answer(service_with):
    service = service_with(ChoosingLLM(-1.0))
    _, queries, context = service.retrieve("Welche Bedingungen stellte Putin im März für eine Waffenruhe?")
    picked = next(s for s in context.sentences if s.text == WAFFEN)
    texts = [s.text for s in with_neighbours(picked, context, service.corpus, service._question_terms(queries))]
    assert texts == [WAFFEN, ZUDEM]  # "Zudem ..." adds the second condition, even if the context lacked it
    assert all(service.corpus.record(s.source).text[s.start:s.end] == s.text for s in context.sentences)


def test_a_model_that_clearly_prefers_to_refuse_is_followed(service_with):
    answer = service_with(ChoosingLLM(margin=2.0)).answer("Wie hoch ist laut den Artikeln die Inflationsrate in Deutschland?")
    assert answer.refused and not answer.citations


def test_a_slight_preference_to_refuse_is_overruled_unless_the_question_names_the_unknown(service_with):
    answered = service_with(ChoosingLLM(margin=0.5)).answer("Mit wem telefonierte Trump nach seinem Gespräch mit Putin?")
    assert not answered.refused and answered.citations
    refused = service_with(ChoosingLLM(margin=0.5)).answer("Was hat Xi Jinping beim Gipfel in Alaska gesagt?")
    assert refused.refused and not refused.citations


def test_strong_evidence_overrules_a_refusal(service_with):
    answer = service_with(ChoosingLLM(margin=2.0)).answer(
        "Was sagte Kreml-Sprecher Peskow zu Trumps Telefonat mit Putin?")
    assert not answer.refused and "weder bestätigen noch dementieren" in answer.text


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
