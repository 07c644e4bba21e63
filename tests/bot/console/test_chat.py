"""The chat loop with a fake answer service: history, commands, plain output, cancel, errors."""

from __future__ import annotations

import _thread
import io
import re
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from bot.console.chat import ChatApp, run_chat
from rag.answer import Answer, Citation, RetrievedPassage, Turn
from rag.errors import GenerationError, QuestionError
from rag.index.store import StoreError
from rag.settings import Settings

ANSI = re.compile(r"\x1b[\[\]()][0-9;?]*[A-Za-z]?")


def make_answer(question: str, text: str = "Trump gab dem Treffen zehn von zehn Punkten [1].", *, refused=False,
                standalone=None, error=None) -> Answer:
    citation = Citation(1, "000_alaska", "Trump schließt sofortige Waffenruhe aus", "2025-08-16",
                        "er würde das Treffen mit zehn von zehn Punkten bewerten", 100, 150)
    passages = [RetrievedPassage("000_alaska", "Der Präsident erklärte außerdem, er würde das Treffen bewerten.", 0.91,
                                 "Trump schließt sofortige Waffenruhe aus", "2025-08-16", 100, 160),
                RetrievedPassage("002_schutz", "Trump verspricht sehr guten Schutz.", 0.42, "Schutz für die Ukraine", "", 0, 35)]
    return Answer(question=question, text=text, refused=refused, citations=[] if refused else [citation],
                  retrieved=passages, model="fake-0.5b", standalone_question=standalone, error=error,
                  timings={"total_s": 1.25})


class FakeStore:
    def __init__(self, chunks: int = 52) -> None:
        self.chunks = chunks

    def chunk_count(self) -> int:
        if isinstance(self.chunks, Exception):
            raise self.chunks
        return self.chunks


class FakeService:
    """Answers from a script: question -> callable(question, history, on_token, cancel, on_status) or Answer."""

    def __init__(self, settings: Settings, script: dict | None = None, chunks=52) -> None:
        self.settings = settings
        self.store = FakeStore(chunks)
        self.model_name = "fake-0.5b"
        self.script = script or {}
        self.calls: list[tuple[str, list[Turn]]] = []
        self.warmed = False

    def warm_up(self) -> None:
        self.warmed = True

    def answer(self, question, history=(), on_token=None, cancel=None, filters=None, on_status=None) -> Answer:
        self.calls.append((question, list(history)))
        behaviour = self.script.get(question)
        if callable(behaviour):
            return behaviour(question, history, on_token, cancel, on_status)
        if isinstance(behaviour, Exception):
            raise behaviour
        answer = behaviour or make_answer(question)
        if on_token and not answer.refused:
            for word in answer.text.split(" "):
                on_token(word + " ")
        return answer


class ScriptedSession:
    """Stands in for prompt_toolkit: returns lines, raises what it is given, then EOF."""

    def __init__(self, lines) -> None:
        self.lines = list(lines)

    def prompt(self, message=None) -> str:
        if not self.lines:
            raise EOFError
        item = self.lines.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "000_alaska.txt").write_text("Trump und Putin in Alaska.\n", encoding="utf-8")
    return Settings(data_dir=tmp_path / "data", seeds_dir=seeds, history_turns=2, model="fake-0.5b")


def plain(service, text: str):
    out = io.StringIO()
    from bot.console.chat import plain_console

    app = ChatApp(service, console=plain_console(out), input_stream=io.StringIO(text), interactive=False)
    code = app.run()
    return app, code, out.getvalue()


def terminal(service, lines, width: int = 200):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=width, color_system="truecolor")
    app = ChatApp(service, console=console, interactive=True, session=ScriptedSession(lines))
    code = app.run()
    return app, code, out.getvalue()


