"""Answers as data: each adapter (CLI, console chat, Discord) renders the same objects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Citation:
    n: int  # the marker number used in the answer text, 1..k in order of first use
    source: str  # the article's file stem
    title: str
    date: str
    quote: str  # verbatim from the article
    start: int  # character offsets of the quote in the article text
    end: int
    url: str = ""  # web sources: the article page
    outlet: str = ""
    also: list[dict[str, str]] = field(default_factory=list)  # agency copies: [{"outlet", "url", "title", "date"}]


@dataclass
class RetrievedPassage:
    source: str
    text: str
    score: float
    title: str = ""
    date: str = ""
    start: int = 0
    end: int = 0
    url: str = ""  # web sources: the article page
    outlet: str = ""


@dataclass
class Turn:
    question: str
    answer: str


@dataclass
class Answer:
    question: str
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    retrieved: list[RetrievedPassage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model: str = ""
    language: str = "de"
    standalone_question: str | None = None  # the rewritten follow-up, when history changed it
    search_queries: list[str] = field(default_factory=list)
    context_tokens: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    grounded: bool = False  # every kept sentence carries a verified citation
    error: str | None = None
    id: Any = None
    # the fitted decisions' scores (rag/answering/decide.py): why it answered or refused
    decision: dict[str, float | bool] = field(default_factory=dict)  # + "read": whether the reader read
    # citation numbers of two articles that state the answered fact differently (both quoted, with dates)
    disagreement: list[int] = field(default_factory=list)

    @property
    def as_of(self) -> str | None:
        """"Stand": the date of the newest cited article (None without dated citations)."""
        dates = [c.date for c in self.citations if c.date]
        return max(dates) if dates else None

    @property
    def sources(self) -> list[Citation]:
        """One citation per source, first use first (what a source list shows)."""
        seen: dict[str, Citation] = {}
        for citation in self.citations:
            seen.setdefault(citation.source, citation)
        return list(seen.values())

    def to_json(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "grounded": self.grounded,
            "language": self.language,
            "citations": [
                {"n": c.n, "source": c.source, "title": c.title, "date": c.date, "quote": c.quote, "start": c.start, "end": c.end,
                 "url": c.url or None, "outlet": c.outlet, "also": c.also}
                for c in self.citations
            ],
            "as_of": self.as_of,
            "retrieved": [asdict(p) for p in self.retrieved],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "model": self.model,
            "standalone_question": self.standalone_question,
            "search_queries": self.search_queries,
            "context_tokens": self.context_tokens,
            "prompt_tokens": self.prompt_tokens,
            "generated_tokens": self.generated_tokens,
            "decision": self.decision,
            "disagreement": self.disagreement,
        }
        if self.error:
            data["error"] = self.error
        return data
