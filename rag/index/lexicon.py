"""Cross-lingual hints: the articles' own German words nearest to each word of a foreign question.

The bundled 1.5B model translates news vocabulary poorly on its own ("ceasefire" became
"Stellungnahme", "ask" became "anrufen") but chooses well among candidates. USE multilingual puts
German and English words into one space, so the nearest words of the corpus vocabulary are good
candidates ("ceasefire": Feuerpause, Waffenstillstand; "asked": gefragt, gebeten), and the
translation prompt lists them. Measured on 26 English questions: evidence in the context for 12
with the plain translation, 17 with these hints (benchmarks/README.md, "Cross-lingual").

The vocabulary vectors are persisted beside the keyword index (JSON + .npy, no pickle) and rebuilt
when the store changes, reusing the vectors of words seen before.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from rag.text import ENGLISH_STOPWORDS, GERMAN_STOPWORDS, words

logger = logging.getLogger(__name__)

LEXICON_VERSION = 1
SAME_WORD = 0.97  # a name or a shared word: it stands for itself, no candidates needed


def vocabulary(texts, max_words: int) -> list[str]:
    """The corpus words worth translating into: no stop words, no numbers, most frequent first."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in words(text) if len(w) > 2 and not w.isdigit() and w.casefold() not in GERMAN_STOPWORDS)
    return [word for word, _ in counts.most_common(max_words)]


class Lexicon:
    def __init__(self, directory: Path, encoder, max_words: int = 50_000) -> None:
        self.directory = directory
        self.encoder = encoder  # anything with encode(list[str]) -> unit vectors (UniversalSentenceEncoderEmbeddings)
        self.max_words = max_words
        self.generation: str | None = None
        self.words: list[str] = []
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self._lock = threading.Lock()

    def ensure_current(self, store, generation: str) -> None:
        with self._lock:
            if self.generation == generation:
                return
            if not self._load(generation):
                self._build(store, generation)

    def _load(self, generation: str) -> bool:
        meta_path, vectors_path = self.directory / "lexicon.json", self.directory / "vectors.npy"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("version") != LEXICON_VERSION or meta.get("generation") != generation:
                return False
            vectors = np.load(vectors_path, allow_pickle=False)
        except (OSError, ValueError):
            return False
        if len(vectors) != len(meta["words"]):
            return False
        self.words, self.vectors, self.generation = list(meta["words"]), vectors.astype(np.float32), generation
        return True

    def _build(self, store, generation: str) -> None:
        known = dict(zip(self.words, self.vectors)) if len(self.words) else {}
        wanted = vocabulary((text for _, text, _ in store.iter_chunks()), self.max_words)
        missing = [w for w in wanted if w not in known]
        if missing:
            known.update(zip(missing, self.encoder.encode(missing)))
        self.words = wanted
        self.vectors = np.asarray([known[w] for w in wanted], dtype=np.float32).reshape(len(wanted), -1)
        self.generation = generation
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f"vectors.{os.getpid()}.npy"
            np.save(tmp, self.vectors.astype(np.float16), allow_pickle=False)
            os.replace(tmp, self.directory / "vectors.npy")
            (self.directory / "lexicon.json").write_text(json.dumps(
                {"version": LEXICON_VERSION, "generation": generation, "words": wanted}, ensure_ascii=False), encoding="utf-8")
        except OSError as exc:  # a read-only data dir: keep it in memory
            logger.info("lexicon not saved (%s); using it from memory", exc)
        logger.info("cross-lingual lexicon: %d words (%d embedded now)", len(wanted), len(missing))

    def candidates(self, question: str, k: int = 4, floor: float = 0.5) -> list[tuple[str, list[str]]]:
        """Per content word of the question, up to k corpus words at least `floor` similar."""
        asked = [w for w in dict.fromkeys(words(question)) if len(w) > 2 and w.casefold() not in ENGLISH_STOPWORDS]
        if not asked or not self.words:
            return []
        similarity = np.asarray(self.encoder.encode(asked), dtype=np.float32) @ self.vectors.T
        out: list[tuple[str, list[str]]] = []
        for word, row in zip(asked, similarity):
            order = np.argsort(-row)[:k]
            if row[order[0]] >= SAME_WORD:
                out.append((word, [self.words[order[0]]]))
            else:
                out.append((word, [self.words[i] for i in order if row[i] >= floor]))
        return [(word, found) for word, found in out if found]

    def hints(self, question: str) -> str:
        """"ask: gefragt, gebeten; lead: führen, leiten", the line the translation prompt shows."""
        return "; ".join(f"{word}: {', '.join(found)}" for word, found in self.candidates(question))
