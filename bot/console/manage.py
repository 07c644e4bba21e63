"""`newsbot feeds`, `newsbot sources` and `newsbot forget`: managing what the store holds.

Errors (FeedError, a UserError) reach bot/cli.py main(), which prints them as one line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from rag.safe_text import strip_controls
from rag.settings import Settings

EXIT_USAGE = 2


def feeds_command(settings: Settings, args, run_ingest: Callable) -> int:
    from rag.index.feeds import FeedRegistry, new_articles, remove_feed
    from rag.wiring import open_store

    registry = FeedRegistry(settings.data_dir)
    if args.feeds_command == "add":
        from rag.index.web import normalise_url

        url = normalise_url(args.url)
        if not url.startswith(("http://", "https://")):
            print(f"newsbot: {args.url}: only http and https feeds can be added", file=sys.stderr)
            return EXIT_USAGE
        new = registry.add(url)
        print(f"{'added' if new else 'already registered'}: {url}", file=sys.stderr)
        if args.no_fetch:
            return 0
        summary = run_ingest(settings, [], show_progress=not args.json, urls=[url])
        for error in summary.errors:
            print(f"skipped: {error}", file=sys.stderr)
        print(json.dumps(summary.as_json(), ensure_ascii=False) if args.json else
              f"added {summary.added}, updated {summary.updated}, merged {summary.merged}, unchanged {summary.unchanged}")
        return 0 if not summary.errors else 1
    if args.feeds_command == "list":
        feeds = registry.feeds()
        if args.json:
            print(json.dumps([{"url": u, **info} for u, info in feeds.items()], ensure_ascii=False))
            return 0
        if not feeds:
            print("no feeds registered; add one with: newsbot feeds add URL")
        for url, info in feeds.items():
            state = f"last refresh {info.get('last_refresh') or 'never'}"
            state += f", error: {info['last_error']}" if info.get("last_error") else ""
            print(strip_controls(f"{url}  {info.get('title') or ''}  ({state})"))
        return 0
    store = open_store(settings)
    if args.feeds_command == "remove":
        removed = remove_feed(store, registry, args.url)
        print(f"removed the feed and {len(removed)} article(s)")
        return 0
    rows = new_articles(store, since=args.since, last=args.last)
    if args.json:
        print(json.dumps([a.as_json() for a in rows], ensure_ascii=False))
        return 0
    for a in rows:
        print(strip_controls(f"{a.added_at}  {a.date or 'undatiert'}  {a.outlet}: {a.title}\n    {a.url}"))
    return 0


def sources_command(settings: Settings, args) -> int:
    from rag.index.sources import list_sources
    from rag.wiring import open_store

    rows = list_sources(open_store(settings))
    if args.json:
        print(json.dumps([r.as_json() for r in rows], ensure_ascii=False))
        return 0
    if not rows:
        print("the store is empty; add articles with: newsbot ingest [PATH or URL...]")
    for r in rows:
        state = "" if r.status == "ok" else f"  [{r.status}]"
        copy = f"  (copy of {r.duplicate_of})" if r.duplicate_of else ""
        print(strip_controls(f"{r.source}  {r.date or 'undatiert'}  {r.title}{copy}{state}\n    {r.where}"))
    return 0


def forget_command(settings: Settings, args) -> int:
    from rag.index.feeds import FeedRegistry, forget
    from rag.wiring import open_store

    removed = forget(open_store(settings), FeedRegistry(settings.data_dir), args.source)
    print(f"forgot {', '.join(removed)}")
    return 0
