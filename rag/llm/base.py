"""What the answer service needs from a model: messages in, a completion or a choice out.

Backends declare what they can do as flags (`supports_choice`, `can_stream`), and callers check
those flags, never `hasattr`: `rag.answering.select.choose` is the one place that reads
`supports_choice`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

OnToken = Callable[[str], None]


@dataclass
class Message:
    role: str
    content: str


@dataclass
class Completion:
    text: str
    prompt_tokens: int = 0
    prefill_tokens: int = 0  # prompt tokens actually evaluated (the rest came from the KV cache)
    generated_tokens: int = 0
    first_token_s: float = 0.0
    total_s: float = 0.0
    cancelled: bool = False


@dataclass
class Choice:
    """The model's preference among numbered context sentences, read from its next-token
    distribution: log-probabilities of citing [1]..[k], and how much more likely it is to write
    the refusal token than to cite anything (log P(refusal) - log P("["))."""

    logprobs: dict[int, float]
    refusal_margin: float
    prompt_tokens: int = 0
    prefill_tokens: int = 0
    total_s: float = 0.0
    generated_tokens: int = 0  # a greedy pick's tokens, where the backend had to generate one



class LLM(Protocol):
    name: str
    supports_choice: bool  # `choose` reads next-token probabilities (else it returns None)
    can_stream: bool  # `complete` calls `on_token` as tokens arrive

    def count_tokens(self, text: str) -> int: ...

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        grammar: str | None = None,
        prefix: str | None = None,
        stop: list[str] | None = None,
        on_token: OnToken | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion: ...

    def choose(self, messages: list[Message], *, prefix: str | None, options: int, refusal: str) -> Choice | None: ...

    def forget_states(self) -> None:
        """Drop cached model states (a cold start for benchmarks); a no-op where nothing is cached."""