# ---- plain (scripted) mode ----------------------------------------------------------------------
def test_plain_mode_answers_each_line_with_sources_and_no_control_codes(settings):
    service = FakeService(settings, {"Und die Chance?": make_answer("Und die Chance?", "Er sagte 50:50 [1].",
                                                                     standalone="Wie hoch schätzte Trump die Chance?")})
    app, code, out = plain(service, "Wie bewertete Trump das Treffen?\n\n   \nUnd die Chance?\n")
    assert code == 0
    assert "\x1b" not in out and "\r" not in out
    assert "Model: fake-0.5b" in out and "Store:" in out and "· 52 chunks" in out
    assert "> Wie bewertete Trump das Treffen?\nTrump gab dem Treffen zehn von zehn Punkten [1].\nQuellen:\n" in out
    assert "\n[1] Trump schließt sofortige Waffenruhe aus (2025-08-16; 000_alaska)\n" in out
    assert "„er würde das Treffen mit zehn von zehn Punkten bewerten“" in out
    assert "Er sagte 50:50 [1]." in out
    assert [q for q, _ in service.calls] == ["Wie bewertete Trump das Treffen?", "Und die Chance?"]  # blank lines skipped
    assert service.calls[1][1] == [Turn("Wie bewertete Trump das Treffen?", "Trump gab dem Treffen zehn von zehn Punkten [1].")]
    assert service.warmed


def test_plain_mode_shows_rewritten_follow_up(settings):
    def follow_up(question, history, on_token, cancel, on_status):
        on_status("rewritten", "Wie hoch schätzte Trump die Chance auf eine Einigung?")
        return make_answer(question, "50:50 [1].", standalone="Wie hoch schätzte Trump die Chance auf eine Einigung?")

    service = FakeService(settings, {"Und die Chance?": follow_up})
    app, code, out = plain(service, "Erste Frage zum Gipfel\nUnd die Chance?\n")
    assert "(rewritten: Wie hoch schätzte Trump die Chance auf eine Einigung?)\n50:50 [1]." in out
    # history keeps the standalone form, so later follow-ups resolve against it
    assert app.history[-1] == Turn("Wie hoch schätzte Trump die Chance auf eine Einigung?", "50:50 [1].")


def test_history_is_bounded_and_reset_clears_it(settings):
    service = FakeService(settings)
    app, code, out = plain(service, "eins\nzwei\ndrei\nvier\n/reset\nfünf\n")
    assert [len(h) for _, h in service.calls] == [0, 1, 2, 2, 0]
    assert [t.question for t in service.calls[3][1]] == ["zwei", "drei"]
    assert "Conversation forgotten" in out
    assert [t.question for t in app.history] == ["fünf"]


def test_history_turns_zero_keeps_no_history(settings):
    settings.history_turns = 0
    service = FakeService(settings)
    plain(service, "eins\nzwei\n")
    assert [h for _, h in service.calls] == [[], []]


def test_refusal_is_shown_without_sources_and_still_counts_as_a_turn(settings):
    refusal = make_answer("Wer gewann die Wahl?", "Dazu finde ich in den vorliegenden Artikeln keine Angaben.", refused=True)
    service = FakeService(settings, {"Wer gewann die Wahl?": refusal})
    app, code, out = plain(service, "Wer gewann die Wahl?\n")
    assert "Dazu finde ich in den vorliegenden Artikeln keine Angaben." in out
    assert "Quellen:" not in out
    assert code == 0


def test_commands(settings):
    service = FakeService(settings)
    app, code, out = plain(service, "/sources\n/help\n/model\n/nope\nEine Frage zum Gipfel\n/sources\n/quit\nnie gefragt\n")
    assert "No answer yet" in out
    for cmd in ("/sources", "/reset", "/model", "/help", "/quit"):
        assert cmd in out
    assert "Model: fake-0.5b (llama.cpp, CPU)" in out
    assert "History: last 2 turns" in out
    assert "Unknown command /nope" in out
    # /sources: the cited quotes and every retrieved passage in full, grouped by article
    after = out.split("> /sources")[-1]
    assert "Cited passages" in after and "„er würde das Treffen mit zehn von zehn Punkten bewerten“" in after
    assert "Retrieved passages the model read (2)" in after
    assert "Der Präsident erklärte außerdem, er würde das Treffen bewerten." in after
    assert "Trump verspricht sehr guten Schutz." in after and "Schutz für die Ukraine (undatiert; 002_schutz)" in after
    assert [q for q, _ in service.calls] == ["Eine Frage zum Gipfel"]  # /quit stops reading


