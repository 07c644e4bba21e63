"""The one scripted model double: `complete` answers from a script, `choose` from a fixed choice.

Variants (classmethods) stand in for the backends the tests need:
* `ScriptedLLM(*texts)`: the next scripted text per completion; records the messages (`seen`).
* `ScriptedLLM.choosing(margin, prefer)`: a backend with probabilities (supports_choice) that
  prefers one sentence and is `margin` nats from refusing; completions say "Translated question?".
* `ScriptedLLM.greedy(text)`: a backend without probabilities (an OpenAI-compatible server): the
  service falls back to one grammar-constrained pick; records the grammars.
* `ScriptedLLM.echo()`: cites the first context sentence verbatim and streams it, so retrieval,
  context selection, citation checks and the store all run for real.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rag.llm.base import Choice, Completion
from rag.text import approx_tokens


class ScriptedLLM:
    can_stream = True

    def __init__(self, *texts: str, then: str | Callable[[list], str] | None = None,
                 choice: tuple[float, int] | None = None, echo: bool = False, record: bool = True,
                 name: str = "scripted") -> None:
        self.texts = list(texts)
        self.then = then
        self.choice = choice
        self.supports_choice = choice is not None
        self.echo_mode = echo
        self.record = record
        self.name = name
        self.seen: list[list] = []
        self.grammars: list[str | None] = []
        self.calls = 0

    @classmethod
    def choosing(cls, margin: float, prefer: int = 1) -> ScriptedLLM:
        return cls(then="Translated question?", choice=(margin, prefer), name="choosing")

    @classmethod
    def greedy(cls, text: str) -> ScriptedLLM:
        return cls(then=text, name="greedy")

    @classmethod
    def echo(cls) -> ScriptedLLM:
        return cls(then=_echo, echo=True, record=False, name="echo")

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)

    def choose(self, messages, *, prefix, options, refusal):
        if self.choice is None:
            return None
        margin, prefer = self.choice
        return Choice({n: (-0.1 if n == prefer else -3.0) for n in range(1, options + 1)}, margin)

    def complete(self, messages, *, max_tokens=0, grammar=None, prefix=None, stop=None, on_token=None, cancel=None):
        self.calls += 1
        if self.record:
            self.seen.append(messages)
            self.grammars.append(grammar)
        if self.texts or self.then is None:
            text = self.texts.pop(0)
        else:
            text = self.then(messages) if callable(self.then) else self.then
        if not self.echo_mode:
            return Completion(text)
        if on_token:
            for piece in re.findall(r"\S+\s*", text):
                on_token(piece)
        user = messages[-1].content
        return Completion(text, prompt_tokens=approx_tokens(user), prefill_tokens=0, generated_tokens=len(text.split()),
                          first_token_s=0.0, total_s=0.0)

    def forget_states(self) -> None:
        pass


def _echo(messages) -> str:
    user = messages[-1].content
    if "<artikel>" not in user:  # query translation or follow-up rewrite: the question itself
        return user.strip().splitlines()[-2].removeprefix("Frage: ") if "Frage:" in user else "Frage"
    found = re.search(r"^\[(\d+)\] (.+)$", user, re.M)
    return f"[{found.group(1)}] {found.group(2)}" if found else "NICHT_IN_DEN_ARTIKELN"
