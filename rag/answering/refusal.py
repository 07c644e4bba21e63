"""When newsbot says the articles do not cover a question: one policy, every threshold a field.

Two gates. Before the model: no context sentence covers enough of the question
(`min_retrieval_score`). After reading the model's choice: it prefers its refusal token over
citing by more than `refusal_margin` nats, or by more than `unknown_name_margin` while the
question names something no article contains ("Xi Jinping"); never when a context sentence
covers at least `force_answer_coverage` of the question and no name is unknown (the small model
over-refuses). German capitalises every noun, so short dictionary nouns ("Stadt", "August") are
no names; compounds ("Inflationsrate") are.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.answering.cite import unknown_names
from rag.answering.context import Context
from rag.index.keyword import KeywordIndex
from rag.llm.base import Choice
from rag.settings import Settings
from rag.text import is_generic_noun, tokenize

# The token the answer prompt offers the model instead of a citation (prompts/answer.system.txt).
REFUSAL_TOKEN = "NICHT_IN_DEN_ARTIKELN"


@dataclass(frozen=True)
class RefusalPolicy:
    min_retrieval_score: float = 0.0  # NEWSBOT_MIN_RETRIEVAL_SCORE
    refusal_margin: float = 1.0  # NEWSBOT_REFUSAL_MARGIN (nats)
    force_answer_coverage: float = 0.4  # NEWSBOT_FORCE_ANSWER_COVERAGE
    unknown_name_margin: float = 0.0  # with an unknown name, any preference for refusing refuses

    @classmethod
    def from_settings(cls, settings: Settings) -> RefusalPolicy:
        return cls(settings.min_retrieval_score, settings.refusal_margin, settings.force_answer_coverage)

    def weak_evidence(self, context: Context) -> bool:
        """Refuse without asking the model."""
        if context.empty:
            return True
        return context.best_sentence_coverage < self.min_retrieval_score

    def model_refusal(self, choice: Choice, context: Context, unknown: set[str]) -> str | None:
        """Why to refuse after the model's choice, or None to answer."""
        strong = context.best_sentence_coverage >= self.force_answer_coverage and not unknown
        threshold = self.unknown_name_margin if unknown else self.refusal_margin
        if choice.refusal_margin > threshold and not strong:
            return f"model prefers to refuse (margin {choice.refusal_margin:.2f})"
        return None

    @staticmethod
    def unknown_names(question: str, keywords: KeywordIndex) -> set[str]:
        """Names in the question that no article contains, not even as part of a compound ("Xi
        Jinping" in a question about the Alaska summit; not "Punkteskala"). German capitalises
        every noun, so generic dictionary nouns ("Stadt", "August") do not count."""
        return {word for word in unknown_names(question, keywords.doc_freq)
                if not keywords.expand(tokenize(word, compounds=False)) and not is_generic_noun(word)}
