"""Web sources, part 2: the feed registry (feeds.json in the data dir)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.index.feed_parse import Feed, FeedError, _now
from rag.index.web import FetchResult, normalise_url

FEEDS_FILE = "feeds.json"
REGISTRY_VERSION = 1


class FeedRegistry:
    """feeds.json in the data dir: registered feeds, HTTP cache of every feed seen, forgotten URLs.

    Read-modify-write under an exclusive lock file, written atomically, so a chat and a bot
    refreshing in two processes never lose each other's changes."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FEEDS_FILE
        self._lock = threading.Lock()

    def _empty(self) -> dict[str, Any]:
        return {"version": REGISTRY_VERSION, "feeds": {}, "cache": {}, "forgotten": [], "forgotten_files": []}

    def read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self._empty()
        except (OSError, ValueError) as exc:
            raise FeedError(f"{self.path}: cannot read the feed list ({exc}); fix or delete the file "
                            f"(then `newsbot feeds add URL` again)") from None
        base = self._empty()
        base.update({k: v for k, v in data.items() if k in base})
        return base

    @contextlib.contextmanager
    def editing(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self.read()
            yield data
            tmp = self.path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)

    def feeds(self) -> dict[str, dict[str, Any]]:
        return dict(self.read()["feeds"])

    def add(self, url: str) -> bool:
        url = normalise_url(url)
        with self.editing() as data:
            if url in data["feeds"]:
                return False
            data["feeds"][url] = {"added_at": _now(), "title": "", "last_refresh": "", "last_error": ""}
            return True

    def remove(self, url: str) -> bool:
        url = normalise_url(url)
        with self.editing() as data:
            found = data["feeds"].pop(url, None) is not None
            data["cache"].pop(url, None)
            return found

    def cache(self, url: str) -> dict[str, Any]:
        return dict(self.read()["cache"].get(url, {}))

    def remember(self, feed: Feed, result: FetchResult) -> None:
        with self.editing() as data:
            data["cache"][feed.url] = {"etag": result.etag or "", "last_modified": result.last_modified or "",
                                       "title": feed.title, "items": [i.as_json() for i in feed.items]}
            if feed.url in data["feeds"]:
                data["feeds"][feed.url]["title"] = feed.title

    def note_refresh(self, url: str, error: str = "") -> None:
        with self.editing() as data:
            if url in data["feeds"]:
                data["feeds"][url].update(last_refresh=_now(), last_error=error)

    def forgotten(self) -> set[str]:
        return set(self.read()["forgotten"])

    def forget(self, urls: list[str]) -> None:
        with self.editing() as data:
            data["forgotten"] = sorted(set(data["forgotten"]) | {normalise_url(u) for u in urls if u})

    def unforget(self, url: str) -> None:
        url = normalise_url(url)
        if url in self.forgotten():
            with self.editing() as data:
                data["forgotten"] = [u for u in data["forgotten"] if u != url]

    def forgotten_files(self) -> set[str]:
        """Resolved paths of local files removed with `newsbot forget`: a folder's ingest skips them."""
        return set(self.read()["forgotten_files"])

    def forget_files(self, paths: list[str]) -> None:
        if paths:
            with self.editing() as data:
                data["forgotten_files"] = sorted(set(data["forgotten_files"]) | set(paths))

    def unforget_files(self, paths: list[str]) -> None:
        if set(paths) & self.forgotten_files():
            with self.editing() as data:
                data["forgotten_files"] = [p for p in data["forgotten_files"] if p not in set(paths)]
