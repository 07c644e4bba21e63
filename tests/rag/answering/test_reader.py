"""The reader: a second, smaller model reads the context for the decisions; the chat model generates.

Real seeded Chroma store and embedder; the two models are scripted doubles, so which model got
which call is observable."""

from __future__ import annotations

import pytest
from conftest import make_settings
from doubles.llm import ScriptedLLM


class RecordingChooser(ScriptedLLM):
    """Reports a choice like `ScriptedLLM.choosing` and counts the choices it was asked for."""

    def __init__(self) -> None:
        super().__init__(then="unused", choice=(-3.0, 1), name="reader")
        self.choices = 0

    def choose(self, messages, *, prefix, options, refusal):
        self.choices += 1
        return super().choose(messages, prefix=prefix, options=options, refusal=refusal)


@pytest.mark.parametrize(("overrides", "separate"), [
    ({}, True),  # the default: the bundled 1.5B's reader, the 0.5B, reads; the 1.5B generates
    ({"model": "qwen2.5-coder-0.5b"}, False),
    ({"model": "/models/own.gguf"}, False),  # a model of the user's own reads for itself
    ({"model": "/models/own.gguf", "reader_model": "qwen2.5-coder-0.5b"}, True),
    ({"reader_model": "qwen2.5-coder-1.5b"}, False),  # the same model is loaded once
    ({"llm_backend": "openai"}, False),  # a model server has one model
])
def test_a_separate_reader_is_built_only_where_one_is_set(tmp_path, overrides, separate):
    from rag.wiring import reader_factory

    settings = make_settings(tmp_path, **overrides)
    assert (reader_factory(settings) is not None) is separate
    assert (settings.reading_model != settings.model) is separate


def test_the_reader_chooses_and_the_chat_model_translates(seeded, embeddings):
    from rag.wiring import build_service

    settings, _ = seeded
    chat = ScriptedLLM(then="Wo trafen sich Trump und Putin in Alaska?", name="chat")
    reader = RecordingChooser()
    service = build_service(settings, embeddings=embeddings, llm_factory=lambda: chat, reader=lambda: reader)

    answer = service.answer("Where did Trump and Putin meet in Alaska?")
    assert reader.choices == 1 and not reader.seen  # the reader only read the context
    assert chat.seen and "Alaska" in chat.seen[0][-1].content  # the chat model translated (and rendered)
    assert answer.search_queries[-1] == "Wo trafen sich Trump und Putin in Alaska?"

    german = service.answer("Wo trafen sich Trump und Putin?")
    assert reader.choices == 2 and german.search_queries == ["Wo trafen sich Trump und Putin?"]


def test_without_a_reader_the_chat_model_reads(seeded, embeddings):
    from rag.wiring import build_service

    settings, _ = seeded
    only = RecordingChooser()
    service = build_service(settings, embeddings=embeddings, llm_factory=lambda: only)
    assert service.reader is service.llm
    service.answer("Wo trafen sich Trump und Putin?")
    assert only.choices == 1
    assert service.models == [only]


def test_the_shipped_decisions_name_the_reader_they_were_fitted_with(tmp_path):
    from rag.answering.fitted import DEFAULT_PATH, DecisionModels

    models = DecisionModels.load(DEFAULT_PATH)
    assert models.mismatches(make_settings(tmp_path)) == []  # the defaults are what they were fitted with
    changed = models.mismatches(make_settings(tmp_path, reader_model="qwen2.5-coder-1.5b", context_tokens=260))
    assert len(changed) == 2 and changed[0].startswith("reader 'qwen2.5-coder-0.5b'")


def test_the_default_reader_factory_loads_the_bundled_reader(tmp_path, monkeypatch):
    import rag.wiring as wiring

    loaded = []
    monkeypatch.setattr(wiring, "make_llm", lambda settings, model=None: loaded.append(model) or model)
    assert wiring.reader_factory(make_settings(tmp_path))() == "qwen2.5-coder-0.5b"
    assert wiring.reader_factory(make_settings(tmp_path, model="/m/own.gguf", reader_model="/m/small.gguf"))() == "/m/small.gguf"
    assert loaded == ["qwen2.5-coder-0.5b", "/m/small.gguf"]


def _skipping(service, answer_at: float, refuse_below: float):
    """The service's decisions with the reading skip at the given thresholds."""
    from dataclasses import replace

    service.decisions = replace(service.decisions, skip=replace(service.decisions.skip, answer_at=answer_at,
                                                                refuse_below=refuse_below))
    return service


@pytest.mark.parametrize(("question", "read", "refused"), [
    ("Wo trafen sich Trump und Putin?", False, False),  # sure without reading: answered (Anchorage)
    ("Was kostet ein Liter Milch in Berlin?", False, True),  # sure without reading: refused
    ("Wie heißt der Bürgermeister von Paris?", True, None),  # unsure: the reader reads
])
def test_the_reader_reads_only_where_the_decisions_without_it_are_unsure(seeded, embeddings, question, read, refused):
    from rag.wiring import build_service

    settings, _ = seeded
    reader = RecordingChooser()
    service = _skipping(build_service(settings.model_copy(update={"skip_reading": True}), embeddings=embeddings,
                                      llm_factory=lambda: ScriptedLLM(then="unused", name="chat"), reader=lambda: reader),
                        answer_at=0.72, refuse_below=0.30)  # the band fitted on the 209 tune questions at three sentences
    answer = service.answer(question)
    assert reader.choices == int(read) and answer.decision["read"] is read
    if refused is not None:
        assert answer.refused is refused
    if not read and not refused:
        assert "Anchorage" in answer.text and answer.citations

    reading = build_service(settings, embeddings=embeddings, llm_factory=lambda: ScriptedLLM(then="unused", name="chat"),
                            reader=lambda: reader)
    assert not reading.settings.skip_reading
    reading.answer(question)
    assert reader.choices == int(read) + 1  # NEWSBOT_SKIP_READING=false: the reader reads every context


def test_a_skip_that_decides_every_question_never_loads_the_reader(seeded, embeddings):
    from rag.wiring import build_service

    def no_reader():
        raise AssertionError("the reader was loaded")

    settings, _ = seeded
    chat = ScriptedLLM(then="unused", name="chat")
    chat.count_tokens = len  # distinguishable from the approximate count used while no model is loaded
    service = _skipping(build_service(settings.model_copy(update={"skip_reading": True}), embeddings=embeddings,
                                      llm_factory=lambda: chat, reader=no_reader), answer_at=0.5, refuse_below=0.5)
    assert not service.reads
    service.warm_up()  # the chat model's prompt heads only
    for question in ("Wie heißt der Bürgermeister von Paris?", "Wo trafen sich Trump und Putin?"):
        assert service.answer(question).decision["read"] is False
    assert service.count_tokens("Anchorage, Alaska") == len("Anchorage, Alaska")  # counted by the chat model


def test_ingest_computes_no_block_states_where_no_context_is_read(tmp_path):
    from types import SimpleNamespace

    from rag.answering.block_states import sync

    settings = make_settings(tmp_path, block_states_mb=64, skip_reading=True)
    service = SimpleNamespace(settings=settings, reads=False)  # no reader, no store: touching either fails
    summary = sync(service)
    assert summary.needed == summary.computed == 0 and not (tmp_path / "kv").exists()
