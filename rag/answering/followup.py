"""Follow-up questions: detect them, rewrite them into standalone questions, check the rewrite.

Small models often echo the earlier question or the prompt instead of rewriting, so the output is
constrained to one question (no ':' to start a "Verlauf:" echo) and kept only if it keeps the
follow-up's own content words and is not the earlier question again; otherwise the follow-up
plus the earlier question's content words is the search query.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rag.answer import Turn
from rag.german import FOLLOW_UP_WORDS
from rag.llm.base import LLM, Message
from rag.prompts import PromptLibrary
from rag.text import content_terms, words

logger = logging.getLogger(__name__)

# A question this short (in words) leans on the conversation even without a pronoun
# ("Und Selenskyj?"); set on the chat examples of the dev set.
FOLLOW_UP_MAX_WORDS = 6
# A rewrite longer than REWRITE_MAX_GROWTH x the follow-up + REWRITE_SLACK_CHARS is an echo of the
# prompt or the history, not a question (the longest good rewrite seen was well inside it).
REWRITE_MAX_GROWTH = 2
REWRITE_SLACK_CHARS = 300
# Tokens a rewritten or translated question may have (the grammar also caps it at 250 characters).
QUESTION_MAX_TOKENS = 60

QUESTION_GRAMMAR = r"""
root ::= [^\n:\[\]<>]{3,250} "?"
"""


def needs_rewrite(question: str) -> bool:
    return bool(FOLLOW_UP_WORDS.search(question)) or len(question.split()) < FOLLOW_UP_MAX_WORDS


def few_shot(prompts: PromptLibrary, task: str, user: str) -> list[Message]:
    """System prompt, the task's examples as real turns, then the request: prompts/<task>.*.txt."""
    messages = [Message("system", prompts.raw(f"{task}.system"))]
    for example, reply in prompts.examples(f"{task}.examples"):
        messages += [Message("user", example), Message("assistant", reply)]
    return messages + [Message("user", user)]


def rewrite(llm: LLM, prompts: PromptLibrary, question: str, history: Sequence[Turn], history_turns: int) -> str:
    """The follow-up as a standalone question, checked; a keyword fallback when the model fails."""
    if not history or not history_turns:
        return question
    previous = history[-1].question  # turns keep the standalone form, so one turn resolves a chain
    messages = few_shot(prompts, "rewrite", prompts.render("rewrite.user", previous=previous, question=question))
    completion = llm.complete(messages, max_tokens=QUESTION_MAX_TOKENS, grammar=QUESTION_GRAMMAR, prefix="")
    rewritten = " ".join(completion.text.split()).strip("\"'„“ ")
    if acceptable_rewrite(rewritten, question, previous):
        return rewritten
    logger.info("rewrite %r rejected; adding the earlier question's terms instead", rewritten)
    return with_earlier_terms(question, previous)


def acceptable_rewrite(rewritten: str, question: str, previous: str) -> bool:
    folded = rewritten.casefold()
    if not 3 <= len(rewritten) <= REWRITE_MAX_GROWTH * len(question) + REWRITE_SLACK_CHARS:
        return False
    if folded in (question.casefold(), previous.casefold()):
        return False  # nothing resolved, or the earlier question echoed
    own = content_terms(question)
    return len(own & content_terms(rewritten)) * 2 >= len(own)


def with_earlier_terms(question: str, previous: str) -> str:
    """The follow-up plus the earlier question's content words: still a good search query."""
    own = content_terms(question)
    extra: list[str] = []
    for word in words(previous):
        terms = content_terms(word)
        if terms and not terms <= own and word not in extra:
            extra.append(word)
    return f"{question} ({', '.join(extra)})" if extra else question
