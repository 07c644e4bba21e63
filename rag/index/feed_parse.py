"""Web sources, part 1: source ids, dates, and reading RSS 2.0 / Atom feeds (rag/index/feeds.py
is the public surface)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from rag.errors import UserError
from rag.index.web import normalise_url
from rag.safe_text import strip_controls

# A source id: "web-" + a readable slug of host and path + a hash of the whole URL. The slug is
# cut so ids stay short in citations; the hash keeps two long URLs with one prefix apart.
SLUG_CHARS = 60
HASH_CHARS = 8
# Items taken from one feed per refresh: news feeds list 20-100 items newest first; older items
# were taken by earlier refreshes.
DEFAULT_MAX_ITEMS = 50
ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT_NS = "{http://purl.org/rss/1.0/modules/content/}"
_DC = "{http://purl.org/dc/elements/1.1/}"


class FeedError(UserError):
    """A feed or registry problem; the message names the URL or file and the fix."""


# ---- ids and dates -----------------------------------------------------------------------------

def source_id_for(url: str) -> str:
    """A stable, readable id for a web page: web-<host-and-path slug>-<8 hex of the URL's hash>."""
    normal = normalise_url(url)
    parts = urlsplit(normal)
    readable = f"{(parts.hostname or '').removeprefix('www.')}{parts.path}"
    readable = re.sub(r"\.(html?|php|aspx?)$", "", readable)
    slug = re.sub(r"[^a-z0-9]+", "-", readable.lower().replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
                  .replace("ß", "ss")).strip("-")
    if len(slug) > SLUG_CHARS:
        slug = slug[:SLUG_CHARS].rsplit("-", 1)[0] or slug[:SLUG_CHARS]
    digest = hashlib.sha256(normal.encode("utf-8")).hexdigest()[:HASH_CHARS]
    return f"web-{slug}-{digest}"


def parse_date(text: str | None) -> str | None:
    """RFC 822 (RSS pubDate) or ISO 8601 (Atom) as YYYY-MM-DD; None when unreadable."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        found = re.match(r"(\d{4}-\d{2}-\d{2})", text)
        return found.group(1) if found else None


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# ---- feeds -------------------------------------------------------------------------------------

@dataclass
class FeedItem:
    url: str
    title: str = ""
    date: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "title": self.title, "date": self.date}


@dataclass
class Feed:
    url: str
    title: str
    kind: str  # "rss" or "atom"
    items: list[FeedItem] = field(default_factory=list)


def looks_like_feed(body: bytes, content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("application/rss+xml", "application/atom+xml"):
        return True
    if "html" in kind:
        return False
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith(b"<?xml"):
        head = head[head.find(b"?>") + 2:].lstrip()
        while head.startswith(b"<!--") or head.startswith(b"<?"):
            head = head[head.find(b">") + 1:].lstrip()
    return head.startswith((b"<rss", b"<feed", b"<rdf:rdf"))


def parse_feed(body: bytes, url: str) -> Feed:
    """RSS 2.0 or Atom; links resolved against the feed URL. DTDs and entities are refused
    (defusedxml): a feed must not be a way to expand a billion laughs."""
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except DefusedXmlException:
        raise FeedError(f"{url}: the feed declares a DTD or entities, which newsbot refuses to expand") from None
    except Exception as exc:  # xml.etree.ElementTree.ParseError and friends
        raise FeedError(f"{url}: not a valid RSS or Atom feed ({exc})") from None
    if root.tag == "rss" or root.tag.endswith("}rss"):
        channel = root.find("channel")
        if channel is None:
            raise FeedError(f"{url}: RSS without a <channel>")
        feed = Feed(url, _text(channel.find("title")), "rss")
        for item in channel.iter("item"):
            link = _text(item.find("link")) or _guid_link(item)
            if link:
                date = parse_date(_text(item.find("pubDate")) or _text(item.find(f"{_DC}date")))
                feed.items.append(FeedItem(urljoin(url, link), _text(item.find("title")), date))
        return feed
    if root.tag == f"{ATOM}feed":
        feed = Feed(url, _text(root.find(f"{ATOM}title")), "atom")
        for entry in root.iter(f"{ATOM}entry"):
            link = _atom_link(entry)
            if link:
                date = parse_date(_text(entry.find(f"{ATOM}published")) or _text(entry.find(f"{ATOM}updated")))
                feed.items.append(FeedItem(urljoin(url, link), _text(entry.find(f"{ATOM}title")), date))
        return feed
    raise FeedError(f"{url}: XML, but neither RSS 2.0 nor Atom (root element <{root.tag}>)")


def _text(element: Any) -> str:
    return " ".join(strip_controls(element.text or "").split()) if element is not None else ""


def _guid_link(item: Any) -> str:
    guid = item.find("guid")
    if guid is not None and guid.get("isPermaLink", "true").lower() == "true":
        text = _text(guid)
        return text if text.startswith(("http://", "https://")) else ""
    return ""


def _atom_link(entry: Any) -> str:
    fallback = ""
    for link in entry.findall(f"{ATOM}link"):
        rel = link.get("rel", "alternate")
        if rel == "alternate" and link.get("href"):
            return link.get("href")
        fallback = fallback or (link.get("href") if rel not in ("self", "enclosure", "replies") else "")
    return fallback or ""
