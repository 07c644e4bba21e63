"""Load: 50 questions at once through the answer service and through the Discord double, and a
soak of 200 questions with a memory bound. RSS figures are printed (run with -s to see them).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from doubles.discord_api import DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.llm import ScriptedLLM
from doubles.service import FakeService, default_text

from bot.discord import render
from rag.answer import Answer
from rag.errors import QuestionError


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _assert_verbatim(service, answer: Answer) -> None:
    for citation in answer.citations:
        record = service.corpus.record(citation.source)
        assert record is not None and record.text[citation.start:citation.end] == citation.quote


ON_TOPIC = [  # reach the model (best sentence covers well over 30% of the question's weight)
    "Wie reagierte Kreml-Sprecher Peskow auf Trumps Andeutung eines Telefonats mit Putin?",
    "Was sagte Selenskyj über Sicherheitsgarantien?",
    "Wie bewertete Trump das Treffen in Alaska?",
]
SOAK_EXTRA = ["Welche Rolle spielte die Artikel-fünf-Garantie außerhalb der Nato?"]
OFF_TOPIC = [f"Was kostet {item} in {place} im Moment?" for item in ("ein Liter Milch", "ein Kilo Brot", "ein Stück Butter",
             "eine Kugel Eis", "ein Paar Schuhe", "ein Fahrradschloss") for place in ("Bayern", "Passau", "Flensburg", "Köln")]
BAD = ["", "   ", "🙂🙂🙂", "\x00\x01\x02", "x" * 5000, "?!?", "\u200b", "….", "x" * 2001, "\t\n"]


@pytest.mark.llm
def test_fifty_questions_at_once_through_the_service(seeded, embeddings, small_model_service):
    """50 threads call service.answer at the same moment: 3 real questions (the real 0.5B model,
    answers capped at 48 tokens), 37 off-topic ones the retrieval gate refuses (24 distinct),
    10 bad inputs (QuestionError). The service serializes the model; every call ends in an
    answer, a refusal or a clear QuestionError: none lost, none crashed."""
    from rag.wiring import build_service

    settings, _ = seeded
    load_settings = settings.model_copy(update={"model": "qwen2.5-coder-0.5b", "min_retrieval_score": 0.3,
                                                "max_answer_tokens": 48})
    llm = small_model_service.llm  # already loaded; shared, as one process shares one model
    service = build_service(load_settings, embeddings=embeddings, llm_factory=lambda: llm)
    questions = ON_TOPIC + OFF_TOPIC + BAD
    questions += OFF_TOPIC[: 50 - len(questions)]
    assert len(questions) == 50
    gc.collect()
    before = rss_mb()
    barrier = threading.Barrier(50)

    def ask(question: str):
        barrier.wait()
        started = time.perf_counter()
        try:
            return service.answer(question), time.perf_counter() - started
        except QuestionError as exc:
            return exc, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(ask, questions, timeout=900))
    wall = time.perf_counter() - started
    gc.collect()
    after = rss_mb()

    assert len(results) == 50
    outcomes = {"answered": 0, "refused": 0, "question_error": 0}
    for question, (result, _) in zip(questions, results):
        if isinstance(result, QuestionError):
            assert question in BAD and str(result).strip()
            outcomes["question_error"] += 1
            continue
        assert isinstance(result, Answer) and result.text.strip() and result.error is None, (question, result)
        assert question not in BAD
        _assert_verbatim(service, result)
        outcomes["refused" if result.refused else "answered"] += 1
        if question in OFF_TOPIC:
            assert result.refused and result.generated_tokens == 0, f"off-topic question reached the model: {question}"
    assert outcomes["question_error"] == len(BAD)
    slowest = max(seconds for _, seconds in results)
    print(f"\n50 at once through the service: {outcomes}, wall {wall:.1f} s, slowest {slowest:.1f} s, "
          f"RSS {before:.0f} -> {after:.0f} MB")


EchoLLM = ScriptedLLM.echo


SOAK_QUESTIONS = ON_TOPIC + SOAK_EXTRA + [
    "Was sagte Putin nach dem Gipfel?", "Welche Länder haben erfolglos versucht zu vermitteln?",
    "Was forderte Selenskyj von Europa?", "What did the Kremlin say about the phone call?",
    "Wer war beim Treffen in Alaska dabei?", "Was kostet ein Liter Milch in Bayern?",
]


def test_soak_of_200_questions_keeps_memory_bounded(seeded, embeddings):
    """200 questions through the real pipeline (embedding, Chroma, BM25, context, citation checks)
    with a stand-in model. Bound: RSS grows by less than 60 MB from after a 10-question warm-up
    to the end (the process holds torch, Chroma and the seeded store: about 700 MB)."""
    from rag.wiring import build_service

    settings, _ = seeded
    llm = EchoLLM()
    service = build_service(settings, embeddings=embeddings, llm_factory=lambda: llm)
    for i in range(10):
        service.answer(SOAK_QUESTIONS[i % len(SOAK_QUESTIONS)])
    gc.collect()
    warm = rss_mb()
    answered = refused = 0
    started = time.perf_counter()
    for i in range(200):
        question = SOAK_QUESTIONS[i % len(SOAK_QUESTIONS)]
        streamed: list[str] = []
        answer = service.answer(f"{question} ({i})" if i % 3 else question, on_token=streamed.append)
        _assert_verbatim(service, answer)
        if answer.refused:
            refused += 1
        else:
            answered += 1
            assert answer.citations and answer.grounded
    elapsed = time.perf_counter() - started
    gc.collect()
    end = rss_mb()
    print(f"\nsoak: 200 questions in {elapsed:.1f} s ({answered} answered, {refused} refused); "
          f"RSS after warm-up {warm:.0f} MB, after 200 {end:.0f} MB (+{end - warm:.1f} MB)")
    assert answered + refused == 200 and answered >= 150
    assert end - warm < 60, f"RSS grew by {end - warm:.1f} MB over 200 questions"


@pytest.fixture(autouse=False)
def no_violations(double: DiscordDouble):
    yield
    assert double.violations == [], "the bot did what Discord rejects"


async def test_fifty_concurrent_asks_through_the_discord_double(double: DiscordDouble, start_bot, no_violations) -> None:
    """50 users /ask at the same moment; the model is slow (held by a gate, then streaming) and
    the queue holds 5: each user gets the answer or the polite busy message, none is lost, the
    accepted ones are answered in arrival order, and Discord's limits hold throughout."""
    gate = threading.Event()
    service = FakeService(gate=gate, token_delay_s=0.01)
    before = rss_mb()
    await start_bot(service, discord_queue_size=5)
    questions = [f"Frage {i}: Was sagte Selenskyj über Europa?" for i in range(50)]
    asks = await asyncio.gather(*(double.slash(double.make_user(f"user{i}"), "ask", frage=q)
                                  for i, q in enumerate(questions)))
    await double.wait_for(lambda: all(a.original_id is not None for a in asks), what="every /ask acknowledged")
    busy = [a for a in asks if a.response_type == 4]  # answered at once (ephemeral) instead of deferred
    gate.set()
    accepted = [(a, q) for a, q in zip(asks, questions) if a not in busy]
    for ask, question in accepted:
        await double.wait_for(lambda a=ask, q=question: double.contents(a.original_id)[-1:] == [default_text(q, ())],
                              timeout=60, what=f"the answer to {question!r}")
    for ask in busy:
        assert double.contents(ask.original_id) == [render.BUSY]
    assert len(accepted) + len(busy) == 50
    assert 6 <= len(accepted) <= 7, len(accepted)  # the one being answered + 5 waiting (+1 popped meanwhile)
    assert [q for q, _ in service.calls] == [q for _, q in accepted]
    print(f"\n50 concurrent /ask, queue 5: {len(accepted)} answered, {len(busy)} told busy; "
          f"RSS {before:.0f} -> {rss_mb():.0f} MB")