def test_errors_are_one_line_and_the_loop_goes_on(settings):
    service = FakeService(settings, {
        "leer": QuestionError("The question is empty: ask something."),
        "kaputt": GenerationError("The model server did not answer; start it."),
        "store": StoreError("The store is corrupt; rebuild it with: newsbot ingest --rebuild"),
        "bug": RuntimeError("boom\nsecond line"),
    })
    app, code, out = plain(service, "leer\nkaputt\nstore\nbug\ngute Frage\n")
    assert "Error: The question is empty: ask something.\n" in out
    assert "Error: The model server did not answer; start it.\n" in out
    assert "Error: The store is corrupt; rebuild it with: newsbot ingest --rebuild\n" in out
    assert "Error: Unexpected RuntimeError: boom second line\n" in out
    assert "Traceback" not in out
    assert "Trump gab dem Treffen" in out  # the last question was still answered
    assert code == 1  # a script learns that something failed
    assert len(app.history) == 1


# ---- start-up -----------------------------------------------------------------------------------
def test_empty_store_ingests_the_seeds_with_progress(settings):
    seen = []

    def fake_ingest(store, paths, chunk_chars, progress=None):
        seen.append((paths, chunk_chars))
        if progress:
            progress("000_alaska.txt", 0, 1)
            progress("", 1, 1)
        store.chunks = 3
        return SimpleNamespace(added=1, updated=0, chunks=3, errors=["bad.pdf: cannot read"])

    service = FakeService(settings, chunks=0)
    out = io.StringIO()
    app = ChatApp(service, console=Console(file=out, force_terminal=True, width=120), interactive=True,
                  session=ScriptedSession([]), ingest_fn=fake_ingest)
    assert app.run() == 0
    text = ANSI.sub("", out.getvalue())
    assert seen == [([settings.seeds_dir], settings.chunk_chars)]
    assert "Ingested 1 articles (3 chunks)" in text
    assert "skipped: bad.pdf: cannot read" in text
    assert "· 3 chunks" in text


def test_plain_start_up_ingests_without_progress_bar(settings):
    def fake_ingest(store, paths, chunk_chars, progress=None):
        assert progress is None
        store.chunks = 7
        return SimpleNamespace(added=1, updated=0, chunks=7, errors=[])

    service = FakeService(settings, chunks=0)
    out = io.StringIO()
    from bot.console.chat import plain_console

    app = ChatApp(service, console=plain_console(out), input_stream=io.StringIO(""), interactive=False, ingest_fn=fake_ingest)
    assert app.run() == 0
    assert "Ingested 1 articles (7 chunks)." in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_unusable_store_or_model_ends_with_one_line(settings):
    service = FakeService(settings, chunks=StoreError("Cannot reach the Chroma server at h:1; start it"))
    app, code, out = plain(service, "frage\n")
    assert code == 1 and "Error: Cannot reach the Chroma server at h:1; start it" in out and not service.calls

    service = FakeService(settings)
    service.warm_up = lambda: (_ for _ in ()).throw(GenerationError("llama.cpp could not load x.gguf"))
    app, code, out = plain(service, "frage\n")
    assert code == 1 and "Error: llama.cpp could not load x.gguf" in out and not service.calls


# ---- terminal mode ------------------------------------------------------------------------------
def test_terminal_streams_then_shows_the_verified_answer_when_it_changed(settings):
    def changed(question, history, on_token, cancel, on_status):
        on_status("rewritten", "Wie bewertete Trump das Treffen in Alaska?")
        for piece in ["Trump ", "gab zehn Punkte [2]. ", "Und erfand etwas [3]."]:
            on_token(piece)
        return make_answer(question, "Trump gab zehn Punkte [1].")

    service = FakeService(settings, {"Und das Treffen?": changed})
    app, code, out = terminal(service, ["Frage eins zum Gipfel", "Und das Treffen?"])
    text = ANSI.sub("", out)
    assert code == 0
    assert "\x1b[" in out  # styled on a terminal
    assert "Trump gab dem Treffen zehn von zehn Punkten [1]. \n" in text  # first answer streamed, unchanged
    assert text.count("Verified answer") == 1
    assert "↳ Wie bewertete Trump das Treffen in Alaska?" in text
    assert "Trump gab zehn Punkte [2]. Und erfand etwas [3].\nVerified answer" in text
    assert "Trump gab zehn Punkte [1].\nQuellen:" in text
    assert "fake-0.5b · 1.2 s" in text


