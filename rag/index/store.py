"""The Chroma store: chunk vectors (through langchain-chroma) and a small sources collection.

The sources collection holds, per article, its full text (what citations are checked against),
metadata and content hash with an ingest status; a `__meta__` record carries a generation id
that changes with every write, so keyword indexes in any process notice a changed store. Both
live in Chroma, so a shared Chroma server keeps several newsbot processes consistent.
"""

from __future__ import annotations

import functools
import logging
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from rag.errors import StoreError
from rag.index.rebuild import access_problem, not_writable
from rag.settings import Settings

logger = logging.getLogger(__name__)

META_ID = "__meta__"
SCHEMA_VERSION = 1


@dataclass
class SourceRecord:
    source_id: str
    text: str
    title: str
    date: str
    date_ord: int
    outlet: str
    path: str
    content_hash: str
    status: str  # "ok" or "pending" (an ingest of this source began and did not finish)
    replacing: bool
    chunks: int
    # web sources (rag/index/feeds.py); empty for local files, and then not stored at all
    url: str = ""
    feed: str = ""  # the feed that brought it in ("" when its URL was ingested directly)
    etag: str = ""
    last_modified: str = ""
    added_at: str = ""  # ISO 8601 UTC, when first stored
    author: str = ""
    duplicate_of: str = ""  # an agency copy: stored once, under this source id (this record has no chunks)

    def metadata(self) -> dict[str, Any]:
        meta = {
            "title": self.title, "date": self.date, "date_ord": self.date_ord, "outlet": self.outlet,
            "path": self.path, "content_hash": self.content_hash, "status": self.status,
            "replacing": self.replacing, "chunks": self.chunks,
        }
        meta.update({key: getattr(self, key) for key in WEB_FIELDS if getattr(self, key)})
        return meta

    @classmethod
    def from_chroma(cls, source_id: str, text: str | None, meta: dict[str, Any]) -> SourceRecord:
        return cls(
            source_id=source_id, text=text or "", title=str(meta.get("title", "")), date=str(meta.get("date", "")),
            date_ord=int(meta.get("date_ord", 0)), outlet=str(meta.get("outlet", "")), path=str(meta.get("path", "")),
            content_hash=str(meta.get("content_hash", "")), status=str(meta.get("status", "")),
            replacing=bool(meta.get("replacing", False)), chunks=int(meta.get("chunks", 0)),
            **{key: str(meta.get(key, "")) for key in WEB_FIELDS},
        )


WEB_FIELDS = ("url", "feed", "etag", "last_modified", "added_at", "author", "duplicate_of")


# A Chroma server that accepts the connection but never answers must not hang a question forever.
CHROMA_TIMEOUT_S = 60.0
CHROMA_CONNECT_TIMEOUT_S = 5.0


def server_address(settings: Settings) -> str:
    return f"{settings.chroma_host}:{settings.chroma_port}"


def open_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=True)
    if settings.uses_chroma_server:
        try:
            client = chromadb.HttpClient(
                host=settings.chroma_host, port=settings.chroma_port, ssl=settings.chroma_ssl,
                headers=dict(settings.chroma_headers) or None, settings=chroma_settings,
            )
            _set_timeout(client)
            client.heartbeat()
            return client
        except Exception as exc:  # chromadb raises several types for connection problems
            raise server_error(settings, exc) from None
    try:
        settings.store_dir.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(settings.store_dir), settings=chroma_settings)
        client.list_collections()
        return client
    except Exception as exc:
        if access_problem(exc):
            raise not_writable(settings, exc) from None
        raise StoreError(
            f"The store at {settings.store_dir} is corrupt or was written by an incompatible Chroma version "
            f"({type(exc).__name__}: {str(exc)[:120]}). Rebuild it with: newsbot ingest --rebuild"
        ) from None


