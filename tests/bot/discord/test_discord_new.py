"""/neu (en /new): the web articles added since a date or the last N, from a real store, through
the Discord double (rag.index.feeds.new_articles does the selecting)."""

from __future__ import annotations

import pytest
from conftest import make_settings
from doubles.discord_api import EPHEMERAL, DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.service import FakeService

from rag.index.store import SourceRecord, Store


@pytest.fixture(autouse=True)
def no_violations(double: DiscordDouble):
    yield
    assert double.violations == [], "the bot did what Discord rejects"


def _record(source_id: str, title: str, added_at: str, *, url: str = "", date: str = "", outlet: str = "",
            duplicate_of: str = "") -> SourceRecord:
    return SourceRecord(source_id=source_id, text="" if duplicate_of else f"{title}\n\nText.", title=title, date=date,
                        date_ord=0, outlet=outlet, path=url or f"/tmp/{source_id}.txt", content_hash=source_id,
                        status="ok", replacing=False, chunks=0 if duplicate_of else 1, url=url, added_at=added_at,
                        duplicate_of=duplicate_of)


@pytest.fixture
def service(tmp_path, embeddings) -> FakeService:
    store = Store(make_settings(tmp_path / "data"), embeddings)
    for record in (
        _record("web-a", "Freiburg beschließt Radwege", "2025-09-01T08:00:00+00:00", url="https://example.org/radwege",
                date="2025-09-01", outlet="Südkurier"),
        _record("web-b", "Mosel tritt über die Ufer", "2025-09-03T07:00:00+00:00", url="https://example.org/mosel(1)",
                date="", outlet="Trierer *Volksfreund*"),
        _record("web-c", "Radverkehr: Freiburg baut aus", "2025-09-04T09:00:00+00:00", url="https://example.net/rad",
                outlet="Rheinpost", duplicate_of="web-a"),  # an agency copy: its original is listed
        _record("web-d", "Bahnstreik beendet", "2025-09-05T12:00:00+00:00", url="https://example.org/bahn",
                date="2025-09-05", outlet="Südkurier"),
        _record("000_seed", "Ein Seed-Artikel", ""),  # a local file: not a web article
    ):
        store.put_source(record)
    fake = FakeService()
    fake.store = store
    return fake


async def test_neu_lists_the_last_n_and_since_a_date_privately(double: DiscordDouble, start_bot, service) -> None:
    await start_bot(service)
    command = next(c for c in double.commands if c["name"] == "neu")
    assert command["name_localizations"]["en-US"] == "new" and command["name_localizations"]["de"] == "neu"
    assert command["description_localizations"]["en-GB"] == "Newly added articles: since a date or the last N"
    options = {o["name"]: o for o in command["options"]}
    assert options["seit"]["name_localizations"]["en-US"] == "since" and not options["seit"]["required"]
    assert options["anzahl"]["name_localizations"]["en-US"] == "count"
    assert (options["anzahl"]["min_value"], options["anzahl"]["max_value"]) == (1, 25)

    last = await double.slash(double.make_user("anna"), "neu", anzahl=2)
    await double.wait_for(lambda: last.original_id is not None, what="/neu anzahl:2")
    shown = double.messages[last.original_id]
    assert shown["flags"] & EPHEMERAL
    (embed,) = shown["embeds"]
    assert embed["title"] == "Neu aufgenommene Artikel"
    assert [f["name"] for f in embed["fields"]] == ["Bahnstreik beendet", "Mosel tritt über die Ufer"]  # newest first
    assert embed["fields"][0]["value"] == "Südkurier · 2025-09-05 · [Artikel](https://example.org/bahn)"
    # undated, Markdown in the outlet escaped, the link's parenthesis kept inside the link
    assert embed["fields"][1]["value"] == "Trierer \\*Volksfreund\\* · undatiert · [Artikel](https://example.org/mosel(1%29)"

    since = await double.slash(double.make_user("anna"), "neu", seit="2025-09-02")
    await double.wait_for(lambda: since.original_id is not None, what="/neu seit:2025-09-02")
    names = [f["name"] for f in double.messages[since.original_id]["embeds"][0]["fields"]]
    assert names == ["Bahnstreik beendet", "Mosel tritt über die Ufer"]  # not the copy, not the older one

    everything = await double.slash(double.make_user("ben"), "neu", locale="en-US")
    await double.wait_for(lambda: everything.original_id is not None, what="/new")
    embed = double.messages[everything.original_id]["embeds"][0]
    assert embed["title"] == "Newly added articles"
    assert [f["name"] for f in embed["fields"]] == ["Bahnstreik beendet", "Mosel tritt über die Ufer",
                                                    "Freiburg beschließt Radwege"]
    assert embed["fields"][1]["value"].endswith("· undated · [article](https://example.org/mosel(1%29)")


async def test_neu_with_nothing_new_or_a_bad_date_says_so(double: DiscordDouble, start_bot, service) -> None:
    await start_bot(service)
    none = await double.slash(double.make_user("anna"), "neu", seit="2030-01-01")
    await double.wait_for(lambda: none.original_id is not None, what="/neu in the future")
    message = double.messages[none.original_id]
    assert message["flags"] & EPHEMERAL and message["content"] == "Seit 2030-01-01 wurden keine Artikel aufgenommen."

    bad = await double.slash(double.make_user("anna"), "neu", seit="gestern")
    await double.wait_for(lambda: bad.original_id is not None, what="/neu with a bad date")
    message = double.messages[bad.original_id]
    assert message["flags"] & EPHEMERAL and "„gestern“ ist kein Datum" in message["content"]
