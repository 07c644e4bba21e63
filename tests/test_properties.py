"""Property-based tests: chunking keeps every character and its offsets, citations are always
verbatim, mentions never survive rendering.

Message splitting (each part <= 2000 characters, nothing lost) is already property-tested in
test_discord_render.py, and random answers against one fixed context in test_cite.py; these
add random articles, random contexts over several sources and tampered source texts.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rag.answering.cite import MARKER, verify
from rag.answering.context import Context, Sentence, SourceInfo
from rag.index.chunking import chunk_spans
from rag.index.documents import parse_text
from rag.safe_text import strip_controls
from rag.text import Span, sentence_spans

# Article-like text: words, numbers, abbreviations, quotes, sentence ends, blank lines, tabs,
# odd Unicode spaces, and any character at all now and then.
WORDS = st.sampled_from([
    "Der", "Präsident", "sagte", "am", "13.", "Februar", "z.B.", "rund", "18", "Mio.", "Euro", "„Frieden“", "»Nein«",
    "Selenskyj", "U.S.", "Dr.", "Nr.", "1.", "(Reuters)", "Kiew", "ß", "é", "—", "…", "!", "?", ".", ",", ":",
    "\n", "\n\n", "\t", " ", "\u00a0", "\u2009", "\r", "🙂", "[1]", "Foto: © IMAGO", "Lesen Sie auch:", "- true",
])
ARTICLE = st.lists(st.one_of(WORDS, st.text(max_size=6)), max_size=250).map(" ".join)


def _non_space(text: str, start: int, end: int) -> set[int]:
    return {i for i in range(start, end) if not text[i].isspace()}


@settings(max_examples=300, deadline=None)
@given(ARTICLE, st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_sentence_spans_cover_every_visible_character_once(text, cut_a, cut_b):
    start, end = sorted((min(cut_a, len(text)), max(len(text) - cut_b, 0)))
    spans = sentence_spans(text, start, end)
    covered: set[int] = set()
    previous_end = start
    for span in spans:
        assert previous_end <= span.start < span.end <= end  # in order, inside the range, no overlap
        piece = text[span.start:span.end]
        assert piece == piece.strip() and "\n" not in piece
        covered |= set(range(span.start, span.end))
        previous_end = span.end
    assert _non_space(text, start, end) <= covered


@settings(max_examples=300, deadline=None)
@given(ARTICLE, st.integers(min_value=200, max_value=1200), st.booleans())
def test_chunks_lose_no_text_and_point_at_it(text, target, markdown):
    """Through the real document parser: every visible character of the content blocks is in
    exactly one chunk, chunks never overlap or cross a block, and text[start:end] is the chunk."""
    doc = parse_text(text, "s", Path("s.txt"), "hash", markdown=markdown)
    # nothing rewritten but terminal controls (issue 17.4): offsets point into the stored text
    assert doc.text == strip_controls(text)
    text = doc.text
    for block in doc.blocks:
        assert 0 <= block.start < block.end <= len(text)
    spans = chunk_spans(doc.text, doc.blocks, target)
    covered: set[int] = set()
    for span in spans:
        assert any(b.start <= span.start and span.end <= b.end for b in doc.blocks), "a chunk crosses a block"
        cells = set(range(span.start, span.end))
        assert not cells & covered, "chunks overlap"
        covered |= cells
        assert text[span.start:span.end].strip() == text[span.start:span.end] != ""
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    for block in doc.blocks:
        assert _non_space(text, block.start, block.end) <= covered


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=8), ARTICLE,
       st.integers(min_value=200, max_value=800))
def test_chunks_over_arbitrary_blocks(cuts, text, target):
    """Blocks need not come from the parser: any sorted, disjoint spans chunk without loss."""
    points = sorted({min(p, len(text)) for pair in cuts for p in pair})
    blocks = [Span(a, b) for a, b in zip(points[::2], points[1::2]) if a < b]
    spans = chunk_spans(text, blocks, target)
    covered: set[int] = set()
    for span in spans:
        assert not set(range(span.start, span.end)) & covered
        covered |= set(range(span.start, span.end))
    for block in blocks:
        assert _non_space(text, block.start, block.end) <= covered


# --- citations ----------------------------------------------------------------------------------

SENTENCE_WORDS = st.sampled_from("Trump Putin Selenskyj Kiew Alaska Gipfel sagte erklärte Waffenruhe Garantien "
                                 "zehn Punkten Kreml Telefonat bestätigt dementiert Europa Nato Treffen".split())
SOURCE_SENTENCES = st.lists(st.lists(SENTENCE_WORDS, min_size=2, max_size=10).map(lambda w: " ".join(w) + "."),
                            min_size=1, max_size=6)


def _context(articles: list[list[str]]) -> tuple[Context, dict[str, str]]:
    sentences: list[Sentence] = []
    texts: dict[str, str] = {}
    infos: dict[str, SourceInfo] = {}
    groups = []
    number = 1
    for index, article in enumerate(articles):
        source = f"s{index}"
        text = "Titel\n\n" + " ".join(article)
        texts[source] = text
        infos[source] = SourceInfo(source, f"Titel {index}", "2025-08", "")
        group = []
        for span in sentence_spans(text, 7, len(text)):
            sentence = Sentence(number, source, span.start, span.end, text[span.start:span.end], 1.0)
            sentences.append(sentence)
            group.append(sentence)
            number += 1
        groups.append((source, group))
    return Context(sentences, infos, "", 0, 1.0, 1.0, groups), texts


claim_part = st.one_of(SENTENCE_WORDS, st.text(max_size=15), st.sampled_from([".", "!", " ", "[", "]", "\n"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(SOURCE_SENTENCES, min_size=1, max_size=3), st.data(), st.booleans(), st.booleans(), st.booleans())
def test_random_answers_only_ever_cite_verbatim_quotes(articles, data, same_language, tamper, leading):
    context, texts = _context(articles)
    if tamper:  # the stored text changed after the context was built: those quotes are no longer true
        victim = data.draw(st.sampled_from(sorted(texts)))
        texts[victim] = texts[victim].replace("e", "ë")
    numbers = st.integers(min_value=0, max_value=len(context.sentences) + 3)
    pieces = data.draw(st.lists(st.tuples(st.lists(claim_part, max_size=8).map(" ".join),
                                          st.one_of(st.sampled_from([s.text for s in context.sentences]), st.just("")),
                                          st.lists(numbers, max_size=3)), max_size=5))
    if leading:  # evidence first, as the answer grammar asks the model to write: "[2] Claim. [3] Other."
        answer = " ".join("".join(f"[{n}]" for n in cited) + f" {free} {copied}" for free, copied, cited in pieces)
    else:
        answer = " ".join(f"{free} {copied}" + "".join(f" [{n}]" for n in cited) for free, copied, cited in pieces)
    result = verify(answer, context, texts, same_language)

    assert [c.n for c in result.citations] == list(range(1, len(result.citations) + 1))
    for citation in result.citations:
        assert texts[citation.source][citation.start:citation.end] == citation.quote
    used = {int(m.group(1)) for m in MARKER.finditer(result.text)}
    assert used == {c.n for c in result.citations}  # every marker has its source, every source a marker
    assert len({(c.source, c.start) for c in result.citations}) == len(result.citations)


@settings(max_examples=100, deadline=None)
@given(st.lists(SOURCE_SENTENCES, min_size=1, max_size=3))
def test_copying_a_context_sentence_with_its_number_is_always_kept(articles):
    context, texts = _context(articles)
    sentence = context.sentences[-1]
    assume(len(set(sentence.text.split())) >= 2)
    result = verify(f"{sentence.text.rstrip('.')} [{sentence.number}].", context, texts, True)
    assert [c.quote for c in result.citations] == [sentence.text]
    assert re.findall(r"\[\d+\]", result.text) == ["[1]"] and sentence.text.split()[0] in result.text
