"""Web sources: RSS 2.0 / Atom feeds and article pages, ingested incrementally.

* `ingest_urls` fetches each URL through the guarded `Fetcher` (rag/index/web.py). A feed
  ingests every linked article; an HTML page is one article. Requests are conditional (ETag /
  Last-Modified, kept on the source record for pages and in the registry for feeds); a page whose
  extracted text changed is replaced, an unchanged one is left alone, and ids are slugs of the
  URL, so nothing is ever stored twice.
* Agency copies (rag/index/dedupe.py) are stored once: the copy keeps a record without chunks
  that points at the original (`duplicate_of`), so answers cite the text once and name every
  outlet that carried it.
* `FeedRegistry` is the list of feeds that refresh themselves (`newsbot feeds add|list|remove`),
  persisted as JSON in the data dir with each feed's HTTP validators and last item list, plus
  the URLs removed with `newsbot forget` (a refresh must not bring them back).
* `FeedRefresher` refreshes the registered feeds in a daemon thread (chat, discord).

A failure is one message naming the URL; the other articles still go in, and whatever the store
already has for a failing URL stays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rag.index.feed_parse import FeedError, FeedItem, looks_like_feed, parse_date, parse_feed, source_id_for
from rag.index.feed_registry import FeedRegistry
from rag.index.ingest import IngestSummary, _writing
from rag.index.sources import find_source
from rag.index.store import SourceRecord, Store
from rag.index.web import normalise_url
from rag.index.web_ingest import WebIngest, ingest_urls, read_web_document, refresh_feeds

__all__ = [
    "FeedError", "FeedItem", "FeedRegistry", "FeedRefresher", "NewArticle", "WebIngest", "annotate_answer",
    "forget", "ingest_urls", "looks_like_feed", "new_articles", "parse_date", "parse_feed", "read_web_document",
    "refresh_feeds", "remove_feed", "source_id_for", "start_feed_refresh",
]

logger = logging.getLogger(__name__)


# ---- removing ----------------------------------------------------------------------------------

def _delete(store: Store, ids: list[str]) -> None:
    for source_id in ids:
        with _writing(store, source_id):
            store.delete_source(source_id)
    if ids:
        with _writing(store, None):
            store.bump_generation()


def _with_copies(manifest: dict[str, SourceRecord], ids: set[str]) -> list[str]:
    return sorted(ids | {sid for sid, r in manifest.items() if r.duplicate_of in ids})


def remove_feed(store: Store, registry: FeedRegistry, url: str) -> list[str]:
    """Unregister a feed and delete the articles it brought in (and their merged copies)."""
    url = normalise_url(url)
    registered = registry.remove(url)
    manifest = store.manifest()
    ids = _with_copies(manifest, {sid for sid, r in manifest.items() if r.feed == url})
    if not registered and not ids:
        raise FeedError(f"{url}: not a registered feed (see `newsbot feeds list`)")
    _delete(store, ids)
    return ids


def forget(store: Store, registry: FeedRegistry, source: str) -> list[str]:
    """Delete one source (its id, its URL or its file's path) and its merged copies. Neither a feed
    refresh nor the next ingest of the file's folder brings it back; naming the URL or the file in
    `newsbot ingest` does."""
    manifest = store.manifest()
    ids = _with_copies(manifest, {find_source(manifest, source)})
    registry.forget([manifest[sid].url for sid in ids if manifest[sid].url])
    registry.forget_files([manifest[sid].path for sid in ids if not manifest[sid].url and manifest[sid].path])
    _delete(store, ids)
    return ids


# ---- answers and listings ----------------------------------------------------------------------

@dataclass
class NewArticle:
    source: str
    title: str
    outlet: str
    date: str
    url: str
    added_at: str

    def as_json(self) -> dict[str, str]:
        return self.__dict__.copy()


def new_articles(store: Store, since: str | None = None, last: int | None = None) -> list[NewArticle]:
    """Web articles added since a date/time (ISO, e.g. 2025-08-18 or 2025-08-18T12:00) and/or the
    last N, newest first (for Discord's /neu). Merged copies are not listed: their original is."""
    rows = [
        NewArticle(sid, r.title, r.outlet, r.date, r.url, r.added_at)
        for sid, r in store.manifest().items()
        if r.url and r.added_at and r.status == "ok" and not r.duplicate_of
    ]
    if since:
        bound = _aware(since)
        rows = [a for a in rows if _aware(a.added_at) >= bound]
    rows.sort(key=lambda a: (a.added_at, a.source), reverse=True)
    return rows[:last] if last else rows


def _aware(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FeedError(f"{text!r}: not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def annotate_answer(answer: Any, record: Callable[[str], SourceRecord | None], store: Store) -> None:
    """Give citations and retrieved passages their URL and outlet, and citations the outlets
    that carried the same text (merged agency copies)."""
    for passage in answer.retrieved:
        found = record(passage.source)
        if found is not None:
            passage.url, passage.outlet = found.url, found.outlet
    if not answer.citations:
        return
    copies = store.duplicates_of(sorted({c.source for c in answer.citations}))
    for citation in answer.citations:
        found = record(citation.source)
        if found is not None:
            citation.url, citation.outlet = found.url, found.outlet
        citation.also = [
            {"outlet": c.outlet, "url": c.url, "title": c.title, "date": c.date}
            for c in sorted(copies.get(citation.source, []), key=lambda r: (r.outlet, r.url))
            if c.status == "ok"
        ]




# ---- the background refresh --------------------------------------------------------------------

class FeedRefresher:
    """Refreshes the registered feeds every `interval_s` in a daemon thread, one log line each
    time; answers never wait for it (it shares only the store, which is safe across threads)."""

    def __init__(self, store: Store, settings: Any, interval_s: float,
                 refresh: Callable[[], IngestSummary] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.interval_s = interval_s
        self._refresh = refresh or (lambda: refresh_feeds(store, settings))
        self._stop = threading.Event()
        self.refreshes = 0
        self.thread = threading.Thread(target=self._loop, name="newsbot-feeds", daemon=True)

    def start(self) -> FeedRefresher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.refresh_once()
            self._stop.wait(self.interval_s)

    def refresh_once(self) -> IngestSummary | None:
        feeds = len(FeedRegistry(self.settings.data_dir).feeds())
        if not feeds:
            logger.debug("no feeds registered; nothing to refresh")
            return None
        try:
            summary = self._refresh()
        except Exception as exc:  # a store or registry failure: logged, the next round tries again
            logger.warning("feed refresh failed: %s", exc)
            return None
        finally:
            self.refreshes += 1
        logger.info("feeds refreshed: %d feed(s); added %d, updated %d, merged %d, unchanged %d, %d error(s)",
                    feeds, summary.added, summary.updated, summary.merged, summary.unchanged,
                    len(summary.errors))
        return summary


def start_feed_refresh(store: Store, settings: Any) -> FeedRefresher | None:
    """The background refresh for `chat` and `discord`; None when NEWSBOT_FEED_INTERVAL_MIN is 0."""
    if settings.feed_interval_min <= 0:
        return None
    return FeedRefresher(store, settings, settings.feed_interval_min * 60).start()
