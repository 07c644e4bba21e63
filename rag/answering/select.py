"""Extractive answers: the model picks the sentence that answers, the answer quotes it.

Measured on the dev questions with the bundled 1.5B model: its free-text claims were right for
about 60% of the questions, but the sentence it most wanted to cite (read from its next-token
distribution) was the answering sentence for 18 of 24. So the model is asked for that
distribution (`choose`), and the fitted decisions (`decide.py`) weigh it against the lexical and
dense evidence; the answer is the chosen sentence(s) verbatim: nothing can be misquoted, and no
time goes into generating text the model would only copy.
"""

from __future__ import annotations

import re

from rag.answering.context import Context, Sentence
from rag.answering.refusal import REFUSAL_TOKEN
from rag.llm.base import LLM, Choice, Message


def cited_text(sentences: list[Sentence]) -> str:
    """The answer in the model's citation format ("[n] sentence"), for verification and display."""
    return " ".join(f"[{s.number}] {' '.join(s.text.split())}" for s in sentences)


# The model cites one digit, so it chooses among the first nine context sentences.
MAX_OPTIONS = 9
# A greedy pick without probabilities (a backend without `supports_choice`): as sure as the model can be.
GREEDY_MARGIN = 20.0


def _selection_grammar(options: int) -> str:
    """For backends without token probabilities: the refusal token or one marker [1]..[options]."""
    return f'root ::= "{REFUSAL_TOKEN}" | "[" [1-{max(1, options)}] "]"'


def choose(llm: LLM, messages: list[Message], context: Context) -> Choice:
    """The model's preference among the first nine context sentences (or its refusal).

    Backends that expose next-token probabilities (llama.cpp in-process) give the full
    distribution; others make one greedy, grammar-constrained pick, which then stands alone."""
    options = min(MAX_OPTIONS, len(context.sentences))
    prefix = "<artikel>\n" + context.prefix_text if context.prefix_text else ""
    choice = llm.choose(messages, prefix=prefix, options=options, refusal=REFUSAL_TOKEN) if llm.supports_choice else None
    if choice is not None:
        return choice
    completion = llm.complete(messages, max_tokens=12, grammar=_selection_grammar(options), prefix=prefix)
    found = re.match(r"\s*\[(\d)\]", completion.text)
    if found is None:
        return Choice({n: 0.0 for n in range(1, options + 1)}, GREEDY_MARGIN, completion.prompt_tokens,
                      completion.prefill_tokens, completion.total_s, completion.generated_tokens)
    picked = int(found.group(1))
    return Choice({n: 0.0 if n == picked else -GREEDY_MARGIN for n in range(1, options + 1)}, -GREEDY_MARGIN,
                  completion.prompt_tokens, completion.prefill_tokens, completion.total_s, completion.generated_tokens)
