"""Wiring: the one place that knows the concrete classes and builds them from the settings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.answering.context import Corpus
from rag.answering.fitted import DEFAULT_PATH, DecisionModels
from rag.answering.retrieve import HybridSearch
from rag.answering.service import AnswerService
from rag.index.ingest import IngestSummary, ingest
from rag.index.keyword import KeywordIndex
from rag.index.lexicon import Lexicon
from rag.index.sentence_vectors import SentenceVectors
from rag.index.store import Store
from rag.llm.base import LLM
from rag.prompts import PromptLibrary
from rag.settings import Settings

logger = logging.getLogger(__name__)

# progress(name, done, total) while ingesting
Progress = Callable[[str, int, int], None]


def make_llm(settings: Settings, model: str | None = None) -> LLM:
    """The backend chosen by NEWSBOT_LLM_BACKEND (in-process: `model`, default the chat model)."""
    if settings.llm_backend == "openai":
        from rag.llm.openai_server import OpenAICompatibleLLM

        return OpenAICompatibleLLM(settings)
    from rag.llm.llama_cpp import LlamaCppLLM
    from rag.llm.models import resolve_model_path

    model = model or settings.model
    path = resolve_model_path(model, settings.model_cache_dir)
    return LlamaCppLLM(path, settings, model if not model.endswith(".gguf") else Path(model).name)


def reader_factory(settings: Settings) -> Callable[[], LLM] | None:
    """The reader's own model (NEWSBOT_READER_MODEL), or None where the chat model reads too."""
    if settings.reading_model == settings.model:
        return None
    return lambda: make_llm(settings, settings.reading_model)


def build_service(settings: Settings, *, embeddings=None, llm_factory: Callable[[], LLM] | None = None,
                  reader: Callable[[], LLM] | None = None) -> AnswerService:
    """Wire the real components from settings (the one place that knows the concrete classes).
    A given `llm_factory` without a `reader` reads too (tests hand in one model for everything)."""
    from rag.index.embeddings import make_embeddings

    embeddings = embeddings or make_embeddings(settings.embedding_model)
    store = Store(settings, embeddings)
    keywords = keyword_index(settings)
    search = HybridSearch(store, keywords, settings.bm25_weight, settings.dense_weight, settings.top_k, settings.rrf_k)
    corpus = Corpus(store, keywords)
    prompts = PromptLibrary(settings.prompts_dir)
    lexicon = None
    if settings.translation_hints:
        from rag.index.embeddings import UniversalSentenceEncoderEmbeddings

        lexicon = Lexicon(keywords.directory.with_name(keywords.directory.name + "-lexicon"), UniversalSentenceEncoderEmbeddings())
    vectors = SentenceVectors(keywords.directory.with_name(keywords.directory.name + "-sentences"), embeddings,
                              settings.embedding_model)
    if llm_factory is None:
        llm_factory, reader = (lambda: make_llm(settings)), reader or reader_factory(settings)
    decisions = DecisionModels.load(settings.decisions_path or DEFAULT_PATH)
    if mismatched := decisions.mismatches(settings):
        logger.warning("the answer decisions were fitted with %s: refit them (`newsbot fit`) for answers as measured",
                       ", ".join(mismatched))
    return AnswerService(settings, store, keywords, search, corpus, prompts, llm_factory, lexicon, decisions,
                         sentence_vectors=vectors, reader_factory=reader)


def _server_keyword_dir(settings: Settings) -> Path:
    """Per-server keyword cache, so an embedded store and a server never share one index."""
    return settings.data_dir / "keyword-server" / f"{settings.chroma_host}_{settings.chroma_port}_{settings.collection}"


def open_store(settings: Settings) -> Store:
    """The store alone (ingest needs no model)."""
    from rag.index.embeddings import make_embeddings

    return Store(settings, make_embeddings(settings.embedding_model))


def ingest_paths(settings: Settings, store: Store, paths: list[Path], progress: Progress | None = None,
                 urls: Sequence[str] = ()) -> IngestSummary:
    """Incremental ingest of files and folders into the store, then of `urls` (RSS/Atom feeds and
    article pages, rag/index/feeds.py), as one summary."""
    summary = IngestSummary()
    if paths or not urls:
        from rag.index.feed_registry import FeedRegistry

        registry = FeedRegistry(settings.data_dir)
        registry.unforget_files([str(p.resolve()) for p in paths if p.is_file()])  # naming a file brings it back
        summary = ingest(store, paths, settings.chunk_chars, progress=progress, forgotten=registry.forgotten_files())
    if urls:
        from rag.index.feeds import ingest_urls

        summary.add(ingest_urls(store, settings, list(urls), progress=progress))
    keyword_index(settings).ensure_current(store)  # rebuilt here when missing, stale or damaged, not on the first question
    return summary


def keyword_index(settings: Settings) -> KeywordIndex:
    """The BM25 side index of this store (a per-server folder for a Chroma server)."""
    return KeywordIndex(settings.keyword_dir if not settings.uses_chroma_server else _server_keyword_dir(settings))


def split_sources(args: Sequence[str], default: Path) -> tuple[list[Path], list[str]]:
    """`newsbot ingest` arguments as (paths, urls); no arguments: the seeds folder."""
    from rag.index.web import is_url

    urls = [a for a in args if is_url(a)]
    paths = [Path(a) for a in args if not is_url(a)]
    return (paths or ([] if urls else [default])), urls


def start_feed_refresh(settings: Settings, store: Store):
    """The background refresh of the registered feeds (chat, discord); None when switched off."""
    from rag.index.feeds import start_feed_refresh as start

    return start(store, settings)


def needs_seeds(store: Store) -> bool:
    """True for an empty store. A store built by another newsbot version or embedding model is
    refused here (StoreError naming --rebuild)."""
    store.check_compatible()
    return store.chunk_count() == 0


def ensure_store(settings: Settings, store: Store, progress: Progress | None = None) -> IngestSummary | None:
    """First use: ingest the seeds, so `ask` and `chat` work on a fresh machine (None: nothing to do)."""
    if not needs_seeds(store):
        return None
    return ingest_paths(settings, store, [settings.seeds_dir], progress)


def ensure_block_states(service: AnswerService, progress: Progress | None = None, force: bool = False):
    """After an ingest: the model states of every possible first context block (NEWSBOT_BLOCK_STATES_MB),
    computed where missing, deleted where no longer needed. None when they were already current."""
    from rag.answering import block_states

    if not force and block_states.up_to_date(service.settings, service.store, service.prompts):
        return None
    return block_states.sync(service, progress)
