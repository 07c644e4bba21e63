"""The BM25 side index (bm25s) over German-normalised chunk text, persisted beside the store.

Saved as .npy arrays (loaded with allow_pickle=False) and JSON, never pickle. It records the
store generation it was built from and rebuilds itself when the store has moved on, which is how
processes sharing one Chroma server keep their keyword index in step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.text import tokenize

logger = logging.getLogger(__name__)

INDEX_VERSION = 7  # bump when tokenization changes


def _well_formed(meta: dict) -> bool:
    """chunks.json as `_build` writes it: equally long lists, a mapping of counts, a generation string."""
    lists = [meta.get(key) for key in ("ids", "sources", "date_ords", "spans")]
    return (all(isinstance(value, list) for value in lists) and len({len(value) for value in lists}) == 1
            and isinstance(meta.get("doc_freq"), dict) and isinstance(meta.get("generation"), str)
            and all(isinstance(span, list) and len(span) == 2 for span in meta["spans"]))


@dataclass
class KeywordHit:
    chunk_id: str
    score: float


class KeywordIndex:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.generation = ""
        self.ids: list[str] = []
        self.sources: list[str] = []
        self.date_ords = np.zeros(0, dtype=np.int64)
        self.spans: list[tuple[int, int]] = []
        self.position: dict[str, int] = {}
        self.doc_freq: dict[str, int] = {}
        self._bm25 = None
        self._lock = threading.Lock()

    # ---- lifecycle ------------------------------------------------------------------------------
    def ensure_current(self, store) -> None:
        """Load from disk, or rebuild from the store, whenever the store generation differs."""
        generation = store.generation()
        with self._lock:
            if self.generation == generation and (self._bm25 is not None or not self.ids):
                return
            if self._load() and self.generation == generation:
                return
            self._build(store, generation)

    def _load(self) -> bool:
        meta_path = self.directory / "chunks.json"
        try:
            before = meta_path.stat().st_ino
            meta = json.loads(meta_path.read_text())
            if not isinstance(meta, dict) or meta.get("version") != INDEX_VERSION:
                return False
            if not _well_formed(meta):
                raise ValueError(f"{meta_path} is damaged")
            import bm25s

            bm25 = bm25s.BM25.load(str(self.directory / "bm25"), mmap=False, allow_pickle=False) if meta["ids"] else None
            # another process may have swapped in a newer index between the two reads
            if meta_path.stat().st_ino != before or (bm25 is not None and bm25.scores["num_docs"] != len(meta["ids"])):
                return False
        except FileNotFoundError:
            return False
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # damaged files: rebuilt from the store
            logger.warning("keyword index at %s not loadable (%s: %s); rebuilding it from the store", self.directory, type(exc).__name__, exc)
            return False
        self._set(meta["generation"], meta["ids"], meta["sources"], meta["date_ords"], meta["spans"], meta["doc_freq"], bm25)
        return True

    def _build(self, store, generation: str) -> None:
        import bm25s

        ids, sources, dates, spans, corpus = [], [], [], [], []
        for chunk_id, text, meta in store.iter_chunks():
            ids.append(chunk_id)
            spans.append((int(meta.get("start", 0)), int(meta.get("end", 0))))
            sources.append(str(meta.get("source", "")))
            dates.append(int(meta.get("date_ord", 0)))
            corpus.append(tokenize(text) or ["\u2205"])
        doc_freq: dict[str, int] = {}
        for terms in corpus:
            for term in set(terms):
                doc_freq[term] = doc_freq.get(term, 0) + 1
        bm25 = None
        tmp = self.directory.with_name(self.directory.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        if ids:
            bm25 = bm25s.BM25(k1=1.2, b=0.75)
            bm25.index(corpus, show_progress=False)
            bm25.save(str(tmp / "bm25"), allow_pickle=False, show_progress=False)
        (tmp / "chunks.json").write_text(json.dumps({
            "version": INDEX_VERSION, "generation": generation, "ids": ids, "sources": sources,
            "date_ords": dates, "spans": spans, "doc_freq": doc_freq,
        }))
        old = self.directory.with_name(self.directory.name + f".old-{os.getpid()}")
        try:
            if self.directory.exists():
                os.replace(self.directory, old)
            os.replace(tmp, self.directory)
        except OSError as exc:  # another process sharing the data dir swapped its index in first
            logger.info("keyword index not saved (%s); using it from memory", exc)
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        self._set(generation, ids, sources, dates, spans, doc_freq, bm25)
        logger.info("keyword index rebuilt: %d chunks", len(ids))

    def _set(self, generation, ids, sources, dates, spans, doc_freq, bm25) -> None:
        self.generation = generation
        self.ids = list(ids)
        self.position = {cid: i for i, cid in enumerate(self.ids)}
        self.spans = [tuple(s) for s in spans]
        self.sources = list(sources)
        self.date_ords = np.asarray(dates, dtype=np.int64)
        self.doc_freq = dict(doc_freq)
        self._bm25 = bm25

    # ---- queries --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def idf(self, term: str) -> float:
        n = max(1, len(self.ids))
        return math.log(1 + (n - self.doc_freq.get(term, 0) + 0.5) / (self.doc_freq.get(term, 0) + 0.5))

    def question_terms(self, queries: list[str]) -> dict[str, float]:
        """Every term of every phrasing of a question (and the known stems of unknown ones), by idf."""
        terms: dict[str, float] = {}
        for query in queries:
            for term in set(tokenize(query, query=True)) | set(self.expand(tokenize(query, query=True))):
                terms[term] = self.idf(term)
        return terms

    def unknown_share(self, queries: list[str]) -> float:
        """How much of the question (idf-weighted) no article's vocabulary holds, in its best phrasing."""
        shares = []
        for query in queries:
            terms = set(tokenize(query, query=True))
            if not terms:
                continue
            weights = {t: self.idf(t) for t in terms}
            unknown = sum(w for t, w in weights.items() if t not in self.doc_freq and not self.expand([t]))
            shares.append(unknown / (sum(weights.values()) or 1.0))
        return min(shares) if shares else 1.0

    def search(self, terms: list[str], k: int, mask: np.ndarray | None = None) -> list[KeywordHit]:
        if self._bm25 is None or not terms:
            return []
        known = self.expand(terms)
        if not known:
            return []
        scores = self._bm25.get_scores(known)
        if mask is not None:
            scores = scores * mask
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [KeywordHit(self.ids[i], float(scores[i])) for i in top if scores[i] > 0]

    def expand(self, terms: list[str]) -> list[str]:
        """Known terms for a query: unknown words fall back to a known stem they begin with
        ("leitung" -> "leit") or to the known parts of a compound ("punkteskala" -> "punkt")."""
        out: list[str] = []
        for term in terms:
            if term in self.doc_freq:
                out.append(term)
                continue
            if len(term) < 6 or not term.isalpha():
                continue
            prefix = next((term[:n] for n in range(len(term) - 1, 3, -1) if term[:n] in self.doc_freq), None)
            if prefix and len(prefix) >= len(term) - 4:
                out.append(prefix)
                continue
            for cut in range(4, len(term) - 3):
                head, tail = term[:cut], term[cut:]
                head = head if head in self.doc_freq else head.rstrip("s") if head.rstrip("s") in self.doc_freq else None
                if head and len(head) >= 4:
                    out.append(head)
                    if tail in self.doc_freq:
                        out.append(tail)
                    break
        return out

    def mask(self, sources: set[str] | None, date_from: int | None, date_to: int | None) -> np.ndarray | None:
        if not sources and date_from is None and date_to is None:
            return None
        keep = np.ones(len(self.ids), dtype=bool)
        if sources:
            keep &= np.array([s in sources for s in self.sources], dtype=bool)
        if date_from is not None:
            keep &= self.date_ords >= date_from
        if date_to is not None:
            keep &= (self.date_ords <= date_to) & (self.date_ords > 0)
        return keep.astype(np.float32)
