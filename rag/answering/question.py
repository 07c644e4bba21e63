"""The question as the pipeline reads it: control characters gone, whitespace collapsed, checked."""

from __future__ import annotations

import unicodedata

from rag.errors import QuestionError


def clean_question(question: str, max_chars: int) -> str:
    """The cleaned question; QuestionError (with what to do) for one that cannot be answered."""
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", question or "") if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise QuestionError("The question is empty: ask something about the news articles, e.g. "
                            "\"Was sagte Trump nach dem Gipfel in Alaska?\"")
    if len(cleaned) > max_chars:
        raise QuestionError(f"The question is {len(cleaned):,} characters long; the limit is "
                            f"{max_chars:,} (NEWSBOT_MAX_QUESTION_CHARS). Ask a shorter question.")
    if not any(ch.isalnum() for ch in cleaned):
        raise QuestionError("The question has no words in it: ask something about the news articles in German or English.")
    return cleaned
