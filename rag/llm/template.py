"""Chat-template rendering that keeps the template's markup apart from the messages' contents.

Only the template's own markers ("<|im_start|>", "<|im_end|>", ...) may become special tokens;
an article or a question that contains the same text must be tokenized as plain text, or it
could close the <artikel> fence and open a system turn of its own (issue 17, item 1).
"""

from __future__ import annotations

from collections.abc import Callable

from rag.errors import GenerationError
from rag.llm.base import Message


def template_pieces(render: Callable[[list[Message]], str], messages: list[Message]) -> list[tuple[str, bool]]:
    """The rendered prompt as (text, special) pieces: template markup (special=True) alternating
    with each message's content (special=False), ending with the markup after the last message.

    Each content is rendered as a unique placeholder and swapped back in, so the template cannot
    confuse markup with content whatever the content holds."""
    placeholders = [f"\u0000NEWSBOT-{index}-{id(messages)}\u0000" for index in range(len(messages))]
    rest = render([Message(m.role, p) for m, p in zip(messages, placeholders)])
    pieces: list[tuple[str, bool]] = []
    for message, placeholder in zip(messages, placeholders):
        before, found, after = rest.partition(placeholder)
        if not found:  # a template that drops or rewrites a message: keep its markup, drop nothing
            raise GenerationError("the chat template does not render every message's content; use a GGUF with a standard chat template")
        pieces += [(before, True), (message.content, False)]
        rest = after
    pieces.append((rest, True))
    return pieces
