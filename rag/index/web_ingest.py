"""Web sources, part 3: fetching feeds and pages into the store (`ingest_urls`); see rag/index/feeds.py."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rag.errors import DocumentError
from rag.index.chunking import chunk_document, to_langchain
from rag.index.dedupe import DEFAULT_THRESHOLD, DuplicateIndex
from rag.index.documents import PARSER_VERSION, SourceDocument, parse_text
from rag.index.feed_parse import DEFAULT_MAX_ITEMS, FeedError, FeedItem, _now, looks_like_feed, parse_date, parse_feed, source_id_for
from rag.index.feed_registry import FeedRegistry
from rag.index.html_clean import strip_hidden
from rag.index.ingest import IngestSummary, _writing
from rag.index.store import SourceRecord, Store
from rag.index.web import Fetcher, FetchError, FetchResult, normalise_url
from rag.safe_text import strip_controls

logger = logging.getLogger(__name__)


# ---- reading a page ----------------------------------------------------------------------------

def read_web_document(result: FetchResult, source_id: str, item: FeedItem | None = None,
                      outlet_hint: str = "") -> SourceDocument:
    """The article in a fetched HTML page: trafilatura's text and metadata, the furniture
    filter of local files on top; the feed's date and title when the page has none."""
    import trafilatura

    html = strip_hidden(_decode_html(result))
    url = result.final_url
    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=False, favor_precision=True)
    if not text or not text.strip():
        raise DocumentError(f"{result.url}: no article text found in the page")
    # extensive=False: only dates the page states (meta tags, time elements); the extensive search
    # guesses, e.g. 2025-01-01 from a "© 2025" footer, which would hide the feed's real pubDate
    meta = trafilatura.extract_metadata(html, default_url=url, extensive=False)
    title = strip_controls((meta.title if meta else None) or (item.title if item else ""))
    date = (meta.date if meta else None) or (item.date if item else None)
    outlet = strip_controls((meta.sitename if meta else None) or outlet_hint or (urlsplit(url).hostname or "").removeprefix("www."))
    author = strip_controls((meta.author if meta else None) or "")
    digest = hashlib.sha256(f"newsbot-web-{PARSER_VERSION}\0{title}\0{date}\0{outlet}\0{author}\0{text}".encode()).hexdigest()
    doc = parse_text(text, source_id, Path(source_id), digest)
    if not doc.blocks:
        raise DocumentError(f"{result.url}: no article text left after removing page furniture")
    doc.title = title or doc.title
    doc.date = _iso_date(date) or doc.date
    doc.outlet = outlet or doc.outlet
    if author:
        doc.authors = [a.strip() for a in author.split(";") if a.strip()]
    return doc


def _iso_date(date: str | None) -> str | None:
    return parse_date(date) if date else None


def _decode_html(result: FetchResult) -> str:
    if result.charset:
        try:
            return result.body.decode(result.charset, errors="replace")
        except LookupError:
            pass
    from trafilatura.utils import decode_file

    return decode_file(result.body)


def content_text(doc: SourceDocument) -> str:
    """What near-duplicate detection compares: the content blocks, without the headline."""
    return "\n".join(doc.text[b.start:b.end] for b in doc.blocks)


def _record_content(record: SourceRecord) -> str:
    doc = parse_text(record.text, record.source_id, Path(record.source_id), "")
    return content_text(doc)


Progress = Callable[[str, int, int], None]


