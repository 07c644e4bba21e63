"""What the bot needs from the answer service, so tests can hand it a fake."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from rag.answer import Answer, Turn


class AnswerService(Protocol):
    """The blocking answer call of rag.service; the bot runs it on its single worker thread."""

    def answer(
        self,
        question: str,
        history: Sequence[Turn] = (),
        on_token: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Answer: ...

