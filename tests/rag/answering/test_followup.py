"""Follow-up rewriting: the model's rewrite is checked, and a keyword fallback replaces a bad one."""

from __future__ import annotations

import pytest
from doubles.llm import ScriptedLLM

from rag.answer import Turn
from rag.answering.followup import acceptable_rewrite as _acceptable_rewrite
from rag.answering.followup import with_earlier_terms

FIRST = "Was sagte Kreml-Sprecher Peskow zu Trumps Telefonat mit Putin?"
FOLLOW_UP = "Und wo wurde das Interview geführt?"


@pytest.fixture
def service_with(seeded, embeddings):
    from rag.wiring import build_service

    settings, _ = seeded

    def make(*texts: str):
        llm = ScriptedLLM(*texts)
        return build_service(settings, embeddings=embeddings, llm_factory=lambda: llm), llm

    return make


def test_a_good_rewrite_is_kept_and_the_examples_are_real_turns(service_with):
    service, llm = service_with("Wo wurde das Interview mit Peskow geführt?")
    assert service.rewrite(FOLLOW_UP, [Turn(FIRST, "Peskow sagte … [1]")]) == "Wo wurde das Interview mit Peskow geführt?"
    roles = [m.role for m in llm.seen[0]]
    assert roles[0] == "system" and roles[-1] == "user" and "assistant" in roles
    assert f"Vorige Frage: {FIRST}" in llm.seen[0][-1].content and FOLLOW_UP in llm.seen[0][-1].content


@pytest.mark.parametrize("bad", [
    "Verlauf: Frage: " + FIRST,  # the prompt echoed
    FIRST,  # the earlier question echoed
    FOLLOW_UP,  # nothing resolved
    "Was sagte Putin?",  # the follow-up's own words ("Interview") lost
])
def test_a_bad_rewrite_falls_back_to_the_follow_up_with_the_earlier_terms(service_with, bad):
    service, _ = service_with(bad)
    rewritten = service.rewrite(FOLLOW_UP, [Turn(FIRST, "Peskow sagte … [1]")])
    assert rewritten.startswith(FOLLOW_UP) and "Peskow" in rewritten and "Telefonat" in rewritten
    assert FIRST not in rewritten


def test_retrieval_for_a_follow_up_finds_the_earlier_article(service_with):
    # The rewrite dropped the name; the keyword query from the earlier turn still finds article 003.
    service, _ = service_with("Wo wurde das Interview geführt?")
    standalone, queries, context = service.retrieve(FOLLOW_UP, [Turn(FIRST, "Peskow sagte … [1]")])
    assert standalone == "Wo wurde das Interview geführt?" and len(queries) == 2
    assert "003_abdad34a08e92d8c" in context.sources


def test_acceptance_rules():
    assert _acceptable_rewrite("Wann war Trumps Treffen mit Putin in Alaska?", "Wann war das?", "Wie bewertete Trump das Treffen?")
    assert not _acceptable_rewrite("Wann war das?", "Wann war das?", "Wie bewertete Trump das Treffen?")
    assert not _acceptable_rewrite("x" * 400, "Wann war das?", "Wie bewertete Trump das Treffen?")
    assert with_earlier_terms("Wann war das?", "Wie bewertete Trump das Treffen?") == "Wann war das? (bewertete, Trump, Treffen)"
    assert with_earlier_terms("Und was ist mit Trump?", "Wer ist Trump?") == "Und was ist mit Trump?"


def test_translation_prompt_lists_the_articles_words_and_the_german_query_finds_the_evidence(service_with):
    question = "Who did Trump ask to lead the negotiations with Russia in February?"
    german = "Wen bat Trump im Februar, die Verhandlungen mit Russland zu leiten?"
    service, llm = service_with(german)
    _, queries, context = service.retrieve(question)
    assert queries == [question, german]
    request = llm.seen[0][-1].content
    assert request.startswith(f"Frage: {question}")
    assert "negotiations: Verhandlungen" in request and "Russia: Russland" in request
    assert "Steve Witkoff gebeten, die Verhandlungen zu leiten" in context.text


def test_translation_without_hints_still_translates(seeded, embeddings):
    from rag.wiring import build_service

    settings, _ = seeded
    llm = ScriptedLLM("Wer leitete die Verhandlungen?")
    service = build_service(settings.model_copy(update={"translation_hints": False}), embeddings=embeddings,
                            llm_factory=lambda: llm)
    assert service.lexicon is None
    assert service.translate("Who led the negotiations?") == "Wer leitete die Verhandlungen?"
    assert llm.seen[0][-1].content.endswith("Wörter aus den Artikeln: -")


def test_the_unknown_share_measures_what_no_article_holds_without_looking_at_capitals(service_with):
    service, _ = service_with()
    service.keywords.ensure_current(service.store)
    covered = service.keywords.unknown_share(["Was sagte Trump nach dem Gipfel in Alaska über Putin?"])
    assert covered < 0.2
    assert service.keywords.unknown_share(["Was hat Xi Jinping beim Gipfel in Alaska gesagt?"]) > covered
    assert service.keywords.unknown_share(["wie wird das wetter morgen in berlin"]) > 0.5  # lowercase off-topic too
    # the best phrasing counts: an English question's German translation knows the articles' words
    assert service.keywords.unknown_share(["Who negotiated with whom?", "Wer leitete die Verhandlungen?"]) < 0.2
