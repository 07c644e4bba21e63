"""`newsbot eval`: retrieval and answer metrics on a question set (the dev-set JSONL format).

Retrieval hit: an `evidence` string occurs in the context actually given to the model.
Answer correct: every `expect` group has one alternative in the answer text (case-insensitive).
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import QuestionFileError
from rag.quality.stats import percentile
from rag.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

DEFAULT_QUESTIONS = PROJECT_ROOT.parent / "shared" / "eval" / "questions.jsonl"


def load_questions(path: Path) -> list[dict[str, Any]]:
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            raise QuestionFileError(f"{path}:{number} is not valid JSON") from None
        if "question" not in item:
            raise QuestionFileError(f"{path}:{number} has no 'question'")
        item.setdefault("id", str(number))
        item.setdefault("kind", "fact")
        for key in ("sources", "evidence", "expect", "forbid"):
            item.setdefault(key, [])
        questions.append(item)
    return questions


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def evidence_hit(question: dict[str, Any], context_text: str) -> bool:
    context = _norm(context_text)
    return any(_norm(e) in context for e in question["evidence"])


def answer_correct(question: dict[str, Any], answer_text: str) -> bool:
    text = _norm(answer_text)
    return all(any(_norm(alt) in text for alt in group) for group in question["expect"])


@dataclass
class QuestionResult:
    id: str
    kind: str
    question: str
    hit: bool | None
    context_tokens: int
    answer: str = ""
    refused: bool | None = None
    correct: bool | None = None
    cited_right: bool | None = None
    citations: int = 0
    citations_right: int = 0
    quotes_verbatim: int = 0
    injection_resisted: bool | None = None
    first_token_s: float | None = None
    total_s: float | None = None
    queries: list[str] = field(default_factory=list)
    group: str = ""  # german, english or casual: how the question is written


def question_group(item: dict[str, Any]) -> str:
    """The groups the answer bar is set for: casual writing, else the question's language."""
    if item.get("style") == "casual":
        return "casual"
    return "english" if item.get("lang") == "en" else "german"


def evaluate(service, questions: list[dict[str, Any]], retrieval_only: bool = False,
             on_result: Callable[[QuestionResult], None] | None = None) -> tuple[dict[str, Any], list[QuestionResult]]:
    """Summary and per-question results; `on_result` sees each answered question as it is done."""
    results: list[QuestionResult] = []
    if retrieval_only:
        service.llm  # noqa: B018 - budgets are counted in the model's tokens, as when answering
    for item in questions:
        answerable = bool(item["sources"])
        if retrieval_only:
            _, queries, context = service.retrieve(service.check_question(item["question"]))
            results.append(QuestionResult(item["id"], item["kind"], item["question"],
                                          evidence_hit(item, context.text) if item["evidence"] else None,
                                          context.tokens, queries=queries, group=question_group(item)))
            continue
        answer = service.answer(item["question"])
        context_text = "\n".join(p.text for p in answer.retrieved)
        result = QuestionResult(item["id"], item["kind"], item["question"],
                                evidence_hit(item, context_text) if item["evidence"] else None, answer.context_tokens,
                                answer=answer.text, refused=answer.refused, queries=answer.search_queries,
                                first_token_s=answer.timings.get("first_token_s"), total_s=answer.timings.get("total_s"),
                                group=question_group(item))
        result.citations = len(answer.citations)
        result.citations_right = sum(c.source in item["sources"] for c in answer.citations)
        for citation in answer.citations:
            record = service.corpus.record(citation.source)
            result.quotes_verbatim += bool(record and record.text[citation.start:citation.end] == citation.quote and citation.quote)
        if answerable:
            result.correct = answer_correct(item, answer.text) and not answer.refused
            result.cited_right = result.citations_right > 0
        if item["forbid"]:
            result.injection_resisted = not any(_norm(f) in _norm(answer.text) for f in item["forbid"])
        results.append(result)
        if on_result is not None:
            on_result(result)
    return summarize(results, retrieval_only), results


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def summarize(results: list[QuestionResult], retrieval_only: bool) -> dict[str, Any]:
    hits = [r.hit for r in results if r.hit is not None]
    tokens = [r.context_tokens for r in results if r.hit is not None]
    summary: dict[str, Any] = {
        "questions": len(results),
        "retrieval_hit_rate": _share(hits),
        "retrieval_hits": f"{sum(hits)}/{len(hits)}",
        "context_tokens_median": statistics.median(tokens) if tokens else None,
        "context_tokens_p95": percentile(tokens, 0.95),
        "retrieval_misses": [r.id for r in results if r.hit is False],
    }
    if retrieval_only:
        return summary
    answerable = [r for r in results if r.correct is not None]
    unanswerable = [r for r in results if r.kind == "unanswerable"]
    injections = [r for r in results if r.kind == "injection" or r.injection_resisted is not None]
    citations = sum(r.citations for r in results if r.correct is not None)
    answered = [r for r in results if r.refused is False]
    summary.update({
        "answer_correct": _share([r.correct for r in answerable]),
        # a wrong answer with a citation is worse than a refusal: right answers / all answers given
        "right_when_answers": _share([bool(r.correct) for r in answered]),
        **{f"answer_correct_{group}": _share([r.correct for r in answerable if r.group == group])
           for group in ("german", "english", "casual") if any(r.group == group for r in answerable)},
        "cited_right_source": _share([r.cited_right for r in answerable]),
        "citation_precision": round(sum(r.citations_right for r in answerable) / citations, 4) if citations else None,
        "quotes_verbatim": round(sum(r.quotes_verbatim for r in results) / max(1, sum(r.citations for r in results)), 4),
        "unanswerable_refused": _share([bool(r.refused) for r in unanswerable]),
        "false_refusals": _share([bool(r.refused) for r in answerable]),
        "injections_resisted": _share([r.injection_resisted for r in injections if r.injection_resisted is not None]),
        "injections_refused": _share([bool(r.refused) for r in injections]),
        "first_token_s_median": percentile([r.first_token_s for r in results if r.first_token_s is not None], 0.5),
        "total_s_median": percentile([r.total_s for r in results if r.total_s is not None], 0.5),
        "wrong_answers": [r.id for r in answerable if not r.correct],
    })
    return summary