def test_terminal_withdrawn_draft_is_marked(settings):
    def withdrawn(question, history, on_token, cancel, on_status):
        on_token("Etwas Falsches [2].")
        return make_answer(question, "Dazu finde ich in den vorliegenden Artikeln keine Angaben.", refused=True)

    service = FakeService(settings, {"Frage": withdrawn})
    app, code, out = terminal(service, ["Frage"])
    text = ANSI.sub("", out)
    assert "Etwas Falsches [2].\nThe citations in this draft did not check out" in text
    assert "keine Angaben." in text and "Quellen:" not in text


def test_ctrl_c_cancels_the_answer_but_not_the_chat(settings):
    stopped = threading.Event()

    def slow(question, history, on_token, cancel, on_status):
        on_token("Trump sagte ")
        time.sleep(0.3)  # let the main thread show the first words
        _thread.interrupt_main()  # what Ctrl-C does to the main thread
        assert cancel.wait(5), "the chat never set the cancel event"
        stopped.set()
        return make_answer(question, "Trump sagte", error="cancelled")

    service = FakeService(settings, {"langsam": slow})
    app, code, out = terminal(service, ["langsam", KeyboardInterrupt(), "schnell"])
    text = ANSI.sub("", out)
    assert stopped.is_set()
    assert code == 0
    assert "Trump sagte \nCancelled." in text
    assert [q for q, _ in service.calls] == ["langsam", "schnell"]  # still chatting after Ctrl-C
    assert service.calls[1][1] == []  # a cancelled answer is no turn
    assert text.rstrip().endswith("Bye.")


def test_service_reported_cancel_is_not_a_turn(settings):
    service = FakeService(settings, {"x": make_answer("x", "halb", error="cancelled")})
    app, code, out = terminal(service, ["x"])
    assert "Cancelled." in ANSI.sub("", out) and not app.history and app.last_answer is None


def test_input_history_is_kept_across_runs(settings):
    from prompt_toolkit.application import create_app_session
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    for question in ("Wie bewertete Trump das Treffen?", "Und die Chance?"):
        with create_pipe_input() as pipe, create_app_session(input=pipe, output=DummyOutput()):
            pipe.send_text(question + "\r")
            pipe.send_text("\x04")  # Ctrl-D leaves
            app = ChatApp(FakeService(settings), console=Console(file=io.StringIO(), force_terminal=True), interactive=True)
            assert app.run() == 0
    history_file = settings.data_dir / "chat_history"
    saved = history_file.read_text(encoding="utf-8")
    assert "+Wie bewertete Trump das Treffen?" in saved and "+Und die Chance?" in saved
    assert list(app.session.history.load_history_strings()) == ["Und die Chance?", "Wie bewertete Trump das Treffen?"]


def test_run_chat_uses_plain_mode_without_a_terminal(settings, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Wie bewertete Trump das Treffen?\n"))
    service = FakeService(settings)
    assert run_chat(settings, service) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "Trump gab dem Treffen zehn von zehn Punkten [1]." in out and "(2025-08-16; 000_alaska)" in out


def test_terminal_does_not_repeat_an_answer_that_only_moved_a_full_stop(settings):
    def moved(question, history, on_token, cancel, on_status):
        on_token("Peskow wollte das weder bestätigen noch dementieren. [1]")
        return make_answer(question, "Peskow wollte das weder bestätigen noch dementieren [1].")

    service = FakeService(settings, {"Frage": moved})
    app, code, out = terminal(service, ["Frage"])
    text = ANSI.sub("", out)
    assert "Verified answer" not in text and text.count("dementieren") == 1