def _set_timeout(client: Any) -> None:
    """chromadb's HttpClient waits forever by default; give its httpx session finite timeouts."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(CHROMA_TIMEOUT_S, connect=CHROMA_CONNECT_TIMEOUT_S)


def server_error(settings: Settings, exc: BaseException) -> StoreError:
    """A StoreError that names the Chroma server and what to check (never the auth headers)."""
    import httpx

    address = server_address(settings)
    scheme = "https" if settings.chroma_ssl else "http"
    text = " ".join(str(exc).split())
    if isinstance(exc, httpx.TimeoutException):
        return StoreError(f"The Chroma server at {address} did not answer in time ({type(exc).__name__}); "
                          f"check that it is running and not overloaded")
    if isinstance(exc, httpx.TransportError) or "Could not connect to a Chroma server" in text:
        hint = "" if not settings.chroma_ssl else " and NEWSBOT_CHROMA_SSL (TLS certificate trusted? see SSL_CERT_FILE)"
        return StoreError(
            f"Cannot reach the Chroma server at {address} ({type(exc).__name__}); start it "
            f"(chroma run --path DIR --port {settings.chroma_port}) or check NEWSBOT_CHROMA_HOST/PORT{hint}"
        )
    lowered = text.lower()
    if any(word in lowered for word in ("unauthorized", "forbidden", "401", "403", "authentication")):
        return StoreError(f"The Chroma server at {scheme}://{address} refused the request ({text[:120]}); "
                          f"check NEWSBOT_CHROMA_HEADERS (auth for the proxy in front of it)")
    return StoreError(f"The Chroma server at {address} failed: {type(exc).__name__}: {text[:160]}")


_T = TypeVar("_T")


def _guarded(method: Callable[..., _T]) -> Callable[..., _T]:
    """Store methods against a Chroma server: lost connections and server errors become a
    StoreError naming host:port. In both modes, collections deleted by another process
    (`ingest --rebuild`) are reopened once, so a running chat or bot serves the rebuilt store."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> _T:
        from chromadb.errors import ChromaError, NotFoundError

        for attempt in (0, 1):
            try:
                return method(self, *args, **kwargs)
            except StoreError:
                raise
            except NotFoundError as exc:
                if attempt == 0:  # `ingest --rebuild` in another process replaced the collections
                    logger.warning("The store's collections were rebuilt by another process; reopening them")
                    self._open_collections()
                    continue
                if not self.settings.uses_chroma_server:
                    raise StoreError(f"The store's collections vanished while in use ({exc}); run the command again") from None
                raise server_error(self.settings, exc) from None
            except Exception as exc:
                if self.settings.uses_chroma_server and _is_server_failure(exc, ChromaError):
                    raise server_error(self.settings, exc) from None
                raise
        raise AssertionError("unreachable")

    return wrapper


def _is_server_failure(exc: BaseException, chroma_error: type) -> bool:
    import httpx

    # chromadb raises a bare Exception(response text) for HTTP errors it cannot map
    return isinstance(exc, (httpx.HTTPError, chroma_error)) or type(exc) is Exception


