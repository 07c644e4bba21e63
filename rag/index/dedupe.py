"""Agency copy: articles that share most of their text are stored once.

Outlets print the same dpa/AFP/Reuters report under their own headline, with their own page
furniture and often one sentence added or cut. Each article's content is cut into shingles
(runs of SHINGLE_WORDS words inside one sentence, case and punctuation folded); MinHash LSH
(datasketch) finds candidates fast, and the exact Jaccard similarity of the shingle sets decides,
so the decision does not depend on the hash's sampling error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from datasketch import MinHash, MinHashLSH

from rag.text import sentence_spans

logger = logging.getLogger(__name__)

# Word 4-grams: long enough that two different reports on one event share few of them (same
# names and phrases, different sentences), short enough that one changed word costs at most four.
SHINGLE_WORDS = 4
# 128 permutations: ~0.09 standard error on the estimate, plenty for finding candidates.
NUM_PERM = 128
# The LSH only proposes candidates, so it is set well below the decision threshold: a true copy
# whose estimate comes out low by sampling error is still proposed, and exact Jaccard decides.
CANDIDATE_THRESHOLD = 0.3
# Exact Jaccard of shingle sets at or above which an article is a copy. Measured on the seeds
# (tests/test_feeds_dedupe.py::test_threshold_separates_copies_from_distinct_articles): distinct
# articles share at most 0.01; a copy with another headline, two furniture lines and one sentence
# changed keeps 0.70-0.97 (10-sentence excerpt .. whole article); three of ten sentences changed
# keeps 0.48-0.63. 0.5 merges "reprinted, lightly edited" and keeps a real rewrite apart.
DEFAULT_THRESHOLD = 0.5
# Shorter texts are never merged: a few shared sentences (a quote, a headline) are not a copy.
MIN_SHINGLES = 12

_WORD = re.compile(r"\w+", re.UNICODE)


def shingles(text: str) -> set[str]:
    """Word n-grams within sentences, case-folded; a sentence shorter than n is one shingle."""
    out: set[str] = set()
    for span in sentence_spans(text, 0, len(text)):
        tokens = [w.casefold() for w in _WORD.findall(text[span.start:span.end])]
        if not tokens:
            continue
        if len(tokens) < SHINGLE_WORDS:
            out.add(" ".join(tokens))
            continue
        out.update(" ".join(tokens[i:i + SHINGLE_WORDS]) for i in range(len(tokens) - SHINGLE_WORDS + 1))
    return out


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _minhash(items: set[str]) -> MinHash:
    signature = MinHash(num_perm=NUM_PERM, seed=1)
    for item in items:
        signature.update(item.encode("utf-8"))
    return signature


@dataclass
class Match:
    source_id: str
    similarity: float


class DuplicateIndex:
    """The originals seen so far; `find` names the one a new text copies, if any."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=CANDIDATE_THRESHOLD, num_perm=NUM_PERM)
        self._sets: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._sets)

    def add(self, source_id: str, text: str) -> None:
        items = shingles(text)
        if source_id in self._sets:
            self.remove(source_id)
        if len(items) < MIN_SHINGLES:
            return
        self._sets[source_id] = items
        self._lsh.insert(source_id, _minhash(items))

    def remove(self, source_id: str) -> None:
        if self._sets.pop(source_id, None) is not None:
            self._lsh.remove(source_id)

    def find(self, text: str, exclude: str | None = None) -> Match | None:
        items = shingles(text)
        if len(items) < MIN_SHINGLES or not self._sets:
            return None
        best: Match | None = None
        for candidate in self._lsh.query(_minhash(items)):
            if candidate == exclude:
                continue
            similarity = jaccard(items, self._sets[candidate])
            if similarity >= self.threshold and (best is None or similarity > best.similarity
                                                 or (similarity == best.similarity and candidate < best.source_id)):
                best = Match(candidate, similarity)
        if best is not None:
            logger.info("copy of %s (Jaccard %.2f)", best.source_id, best.similarity)
        return best
