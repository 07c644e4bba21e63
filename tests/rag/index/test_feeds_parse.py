"""Feed parsing, source ids and the feed registry (rag/index/feeds.py)."""

from __future__ import annotations

import pytest
from doubles.feeds_pages import PUB_HOCHWASSER, PUB_RADWEGE, atom, rss

from rag.index.feeds import FeedError, FeedRegistry, looks_like_feed, parse_date, parse_feed, source_id_for

ITEMS = [("Radwege für Freiburg", "/freiburg/radwege.html", PUB_RADWEGE),
         ("Hochwasser an der Mosel", "https://example.org/mosel?id=7", PUB_HOCHWASSER)]


def test_rss_items_with_links_resolved_and_dates():
    body = rss("Nachrichten Süd", ITEMS).encode()
    assert looks_like_feed(body, "application/xml")
    feed = parse_feed(body, "http://news.example/feed.xml")
    assert (feed.kind, feed.title) == ("rss", "Nachrichten Süd")
    assert [i.url for i in feed.items] == ["http://news.example/freiburg/radwege.html", "https://example.org/mosel?id=7"]
    assert [i.date for i in feed.items] == ["2025-09-02", "2025-09-03"]
    assert feed.items[0].title == "Radwege für Freiburg"


def test_atom_entries():
    body = atom("Atom-Nachrichten", ITEMS).encode()
    assert looks_like_feed(body, "text/xml")
    feed = parse_feed(body, "http://news.example/atom")
    assert feed.kind == "atom" and [i.date for i in feed.items] == ["2025-09-02", "2025-09-03"]
    assert feed.items[0].url == "http://news.example/freiburg/radwege.html"


def test_html_is_no_feed_and_bad_xml_is_one_message():
    assert not looks_like_feed(b"<!DOCTYPE html><html><body>x</body></html>", "text/html; charset=utf-8")
    with pytest.raises(FeedError, match=r"^http://x/feed: not a valid RSS or Atom feed"):
        parse_feed(b"<rss><channel><item>", "http://x/feed")
    with pytest.raises(FeedError, match="neither RSS 2.0 nor Atom"):
        parse_feed(b"<?xml version='1.0'?><opml/>", "http://x/feed")


def test_entity_expansion_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            b"<rss><channel><title>&b;</title></channel></rss>")
    with pytest.raises(FeedError, match="DTD or entities"):
        parse_feed(bomb, "http://x/feed")


def test_dates():
    assert parse_date("Tue, 02 Sep 2025 19:30:00 +0000") == "2025-09-02"
    assert parse_date("2025-09-03T07:15:00Z") == "2025-09-03"
    assert parse_date("gestern") is None and parse_date("") is None


def test_source_ids_are_stable_readable_and_distinct():
    a = source_id_for("https://www.Tagesschau.de/inland/radwege-freiburg-100.html#kommentare")
    assert a == source_id_for("https://www.tagesschau.de/inland/radwege-freiburg-100.html")
    assert a.startswith("web-tagesschau-de-inland-radwege-freiburg-100-") and len(a.rsplit("-", 1)[1]) == 8
    assert source_id_for("https://x.de/a?id=1") != source_id_for("https://x.de/a?id=2")
    long = source_id_for("https://x.de/" + "sehr-langer-pfad-" * 20)
    assert len(long) <= 4 + 60 + 1 + 8


def test_registry_persists_feeds_and_forgotten_urls(tmp_path):
    registry = FeedRegistry(tmp_path)
    assert registry.add("HTTP://News.Example/feed.xml") is True
    assert registry.add("http://news.example/feed.xml") is False
    registry.forget(["http://news.example/a"])
    again = FeedRegistry(tmp_path)
    assert list(again.feeds()) == ["http://news.example/feed.xml"]
    assert again.forgotten() == {"http://news.example/a"}
    again.unforget("http://news.example/a")
    assert again.remove("http://news.example/feed.xml") and not FeedRegistry(tmp_path).feeds()
    assert FeedRegistry(tmp_path).forgotten() == set()


def test_a_corrupt_registry_names_the_file(tmp_path):
    (tmp_path / "feeds.json").write_text("{kaputt")
    with pytest.raises(FeedError, match="feeds.json: cannot read the feed list"):
        FeedRegistry(tmp_path).feeds()
