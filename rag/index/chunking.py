"""Sentence-aware chunking with exact character offsets into the source text.

Chunks never cross page furniture (a chunk's text is exactly `source.text[start:end]`) and never
split a sentence; a sentence longer than the target becomes a chunk of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.documents import Document

from rag.index.documents import SourceDocument
from rag.text import Span, sentence_spans


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    source_id: str
    index: int
    start: int
    end: int
    text: str


def chunk_spans(text: str, blocks: list[Span], target_chars: int) -> list[Span]:
    spans: list[Span] = []
    for block in blocks:
        spans.extend(_merge_tiny(_pack(sentence_spans(text, block.start, block.end), target_chars), target_chars))
    return spans


def _pack(sentences: list[Span], target_chars: int) -> list[Span]:
    spans: list[Span] = []
    current: Span | None = None
    for sentence in sentences:
        if current is None:
            current = sentence
        elif sentence.end - current.start <= target_chars:
            current = Span(current.start, sentence.end)
        else:
            spans.append(current)
            current = sentence
    if current is not None:
        spans.append(current)
    return spans


def _merge_tiny(spans: list[Span], target_chars: int) -> list[Span]:
    """Fold a short chunk (a subheading, a one-line lead) into the next chunk of the same block."""
    out: list[Span] = []
    for span in spans:
        if out and (out[-1].end - out[-1].start) < target_chars // 4 and span.end - out[-1].start <= target_chars * 1.25:
            out[-1] = Span(out[-1].start, span.end)
            continue
        out.append(span)
    return out


def chunk_document(doc: SourceDocument, target_chars: int) -> list[Chunk]:
    return [
        Chunk(f"{doc.source_id}#{i:05d}", doc.source_id, i, span.start, span.end, doc.text[span.start:span.end])
        for i, span in enumerate(chunk_spans(doc.text, doc.blocks, target_chars))
    ]


def to_langchain(doc: SourceDocument, chunk: Chunk) -> Document:
    """The stored form: the title travels with every chunk (embedding and keyword search see it)."""
    return Document(
        id=chunk.chunk_id,
        page_content=f"{doc.title}\n\n{chunk.text}",
        metadata={
            "source": doc.source_id,
            "title": doc.title,
            "date": doc.date or "",
            "date_ord": doc.date_ord,
            "outlet": doc.outlet or "",
            "chunk": chunk.index,
            "start": chunk.start,
            "end": chunk.end,
            "content_hash": doc.content_hash,
        },
    )