class Store:
    def __init__(self, settings: Settings, embeddings: Embeddings, client: Any | None = None) -> None:
        self.settings = settings
        self.embeddings = embeddings
        self.client = client if client is not None else open_client(settings)
        self._open_collections()

    def _open_collections(self) -> None:
        from langchain_chroma import Chroma

        try:
            self.vectors = Chroma(
                collection_name=f"{self.settings.collection}_chunks",
                embedding_function=self.embeddings,
                client=self.client,
                collection_metadata={"hnsw:space": "cosine"},
            )
            self.sources = self.client.get_or_create_collection(f"{self.settings.collection}_sources", embedding_function=None)
        except StoreError:
            raise
        except Exception as exc:
            if self.settings.uses_chroma_server:
                raise server_error(self.settings, exc) from None
            if access_problem(exc):
                raise not_writable(self.settings, exc) from None
            raise StoreError(
                f"The store's collections cannot be opened ({type(exc).__name__}: {str(exc)[:120]}). "
                f"Rebuild it with: newsbot ingest --rebuild"
            ) from None

    @property
    def chunks(self):
        return self.vectors._collection

    # ---- metadata -------------------------------------------------------------------------------
    @_guarded
    def meta(self) -> dict[str, Any]:
        got = self.sources.get(ids=[META_ID], include=["metadatas"])
        return dict(got["metadatas"][0]) if got["ids"] else {}

    def generation(self) -> str:
        return str(self.meta().get("generation", ""))

    @_guarded
    def bump_generation(self) -> str:
        generation = uuid.uuid4().hex
        meta = {
            "generation": generation, "schema": SCHEMA_VERSION, "embedding_model": self.settings.embedding_model,
        }
        self.sources.upsert(ids=[META_ID], documents=[""], metadatas=[meta], embeddings=[[0.0]])
        return generation

    def check_compatible(self) -> None:
        meta = self.meta()
        stored = meta.get("embedding_model")
        if stored and stored != self.settings.embedding_model:
            raise StoreError(
                f"The store was built with embedding model {stored!r} but NEWSBOT_EMBEDDING_MODEL is "
                f"{self.settings.embedding_model!r}; set it back, or rebuild with: newsbot ingest --rebuild"
            )
        if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise StoreError("The store was written by another newsbot version; rebuild it with: newsbot ingest --rebuild")

    # ---- sources --------------------------------------------------------------------------------
    @_guarded
    def manifest(self) -> dict[str, SourceRecord]:
        got = self.sources.get(include=["metadatas"])
        return {
            sid: SourceRecord.from_chroma(sid, None, meta or {})
            for sid, meta in zip(got["ids"], got["metadatas"])
            if sid != META_ID
        }

    @_guarded
    def source_records(self, ids: list[str] | None = None) -> dict[str, SourceRecord]:
        got = self.sources.get(ids=ids, include=["metadatas", "documents"]) if ids else self.sources.get(include=["metadatas", "documents"])
        return {
            sid: SourceRecord.from_chroma(sid, doc, meta or {})
            for sid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"])
            if sid != META_ID and (meta or {}).get("status") == "ok"
        }

    @_guarded
    def put_source(self, record: SourceRecord) -> None:
        self.sources.upsert(ids=[record.source_id], documents=[record.text], metadatas=[record.metadata()], embeddings=[[0.0]])

    @_guarded
    def duplicates_of(self, source_ids: list[str]) -> dict[str, list[SourceRecord]]:
        """The agency copies merged into each of these sources (rag/index/dedupe.py)."""
        if not source_ids:
            return {}
        got = self.sources.get(where={"duplicate_of": {"$in": list(source_ids)}}, include=["metadatas"])
        out: dict[str, list[SourceRecord]] = {}
        for sid, meta in zip(got["ids"], got["metadatas"]):
            record = SourceRecord.from_chroma(sid, None, meta or {})
            out.setdefault(record.duplicate_of, []).append(record)
        return out

    @_guarded
    def delete_source(self, source_id: str) -> None:
        self.chunks.delete(where={"source": source_id})
        self.sources.delete(ids=[source_id])

    # ---- chunks ---------------------------------------------------------------------------------
    @_guarded
    def replace_chunks(self, source_id: str, documents: list[Document]) -> None:
        self.chunks.delete(where={"source": source_id})
        for start in range(0, len(documents), 256):
            batch = documents[start:start + 256]
            self.vectors.add_documents(batch, ids=[d.id for d in batch])

    @_guarded
    def chunk_count(self) -> int:
        return self.chunks.count()

    def iter_chunks(self, batch: int = 5000) -> Iterator[tuple[str, str, dict[str, Any]]]:
        offset = 0
        while True:
            got = self._chunk_page(offset, batch)
            if not got["ids"]:
                return
            yield from zip(got["ids"], got["documents"], got["metadatas"])
            offset += len(got["ids"])

    @_guarded
    def _chunk_page(self, offset: int, batch: int) -> dict[str, Any]:
        return self.chunks.get(include=["documents", "metadatas"], limit=batch, offset=offset)

    @_guarded
    def dense_search(self, query: str, k: int, where: dict[str, Any] | None = None) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) for the k nearest chunks."""
        if self.chunk_count() == 0:
            return []
        vector = self.embeddings.embed_query(query)
        got = self.chunks.query(query_embeddings=[vector], n_results=k, where=where, include=["distances"])
        return [(cid, 1.0 - float(dist)) for cid, dist in zip(got["ids"][0], got["distances"][0])]


def wipe(settings: Settings) -> None:
    """Remove this collection pair and its keyword index, nothing else: other collections in the
    same store (other NEWSBOT_COLLECTION names) stay. Only an embedded store that cannot be opened
    at all (a corrupt chroma.sqlite3, unreadable for every collection) is removed as a whole."""
    from rag.index.rebuild import delete_collections, remove_store

    if settings.uses_chroma_server:
        delete_collections(open_client(settings), settings, tolerant=True)
    else:
        try:
            client = open_client(settings)
        except StoreError as exc:
            if "not writable" in str(exc):
                raise
            logger.warning("The store at %s cannot be opened; removing it as a whole", settings.store_dir)
            remove_store(settings)
        else:
            delete_collections(client, settings, tolerant=False)
    shutil.rmtree(settings.keyword_dir, ignore_errors=True)
