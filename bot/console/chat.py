"""`newsbot chat`: the console REPL over the answer service.

Two faces share one loop. On a terminal it uses prompt_toolkit (line editing, input history
kept across runs) and rich (streamed answer, spinner, progress bar). When stdin or stdout is not
a terminal it reads one question per line and writes plain text without control codes, so it
can be scripted. The service arrives through the constructor, so tests drive the loop with a
fake one.

The service runs in a worker thread and reports through a queue; the main thread renders and is
the one that receives Ctrl-C, which sets the service's cancel event instead of leaving.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from bot.console.render import (
    comparable,
    describe_model,
    describe_store,
    group_by_source,
    ingest_progress,
    plain_console,
    source_line,
    sources_block,
)
from rag.answer import Answer, Citation, Turn
from rag.errors import UserError
from rag.safe_text import strip_controls
from rag.settings import Settings

logger = logging.getLogger(__name__)

# Errors whose message is written for people: shown as one line, the loop goes on.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)

HISTORY_FILE = "chat_history"
PROMPT = "› "
HELP = [
    ("/sources", "full passages behind the last answer (quotes and everything the model read)"),
    ("/reset", "forget the conversation, so the next question starts fresh"),
    ("/model", "which model and which store answer"),
    ("/help", "this list"),
    ("/quit", "leave (Ctrl-D does the same)"),
]
KEYS = "Ctrl-C cancels a running answer, Ctrl-D leaves."


@dataclass
class _Request:
    """One question in flight: the worker fills `events`, the main thread renders them."""

    question: str
    cancel: threading.Event = field(default_factory=threading.Event)
    events: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    streamed: list[str] = field(default_factory=list)
    cancelled: bool = False


class ChatApp:
    """The chat loop. `interactive=None` decides by whether stdin and stdout are terminals."""

    def __init__(
        self,
        service: Any,
        console: Console | None = None,
        input_stream: TextIO | None = None,
        history_file: Path | None = None,
        *,
        interactive: bool | None = None,
        session: Any | None = None,
        ingest_fn: Callable[..., Any] | None = None,
        warm_up: bool = True,
    ) -> None:
        self.service = service
        self.settings: Settings = service.settings
        self.input_stream = input_stream if input_stream is not None else sys.stdin
        if interactive is None:
            interactive = _isatty(self.input_stream) and (console.is_terminal if console else _isatty(sys.stdout))
        self.interactive = interactive
        self.console = console or (Console(highlight=False) if interactive else plain_console(sys.stdout))
        self.history_file = history_file if history_file is not None else self.settings.data_dir / HISTORY_FILE
        self._session = session
        self._ingest_fn = ingest_fn
        self._warm_up = warm_up
        self.history: deque[Turn] = deque(maxlen=self.settings.history_turns)
        self.last_answer: Answer | None = None
        self.errors = 0

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> int:
        """Start up, then answer until /quit or end of input. Returns the exit status."""
        try:
            if not self.start():
                return 1
        except KeyboardInterrupt:
            self.console.print(Text("Interrupted during start-up.", style="yellow"))
            return 130
        while True:
            try:
                line = self.read_line()
            except EOFError:
                break
            except KeyboardInterrupt:
                if self.interactive:
                    continue  # Ctrl-C at the prompt clears the line, like a shell
                return 130
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if not self.command(line):
                    break
                continue
            self.ask(line)
        if self.interactive:
            self.console.print(Text("Bye.", style="dim"))
        return 1 if self.errors and not self.interactive else 0

    def read_line(self) -> str | None:
        """The next input line; None or EOFError at the end of input."""
        if not self.interactive:
            line = self.input_stream.readline()
            if not line:
                return None
            question = line.rstrip("\r\n")
            if question.strip():
                self.console.print(Text(f"> {question.strip()}"))  # a transcript pairs each answer with its question
            return question
        return self.session.prompt(_prompt_message())

    @property
    def session(self):
        if self._session is None:
            self._session = self._make_session()
        return self._session

    def _make_session(self):
        from prompt_toolkit import PromptSession

        from bot.console.history import open_history

        history = open_history(self.history_file, self.settings.chat_history_lines)  # 0600, bounded, or off (17.11)
        return PromptSession(history=history, enable_history_search=True)

    # ---- start-up -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Show model and store, fill an empty store from the seeds, load the model."""
        settings = self.settings
        self.console.print(Text("newsbot chat", style="bold") + Text(" · questions about the news articles in the store", style="dim"))
        try:
            count = self.service.store.chunk_count()
            if count == 0:
                count = self._ingest_seeds()
        except Exception as exc:  # shown as one line; the chat cannot start without a store
            self.error(exc)
            return False
        self.console.print(Text.assemble(("Store: ", "bold"), describe_store(settings), (f" · {count:,} chunks", "dim")))
        if count == 0:
            self.console.print(Text(f"The store is empty and {settings.seeds_dir} has no articles; "
                                    "add some with: newsbot ingest PATH", style="yellow"))
        if self._warm_up:
            try:
                with self._busy(f"Loading model {settings.model} …"):
                    self.service.warm_up()
            except Exception as exc:  # shown as one line; the chat cannot answer without a model
                self.error(exc)
                return False
        self.console.print(Text.assemble(("Model: ", "bold"), describe_model(self.service)))
        if self.interactive:
            self.console.print(Text(f"Ask a question, /help for commands. {KEYS}", style="dim"))
        return True

    def _ingest_seeds(self) -> int:
        from rag.index.ingest import ingest

        ingest_fn = self._ingest_fn or ingest
        seeds = self.settings.seeds_dir
        if not seeds.is_dir():
            return 0
        self.console.print(Text(f"The store is empty: ingesting the seed articles from {seeds}", style="yellow"))
        if self.interactive:
            with ingest_progress(self.console, detailed=True) as progress:
                summary = ingest_fn(self.service.store, [seeds], self.settings.chunk_chars, progress=progress)
        else:
            summary = ingest_fn(self.service.store, [seeds], self.settings.chunk_chars)
        for problem in summary.errors:
            self.console.print(Text(f"skipped: {problem}", style="yellow"))
        self.console.print(Text(f"Ingested {summary.added + summary.updated} articles ({summary.chunks:,} chunks).", style="green"))
        return summary.chunks

    # ---- commands -------------------------------------------------------------------------------
    def command(self, line: str) -> bool:
        """Run a /command; False means leave."""
        name = line.split()[0].lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            for cmd, what in HELP:
                self.console.print(Text.assemble((f"{cmd:<9}", "bold"), " ", what))
            self.console.print(Text(f"Anything else is a question; follow-ups may refer to earlier answers. {KEYS}", style="dim"))
        elif name == "/reset":
            self.history.clear()
            self.last_answer = None
            self.console.print(Text("Conversation forgotten; the next question starts fresh.", style="dim"))
        elif name == "/model":
            self.console.print(Text.assemble(("Model: ", "bold"), describe_model(self.service)))
            try:
                count = f" · {self.service.store.chunk_count():,} chunks"
            except USER_ERRORS:
                count = ""
            self.console.print(Text.assemble(("Store: ", "bold"), describe_store(self.settings), (count, "dim")))
            self.console.print(Text(f"History: last {self.settings.history_turns} turns "
                                    f"({len(self.history)} kept now)", style="dim"))
        elif name == "/sources":
            self.show_passages()
        else:
            self.console.print(Text(f"Unknown command {name}; /help lists the commands.", style="yellow"))
        return True

    # ---- one question ---------------------------------------------------------------------------
    def ask(self, question: str) -> Answer | None:
        """Answer in a worker thread; render its events here, where Ctrl-C arrives."""
        request = _Request(question)
        history = list(self.history)
        worker = threading.Thread(target=self._work, args=(request, history), name="newsbot-answer", daemon=True)
        status = self._busy("Searching the articles …")
        outcome: tuple[str, Any] | None = None
        try:  # Ctrl-C may arrive anywhere from here on, even before the worker runs
            status.__enter__()
            worker.start()
            outcome = self._render_events(request, status)
        except KeyboardInterrupt:
            request.cancel.set()
            request.cancelled = True
            status.__exit__(None, None, None)
            self._end_stream(request)
            self.console.print(Text("Cancelled.", style="yellow"))
            outcome = self._drain(request) if worker.ident is not None else None
        finally:
            status.__exit__(None, None, None)
        if outcome is None:
            return None
        kind, value = outcome
        if kind == "error":
            self._end_stream(request)
            self.error(value)
            return None
        answer: Answer = value
        if request.cancelled or answer.error == "cancelled":
            if not request.cancelled:
                self._end_stream(request)
                self.console.print(Text("Cancelled.", style="yellow"))
            return None
        self._end_stream(request)
        self.show_answer(answer, "".join(request.streamed))
        self.last_answer = answer
        self.history.append(Turn(answer.standalone_question or answer.question, answer.text))
        return answer

    def _work(self, request: _Request, history: list[Turn]) -> None:
        put = request.events.put
        try:
            answer = self.service.answer(
                request.question, history=history, cancel=request.cancel,
                on_token=lambda piece: put(("token", piece)),
                on_status=lambda kind, text: put(("status", (kind, text))),
            )
            put(("done", answer))
        except BaseException as exc:  # the worker must always report back, or the loop would wait forever
            put(("error", exc))

    def _render_events(self, request: _Request, status) -> tuple[str, Any]:
        while True:
            try:
                kind, value = request.events.get(timeout=0.1)  # short waits keep Ctrl-C responsive
            except queue.Empty:
                continue
            if kind == "status":
                status_kind, text = value[0], strip_controls(value[1])
                if status_kind == "rewritten":
                    self.console.print(Text(f"↳ {text}", style="dim italic") if self.interactive else Text(f"(rewritten: {text})"))
            elif kind == "token":
                if not self.interactive:
                    request.streamed.append(value)  # plain output shows only the verified text
                    continue
                value = strip_controls(value)
                if not request.streamed:
                    status.__exit__(None, None, None)
                    value = value.lstrip()
                request.streamed.append(value)
                self.console.print(value, end="", markup=False, highlight=False, soft_wrap=True)
            else:
                return kind, value

    def _drain(self, request: _Request) -> tuple[str, Any] | None:
        """After a cancel, wait for the worker to stop; a second Ctrl-C stops waiting."""
        try:
            while True:
                try:
                    kind, value = request.events.get(timeout=0.1)
                except queue.Empty:
                    continue
                if kind in ("done", "error"):
                    return kind, value
        except KeyboardInterrupt:
            logger.info("stopped waiting for the cancelled answer; it finishes in the background")
            return None

    def _end_stream(self, request: _Request) -> None:
        if self.interactive and request.streamed:
            self.console.print()
            request.streamed.append("\n")  # so a second call adds no blank line

    # ---- rendering ------------------------------------------------------------------------------
    def show_answer(self, answer: Answer, streamed: str) -> None:
        """The final answer: what was streamed, corrected where verification changed it, then sources."""
        shown, text = comparable(streamed), strip_controls(answer.text)
        if answer.refused:
            if shown and self.interactive:
                self.console.print(Text("The citations in this draft did not check out against the articles; withdrawn.", style="dim"))
            self.console.print(Text(text, style="yellow"))
        elif not self.interactive or not shown:
            self.console.print(Text(text))
        elif shown != comparable(text):
            self.console.print(Text("Verified answer (unsupported parts removed, citations renumbered):", style="dim"))
            self.console.print(Text(text))
        if answer.citations:
            self.show_sources(answer.citations, answer.as_of)
        if self.interactive:
            total = answer.timings.get("total_s")
            self.console.print(Text(f"{answer.model or describe_model(self.service)}" + (f" · {total:.1f} s" if total else ""), style="dim"))
            self.console.print()  # air before the next prompt

    def show_sources(self, citations: Iterable[Citation], as_of: str | None = None) -> None:
        for line in sources_block(citations, as_of):  # the same block `newsbot ask` prints
            self.console.print(line)

    def show_passages(self) -> None:
        """/sources: everything behind the last answer, in full."""
        answer = self.last_answer
        if answer is None:
            self.console.print(Text("No answer yet: ask a question first.", style="dim"))
            return
        self.console.print(Text.assemble(("Question: ", "bold"), strip_controls(answer.standalone_question or answer.question)))
        if answer.citations:
            self.console.print(Text("Cited passages (verbatim from the articles):", style="bold"))
            for c in answer.citations:
                self.console.print(source_line(c) + Text(f"  chars {c.start}–{c.end}", style="dim"))
                self.console.print(Text(f"    „{strip_controls(c.quote)}“"))
        if not answer.retrieved:
            self.console.print(Text("No passages were retrieved for this question.", style="dim"))
            return
        self.console.print(Text(f"Retrieved passages the model read ({len(answer.retrieved)}):", style="bold"))
        for source, passages in group_by_source(answer.retrieved):
            first = passages[0]
            self.console.print(Text.assemble(("  ", ""), (strip_controls(first.title or source), "bold"),
                                             (strip_controls(f" ({first.date or 'undatiert'}; "), "dim"), (strip_controls(source), "cyan"), (")", "dim")))
            for p in passages:
                self.console.print(Text.assemble((f"    {p.score:.3f}  ", "dim"), strip_controls(p.text)))

    def error(self, exc: BaseException) -> None:
        """One line, never a traceback (the log has the details)."""
        self.errors += 1
        if isinstance(exc, USER_ERRORS):
            message = str(exc)
        else:
            logger.debug("unexpected error", exc_info=exc)  # the traceback only with -vv
            message = f"Unexpected {type(exc).__name__}: {exc}"
        self.console.print(Text(f"Error: {' '.join(message.split())}", style="bold red"))

    def _busy(self, message: str):
        """A spinner on a terminal; nothing in plain output."""
        if self.interactive and self.console.is_terminal:
            return _Once(self.console.status(Text(message, style="dim"), spinner="dots"))
        return _Once(None)


class _Once:
    """A status context that may be left early (on the first token) and again at the end."""

    def __init__(self, status) -> None:
        self.status = status
        self.active = False

    def __enter__(self):
        if self.status is not None:
            self.status.__enter__()
            self.active = True
        return self

    def __exit__(self, *exc) -> None:
        if self.active:
            self.active = False
            self.status.__exit__(None, None, None)


def _prompt_message():
    from prompt_toolkit.formatted_text import FormattedText

    return FormattedText([("ansicyan bold", PROMPT)])


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def run_chat(settings: Settings, service: Any) -> int:
    """Entry point for `newsbot chat`: picks terminal or plain mode; returns the exit status."""
    interactive = _isatty(sys.stdin) and _isatty(sys.stdout)
    if not interactive:
        try:
            sys.stdin.reconfigure(errors="replace")  # a stray byte must not end a scripted run
        except (AttributeError, ValueError):
            pass
    app = ChatApp(service, interactive=interactive, history_file=settings.data_dir / HISTORY_FILE)
    started = time.perf_counter()
    try:
        return app.run()
    finally:
        logger.info("chat ended after %.0f s", time.perf_counter() - started)
