"""Sentence vectors for question/sentence similarity, cached on disk by the sentence's text.

The context selector and the answer decisions compare the question with single sentences (the
chunk vectors in Chroma cover several). A sentence is embedded once per embedding model: the
vectors live beside the keyword index as one float16 matrix plus the sha1 of each sentence's
text, so a restart or a second process reuses them and a changed article embeds only its new
sentences.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

logger = logging.getLogger(__name__)


def _key(text: str) -> str:
    return hashlib.sha1(" ".join(text.split()).encode("utf-8")).hexdigest()


class SentenceVectors:
    def __init__(self, directory: Path, embeddings: Embeddings, model_name: str) -> None:
        self.directory = directory
        self.embeddings = embeddings
        self.name = "".join(ch if ch.isalnum() else "_" for ch in model_name)[:60]
        self._vectors: dict[str, np.ndarray] = {}
        self._saved = 0
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def _paths(self) -> tuple[Path, Path]:
        return self.directory / f"{self.name}.keys.json", self.directory / f"{self.name}.npy"

    def _load(self) -> None:
        self._loaded = True
        keys_path, matrix_path = self._paths
        try:
            keys = json.loads(keys_path.read_text(encoding="utf-8"))
            matrix = np.load(matrix_path, allow_pickle=False)
            if len(keys) != len(matrix):
                raise ValueError("keys and vectors differ in length")
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:  # a broken cache is rebuilt, never trusted
            logger.warning("sentence vector cache %s unreadable (%s); re-embedding", matrix_path, exc)
            return
        self._vectors = {k: v.astype(np.float32) for k, v in zip(keys, matrix)}
        self._saved = len(self._vectors)

    def missing(self, texts: list[str]) -> list[str]:
        """The texts (once each) that have no vector yet."""
        with self._lock:
            if not self._loaded:
                self._load()
            unseen = {}
            for text in texts:
                key = _key(text)
                if key not in self._vectors:
                    unseen.setdefault(key, text)
            return list(unseen.values())

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one row per text, embedding (and saving) only the unseen ones."""
        with self._lock:
            if not self._loaded:
                self._load()
            keys = [_key(t) for t in texts]
            missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
            if missing:
                by_key = {k: t for k, t in zip(keys, texts)}
                fresh = np.asarray(self.embeddings.embed_documents([by_key[k] for k in missing]), dtype=np.float32)
                for key, vector in zip(missing, fresh):
                    self._vectors[key] = vector / (np.linalg.norm(vector) or 1.0)
                self._save()
            if not keys:
                return np.zeros((0, 1), dtype=np.float32)
            return np.stack([self._vectors[k] for k in keys])

    def query(self, texts: list[str]) -> np.ndarray:
        rows = [np.asarray(self.embeddings.embed_query(t), dtype=np.float32) for t in texts]
        return np.stack([r / (np.linalg.norm(r) or 1.0) for r in rows])

    def _save(self) -> None:
        keys_path, matrix_path = self._paths
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            keys = list(self._vectors)
            tmp_matrix = matrix_path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp_matrix, np.stack([self._vectors[k] for k in keys]).astype(np.float16), allow_pickle=False)
            tmp_keys = keys_path.with_suffix(f".{os.getpid()}.tmp")
            tmp_keys.write_text(json.dumps(keys), encoding="utf-8")
            os.replace(tmp_matrix, matrix_path)
            os.replace(tmp_keys, keys_path)
            self._saved = len(keys)
        except OSError as exc:  # a read-only data dir: vectors stay in memory for this process
            logger.warning("cannot save sentence vectors to %s: %s", self.directory, exc)
