"""The one refusal that needs no model: nothing in the articles matches the question at all.

Every other refusal is the fitted answer decision (`rag/answering/decide.py`): it weighs the
model's preference for its refusal token against the evidence, with a threshold chosen on the
tune questions (`newsbot fit`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.answering.context import Context
from rag.settings import Settings

# The token the answer prompt offers the model instead of a citation (prompts/answer.system.txt).
REFUSAL_TOKEN = "NICHT_IN_DEN_ARTIKELN"


@dataclass(frozen=True)
class RefusalPolicy:
    min_retrieval_score: float = 0.0  # NEWSBOT_MIN_RETRIEVAL_SCORE

    @classmethod
    def from_settings(cls, settings: Settings) -> RefusalPolicy:
        return cls(settings.min_retrieval_score)

    def weak_evidence(self, context: Context) -> bool:
        """Refuse without asking the model."""
        if context.empty:
            return True
        return context.best_sentence_coverage < self.min_retrieval_score
