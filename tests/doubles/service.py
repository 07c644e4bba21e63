"""A deterministic stand-in for rag.answering.service: streams a few tokens, optionally waits on a gate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from rag.answer import Answer, Citation, Turn
from rag.errors import QuestionError


def default_text(question: str, history: Sequence[Turn]) -> str:
    prefix = f"Zur Folgefrage (nach {len(history)} Runden): " if history else ""
    return f"{prefix}Antwort auf „{question}“. Trump und Putin trafen sich in Alaska [1]."


class FakeService:
    model_name = "fake-model"

    def __init__(
        self,
        *,
        text: Callable[[str, Sequence[Turn]], str] = default_text,
        citations: list[Citation] | None = None,
        token_delay_s: float = 0.0,
        gate: threading.Event | None = None,
        error: Exception | None = None,
    ) -> None:
        self.text = text
        self.citations = citations if citations is not None else [
            Citation(1, "000_24974ad38bb207f4", "Trump schließt sofortige Waffenruhe aus", "2025-08-16",
                     "Das Treffen endete ohne **greifbare** Ergebnisse, sagt @everyone.", 0, 60)]
        self.token_delay_s = token_delay_s
        self.gate = gate
        self.error = error
        self.calls: list[tuple[str, tuple[Turn, ...]]] = []
        self.threads: set[str] = set()
        self.started = threading.Event()

    def answer(self, question: str, history: Sequence[Turn] = (), on_token: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None) -> Answer:
        self.calls.append((question, tuple(history)))
        self.threads.add(threading.current_thread().name)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(30), "the test never opened the gate"
        if self.error is not None:
            raise self.error
        if not question.strip():
            raise QuestionError("Bitte stell eine Frage.")
        text = self.text(question, history)
        words = text.split(" ")
        for i, word in enumerate(words):
            if cancel is not None and cancel.is_set():
                break
            if on_token is not None:
                on_token(word if i == 0 else " " + word)
            if self.token_delay_s:
                time.sleep(self.token_delay_s)
        return Answer(question=question, text=text, refused=False, citations=list(self.citations),
                      model=self.model_name, grounded=True)