class WebIngest:
    """One run over a list of URLs (feeds or pages) against one store."""

    def __init__(self, store: Store, *, chunk_chars: int, fetcher: Fetcher, registry: FeedRegistry,
                 threshold: float = DEFAULT_THRESHOLD, max_items: int = DEFAULT_MAX_ITEMS,
                 progress: Progress | None = None) -> None:
        self.store = store
        self.chunk_chars = chunk_chars
        self.fetcher = fetcher
        self.registry = registry
        self.threshold = threshold
        self.max_items = max_items
        self.progress = progress
        self.summary = IngestSummary()
        self.merged = 0
        self.wrote = False
        self._manifest: dict[str, SourceRecord] = {}
        self._dupes: DuplicateIndex | None = None
        self._forgotten: set[str] = set()
        self._done: set[str] = set()

    def run(self, urls: list[str], explicit: bool = True) -> IngestSummary:
        self.store.check_compatible()
        self._manifest = self.store.manifest()
        if explicit:  # naming a URL on the command line brings a forgotten one back
            for url in urls:
                with contextlib.suppress(ValueError):
                    self.registry.unforget(url)
        self._forgotten = self.registry.forgotten()
        for url in urls:
            self._one(url)
        if self.wrote or not self.store.generation():
            with _writing(self.store, None):
                self.store.bump_generation()
        self.summary.chunks = self.store.chunk_count()
        self.summary.merged = self.merged
        return self.summary

    def _error(self, message: str) -> None:
        logger.warning("%s", message)
        self.summary.errors.append(message)

    def _one(self, url: str) -> None:
        try:
            url = normalise_url(url)
        except ValueError as exc:
            self._error(f"{url}: not a URL ({exc})")
            return
        known_feed = self.registry.cache(url)
        previous = self._manifest.get(source_id_for(url))
        validators = known_feed or (previous.__dict__ if previous and previous.status == "ok" and not known_feed else {})
        try:
            result = self.fetcher.fetch(url, etag=validators.get("etag") or None,
                                        last_modified=validators.get("last_modified") or None)
        except FetchError as exc:
            self._error(str(exc))
            self.registry.note_refresh(url, exc.reason)
            return
        if result.not_modified and known_feed:
            items = [FeedItem(i["url"], i.get("title", ""), i.get("date")) for i in known_feed.get("items", [])]
            self._feed_items(url, items, known_feed.get("title", ""))
        elif result.not_modified:
            self.summary.unchanged += 1
        elif looks_like_feed(result.body, result.content_type):
            try:
                feed = parse_feed(result.body, url)
            except FeedError as exc:
                self._error(str(exc))
                self.registry.note_refresh(url, str(exc))
                return
            self.registry.remember(feed, result)
            self._feed_items(url, feed.items, feed.title)
        else:
            self._page(url, None, "", "", prefetched=result)
        self.registry.note_refresh(url)

    def _feed_items(self, feed_url: str, items: list[FeedItem], feed_title: str) -> None:
        items = items[: self.max_items]
        for done, item in enumerate(items, start=1):
            if self.progress:
                self.progress(item.url, done - 1, len(items))
            self._page(item.url, item, feed_url, feed_title)
        if self.progress:
            self.progress("", len(items), len(items))

    def _page(self, url: str, item: FeedItem | None, feed_url: str, outlet_hint: str,
              prefetched: FetchResult | None = None) -> None:
        try:
            url = normalise_url(url)
        except ValueError as exc:
            self._error(f"{url}: not a URL ({exc})")
            return
        if url in self._done:
            return
        self._done.add(url)
        if url in self._forgotten:
            logger.info("%s: forgotten (newsbot forget); skipped", url)
            return
        source_id = source_id_for(url)
        previous = self._manifest.get(source_id)
        usable = previous if previous is not None and previous.status == "ok" else None
        result = prefetched
        if result is None:
            try:
                result = self.fetcher.fetch(url, etag=(usable.etag or None) if usable else None,
                                            last_modified=(usable.last_modified or None) if usable else None)
            except FetchError as exc:
                self._error(str(exc))  # whatever the store has for this page stays
                return
        if result.not_modified:
            self.summary.unchanged += 1
            return
        try:
            doc = read_web_document(result, source_id, item, outlet_hint)
        except DocumentError as exc:
            self._error(str(exc))
            return
        record = SourceRecord(
            source_id=source_id, text=doc.text, title=doc.title, date=doc.date or "", date_ord=doc.date_ord,
            outlet=doc.outlet or "", path=url, content_hash=doc.content_hash, status="pending",
            replacing=previous.replacing if previous and previous.status == "pending" else previous is not None,
            chunks=0, url=url, feed=(previous.feed if previous and previous.feed else feed_url),
            etag=result.etag or "", last_modified=result.last_modified or "",
            added_at=(previous.added_at if previous and previous.added_at else _now()),
            author="; ".join(doc.authors),
        )
        if usable is not None and usable.content_hash == doc.content_hash:
            self.summary.unchanged += 1
            if (usable.etag, usable.last_modified) != (record.etag, record.last_modified):
                usable.etag, usable.last_modified = record.etag, record.last_modified
                full = self.store.source_records([source_id]).get(source_id)
                if full is not None:  # keep the text: only the validators change
                    full.etag, full.last_modified = record.etag, record.last_modified
                    with _writing(self.store, source_id):
                        self.store.put_source(full)
            return
        match = self._duplicates().find(content_text(doc), exclude=source_id)
        if match is not None:
            self._store_copy(record, match.source_id, previous)
        else:
            self._store(record, doc)
        self._manifest[source_id] = record

    def _duplicates(self) -> DuplicateIndex:
        """Every stored original (local files included), built once per run."""
        if self._dupes is None:
            self._dupes = DuplicateIndex(self.threshold)
            originals = [sid for sid, r in self._manifest.items() if r.status == "ok" and r.chunks and not r.duplicate_of]
            for start in range(0, len(originals), 200):
                for sid, record in self.store.source_records(originals[start:start + 200]).items():
                    self._dupes.add(sid, _record_content(record))
        return self._dupes

    def _store(self, record: SourceRecord, doc: SourceDocument) -> None:
        chunks = chunk_document(doc, self.chunk_chars)
        with _writing(self.store, record.source_id):
            self.store.put_source(record)
            self.wrote = True
            self.store.replace_chunks(record.source_id, [to_langchain(doc, c) for c in chunks])
            record.status, record.chunks = "ok", len(chunks)
            self.store.put_source(record)
        self._duplicates().add(record.source_id, content_text(doc))
        if record.replacing:
            self.summary.updated += 1
        else:
            self.summary.added += 1
        logger.info("ingested %s (%s): %d chunks", record.source_id, record.url, len(chunks))

    def _store_copy(self, record: SourceRecord, original: str, previous: SourceRecord | None) -> None:
        """An agency copy: a record without text or chunks that names the original."""
        record.duplicate_of = original
        record.text = ""
        with _writing(self.store, record.source_id):
            self.store.put_source(record)
            self.wrote = True
            self.store.replace_chunks(record.source_id, [])
            record.status = "ok"
            self.store.put_source(record)
        if self._dupes is not None:
            self._dupes.remove(record.source_id)
        if previous is not None and previous.status == "ok" and not previous.duplicate_of:
            self.summary.updated += 1  # was an article of its own, now merged
        else:
            self.merged += 1
        logger.info("%s is a copy of %s; stored once", record.url, original)


def ingest_urls(store: Store, settings: Any, urls: list[str], *, fetcher: Fetcher | None = None,
                registry: FeedRegistry | None = None, progress: Progress | None = None,
                explicit: bool = True) -> IngestSummary:
    """Ingest feeds and pages; the summary counts articles (a feed itself is no article)."""
    registry = registry or FeedRegistry(settings.data_dir)
    own = fetcher is None
    fetcher = fetcher or Fetcher.from_settings(settings)
    try:
        return WebIngest(store, chunk_chars=settings.chunk_chars, fetcher=fetcher, registry=registry,
                         threshold=settings.dedupe_threshold, max_items=settings.feed_max_items,
                         progress=progress).run(urls, explicit=explicit)
    finally:
        if own:
            fetcher.close()


def refresh_feeds(store: Store, settings: Any, registry: FeedRegistry | None = None,
                  fetcher: Fetcher | None = None) -> IngestSummary:
    registry = registry or FeedRegistry(settings.data_dir)
    return ingest_urls(store, settings, list(registry.feeds()), fetcher=fetcher, registry=registry, explicit=False)
