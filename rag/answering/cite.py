"""Citation verification: every kept sentence of an answer must be backed by a real quote.

The model cites numbered context sentences ([n]). Here each claim is checked against the sentence
it cites: the quote must occur verbatim in the article, and the claim's content words (or, for an
answer in another language than the article, its names and numbers) must be found in the quote
or its immediate neighbours. A wrong number is repaired to the best supporting sentence when one
clearly supports the claim; a claim without support is dropped. What survives is renumbered 1..k.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answer import Citation
from rag.answering.context import Context, Sentence
from rag.text import ENGLISH_STOPWORDS, GERMAN_STOPWORDS, content_terms, fold, tokenize, words

_COMMON = ENGLISH_STOPWORDS | GERMAN_STOPWORDS
# A citation marker is digits in brackets, never any other bracketed text ("[Anm. d. Red.]") and
# never a masked link's label ("[1](https://…)"): markers must not eat article text (issue 17.5).
MARKER = re.compile(r"\s*\[(\d{1,3})\](?!\()")
_BARE_MARKER = re.compile(r"\[(\d{1,3})\](?!\()")
# Closing quotes and brackets after a sentence's final punctuation: „Kommt er?“ ends with "?".
_CLOSERS = "\"'»«“”„’‘)]"
# Thresholds of the claim check (set by hand on the dev set's answers, then kept while
# tests/rag/answering/test_cite.py and the end-to-end answers stayed right):
# a claim is supported when this share of its new content words is in the quote (same language) ...
SUPPORT_THRESHOLD = 0.5
# ... or this share of its names and numbers (an English claim about a German quote)
CROSS_LINGUAL_THRESHOLD = 0.34
# Repairing a wrong [n]: the best other sentence must support the claim at least this well, and
# better than the runner-up unless it supports it (almost) completely.
REPAIR_SUPPORT_SAME_LANGUAGE = 0.6
REPAIR_SUPPORT_CROSS_LINGUAL = 0.5
REPAIR_CLEAR_SUPPORT = 0.99


@dataclass
class Claim:
    text: str  # without markers
    cited: list[int]


@dataclass
class VerifiedAnswer:
    text: str
    citations: list[Citation]
    dropped_claims: list[str]
    repaired: int
    grounded: bool


def markers_last(answer: str) -> str:
    """'[2] Claim. [3] Other?' (how the model is asked to write: evidence first) -> 'Claim. [2] Other? [3]'.
    Everything between two markers is the claim, brackets and final punctuation included."""
    stripped = answer.lstrip()
    if not _BARE_MARKER.match(stripped):
        return answer
    found = list(_BARE_MARKER.finditer(stripped))
    parts = []
    for match, following in zip(found, [*found[1:], None], strict=True):
        text = stripped[match.end():following.start() if following else len(stripped)].strip()
        if text:
            parts.append(f"{text} [{match.group(1)}]")
    return " ".join(parts)


def ends_sentence(text: str) -> bool:
    """Whether text already ends in . ! ? or … (before any closing quotes or brackets)."""
    return text.rstrip().rstrip(_CLOSERS)[-1:] in (".", "!", "?", "…")


def split_claims(answer: str) -> list[Claim]:
    """Claims are text runs ending in one or more [n] markers; trailing text without one is a claim with none."""
    claims: list[Claim] = []
    pos = 0
    pending_numbers: list[int] = []
    pending_text = ""
    for match in MARKER.finditer(answer):
        text = answer[pos:match.start()]
        if text.strip(" .,;:!?") == "" and pending_text:
            pending_numbers.append(int(match.group(1)))
        else:
            if pending_text:
                claims.append(Claim(pending_text, pending_numbers))
            pending_text, pending_numbers = text, [int(match.group(1))]
        pos = match.end()
    if pending_text:
        claims.append(Claim(pending_text, pending_numbers))
    tail = answer[pos:]
    if tail.strip(" .,;:!?\n"):
        if claims and not tail.strip(" .!?")[:1].isalnum() and len(tail.strip()) <= 2:
            pass
        else:
            claims.append(Claim(tail, []))
    return [Claim(_clean(c.text), c.cited) for c in claims if _clean(c.text)]


def _clean(text: str) -> str:
    text = text.strip()
    text = re.sub(r"^[.,;:!?]\s*", "", text)
    return " ".join(text.split())


def _salient(text: str) -> set[str]:
    """Names, numbers and long words: what survives translation between German and English."""
    out: set[str] = set()
    for index, word in enumerate(words(text)):
        if any(ch.isdigit() for ch in word):
            out.add(fold(word))
        elif word[:1].isupper() and len(word) > 2 and (index > 0 or word.casefold() not in _COMMON):
            out.add(fold(word)[:5])
    return out


def unknown_names(claim: str, vocabulary: set[str] | dict | None) -> set[str]:
    """Capitalised words of the claim (not sentence-initial) that occur nowhere in the articles:
    a name the model brought from outside (e.g. "Xi Jinping" in an answer about the Alaska summit)."""
    if not vocabulary:
        return set()
    out = set()
    for index, word in enumerate(words(claim)):
        if index == 0 or not word[:1].isupper() or len(word) < 2:
            continue
        terms = tokenize(word, compounds=False)
        if terms and all(t not in vocabulary for t in terms):
            out.add(word)
    return out


def support(claim: str, evidence: str, same_language: bool) -> float:
    """Share of the claim's content found in the evidence. The question is never subtracted: words the
    user typed are no support (a question carrying its own "answer" must not lend it a citation)."""
    if same_language:
        claim_terms = content_terms(claim)
        if not claim_terms:
            return 0.0
        return len(claim_terms & content_terms(evidence)) / len(claim_terms)
    claim_names = _salient(claim)
    if not claim_names:
        return CROSS_LINGUAL_THRESHOLD  # nothing checkable across languages; rely on the cited number
    evidence_prefixes = {fold(w)[:5] for w in words(evidence)} | {fold(w) for w in words(evidence)}
    return len({n for n in claim_names if n in evidence_prefixes or n[:5] in evidence_prefixes}) / len(claim_names)


def _evidence_text(context: Context, sentence: Sentence) -> str:
    """The cited sentence with its neighbours in the context (a quote often names the speaker before)."""
    texts = [sentence.text]
    for other in context.sentences:
        if other.source == sentence.source and other.number in (sentence.number - 1, sentence.number + 1):
            texts.append(other.text)
    return " ".join(texts)


def verify(answer: str, context: Context, source_texts: dict[str, str], same_language: bool,
           vocabulary: set[str] | dict | None = None) -> VerifiedAnswer:
    threshold = SUPPORT_THRESHOLD if same_language else CROSS_LINGUAL_THRESHOLD
    kept: list[tuple[str, list[Sentence]]] = []
    dropped: list[str] = []
    repaired = 0
    for claim in split_claims(markers_last(answer)):
        valid: list[Sentence] = []
        if same_language and unknown_names(claim.text, vocabulary):
            dropped.append(claim.text)
            continue
        for number in claim.cited:
            sentence = context.by_number(number)
            if sentence is None or sentence in valid:
                continue
            if not _verbatim(sentence, source_texts):
                continue
            if support(claim.text, _evidence_text(context, sentence), same_language) >= threshold:
                valid.append(sentence)
        if not valid:
            best = _best_support(claim.text, context, same_language, source_texts)
            if best is not None:
                valid.append(best)
                repaired += 1
        if valid:
            kept.append((claim.text, valid))
        else:
            dropped.append(claim.text)

    citations: list[Citation] = []
    numbers: dict[tuple[str, int], int] = {}
    parts: list[str] = []
    for text, sentences in kept:
        markers = []
        for sentence in sentences:
            key = (sentence.source, sentence.start)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                info = context.sources[sentence.source]
                citations.append(Citation(numbers[key], sentence.source, info.title, info.date, sentence.text, sentence.start, sentence.end))
            markers.append(f"[{numbers[key]}]")
        body = text.rstrip()
        if body and not ends_sentence(body):  # a question stays a question, a quote keeps its "?“"
            body += "."
        parts.append(f"{body} {''.join(markers)}")
    return VerifiedAnswer(" ".join(parts), citations, dropped, repaired, grounded=bool(kept) and not dropped)


def _verbatim(sentence: Sentence, source_texts: dict[str, str]) -> bool:
    text = source_texts.get(sentence.source, "")
    return text[sentence.start:sentence.end] == sentence.text


def _best_support(claim: str, context: Context, same_language: bool, source_texts: dict[str, str]) -> Sentence | None:
    """Repair: the single context sentence that clearly supports the claim, if any."""
    scored = [
        (support(claim, sentence.text, same_language), sentence)
        for sentence in context.sentences
        if _verbatim(sentence, source_texts)
    ]
    if not scored:
        return None
    scored.sort(key=lambda pair: -pair[0])
    best_score, best = scored[0]
    threshold = REPAIR_SUPPORT_SAME_LANGUAGE if same_language else REPAIR_SUPPORT_CROSS_LINGUAL
    if best_score >= threshold and (len(scored) == 1 or best_score > scored[1][0] or best_score >= REPAIR_CLEAR_SUPPORT):
        return best
    return None
