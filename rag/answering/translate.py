"""Between English and German: the question into the articles' German (with lexicon hints) for
the search, and the chosen German sentences into English for an English question."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from rag.answering.context import Sentence
from rag.answering.faithful import check_rendering
from rag.answering.followup import QUESTION_GRAMMAR, QUESTION_MAX_TOKENS, few_shot
from rag.errors import EmbeddingError
from rag.index.lexicon import Lexicon
from rag.index.store import Store
from rag.llm.base import LLM, Completion, Message
from rag.prompts import PromptLibrary

logger = logging.getLogger(__name__)

Similarity = Callable[[str, str], float]

ENGLISH_GRAMMAR = r"""
root ::= [^\n\[\]<>]{3,500}
"""


def translate(llm: LLM, prompts: PromptLibrary, question: str, hints: str) -> str:
    """The question in German, worded with the articles' own vocabulary where the lexicon has it."""
    messages = few_shot(prompts, "translate", prompts.render("translate.user", question=question, hints=hints or "-"))
    completion = llm.complete(messages, max_tokens=QUESTION_MAX_TOKENS, grammar=QUESTION_GRAMMAR, prefix="")
    return " ".join(completion.text.split()).strip("\"'„“ ")


def prepare_lexicon(lexicon: Lexicon | None, store: Store) -> bool:
    """The lexicon current with the store (built or loaded); False when it cannot be."""
    if lexicon is None:
        return False
    try:
        lexicon.ensure_current(store, store.generation())
        return True
    except EmbeddingError as exc:  # the lexicon's package is missing: translate without hints
        logger.warning("translation hints unavailable: %s", exc)
        return False


def translation_hints(lexicon: Lexicon | None, store: Store, question: str) -> str:
    """For each word of the question, the articles' nearest German words ("" without a lexicon)."""
    if not prepare_lexicon(lexicon, store):
        return ""
    try:
        return lexicon.hints(question)
    except EmbeddingError as exc:
        logger.warning("translation hints unavailable: %s", exc)
        return ""


@dataclass
class EnglishRendering:
    completion: Completion
    text: str
    problems: list[str]

    @property
    def faithful(self) -> bool:
        return bool(self.text) and not self.problems


def render_english(llm: LLM, prompts: PromptLibrary, sentences: list[Sentence], max_tokens: int,
                   cancel: threading.Event | None, similarity: Similarity | None = None,
                   min_similarity: float = 0.0) -> EnglishRendering:
    """The chosen German sentences rendered in English, and what makes the rendering unfaithful.

    The prompt holds the quote alone, never the user's question: the model renders, it does not
    answer, so an instruction in the question has nothing to act on. The rendering is checked
    before anything is shown (rag/answering/faithful.py)."""
    quote = "\n".join(" ".join(s.text.split()) for s in sentences)
    messages = [Message("system", prompts.raw("answer_en.system")),
                Message("user", prompts.render("answer_en.user", quote=quote))]
    completion = llm.complete(messages, max_tokens=max_tokens, grammar=ENGLISH_GRAMMAR, prefix="", cancel=cancel)
    text = " ".join(completion.text.split())
    report = check_rendering(quote, text, similarity, min_similarity)
    return EnglishRendering(completion, text, report.problems if text else ["empty rendering"])
