"""Permissions: the double grants what a server grants, the bot checks before it posts.

Each missing permission degrades the answer (no thread -> a reply; no embeds -> sources as
text; no history -> no reply reference) and is named in a message; where nothing can be posted
the model does no work and the user learns why by DM.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from doubles.discord_api import DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.service import FakeService, default_text

QUESTION = "Was geschah beim Gipfel in Alaska?"
ANSWER = default_text(QUESTION, ())


@pytest.fixture(autouse=True)
def no_violations(double: DiscordDouble):
    yield
    assert double.violations == [], "the bot did what Discord rejects"


def texts(double: DiscordDouble, channel_id: int) -> list[str]:
    return [m["content"] for m in double.bot_messages(channel_id)]


async def test_double_enforces_permissions_with_discords_codes(double: DiscordDouble) -> None:
    import aiohttp

    headers = {"Authorization": f"Bot {double.token}"}
    user = double.make_user("anna")
    message = await double.user_message(user, "Hallo")
    base = f"{double.api_base}/channels/{double.channel_id}"
    async with aiohttp.ClientSession(headers=headers) as http:
        await double.deny(double.channel_id, "send_messages")
        async with http.post(f"{base}/messages", json={"content": "x"}) as r:
            assert (r.status, (await r.json())["code"]) == (403, 50013)
        await double.deny(double.channel_id, "create_public_threads")
        async with http.post(f"{base}/messages/{message['id']}/threads", json={"name": "x"}) as r:
            assert (r.status, (await r.json())["code"]) == (403, 50013)
        await double.deny(double.channel_id, "read_message_history")
        async with http.get(f"{base}/messages") as r:
            assert r.status == 200 and await r.json() == []  # Discord returns no messages
        async with http.get(f"{base}/messages/{message['id']}") as r:
            assert r.status == 403
        await double.deny(double.channel_id, "view_channel")
        async with http.post(f"{base}/messages", json={"content": "x"}) as r:
            assert (r.status, (await r.json())["code"]) == (403, 50001)
        await double.deny(double.other_channel_id, "embed_links")
        other = f"{double.api_base}/channels/{double.other_channel_id}"
        embed = {"title": "Quellen", "description": "x"}
        async with http.post(f"{other}/messages", json={"content": "x", "embeds": [embed]}) as r:
            assert r.status == 200 and (await r.json())["embeds"] == []  # dropped silently
        async with http.post(f"{other}/messages", json={"embeds": [embed]}) as r:
            assert (r.status, (await r.json())["code"]) == (400, 50006)
    double.violations.clear()  # the 400 above was on purpose


async def test_without_create_public_threads_it_replies_and_says_so(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    await double.deny(double.channel_id, "create_public_threads")
    question = await double.user_message(double.make_user("anna"), QUESTION, mention_bot=True)
    await double.wait_for(lambda: ANSWER in texts(double, double.channel_id), what="the reply")
    assert int(question["id"]) not in double.channels  # no thread
    notice = texts(double, double.channel_id)[0]
    assert "keinen Thread" in notice and "„Öffentliche Threads erstellen“" in notice
    answer = next(m for m in double.bot_messages(double.channel_id) if m["content"] == ANSWER)
    assert answer["message_reference"]["message_id"] == question["id"] and answer["embeds"]


async def test_without_send_messages_in_threads_no_empty_thread_is_left(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService())
    await double.deny(double.channel_id, "send_messages_in_threads")
    question = await double.user_message(double.make_user("anna"), QUESTION, mention_bot=True)
    await double.wait_for(lambda: ANSWER in texts(double, double.channel_id), what="the reply")
    assert int(question["id"]) not in double.channels
    assert "„Nachrichten in Threads senden“" in texts(double, double.channel_id)[0]


async def test_without_embed_links_the_sources_come_as_text(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService())
    await double.deny(double.channel_id, "embed_links")
    question = await double.user_message(double.make_user("anna"), QUESTION, mention_bot=True)
    thread_id = int(question["id"])
    await double.wait_for(lambda: any(t.startswith("-# Quellen als Text") for t in texts(double, thread_id)),
                          what="the sources as text")
    messages = double.bot_messages(thread_id)
    assert all(m["embeds"] == [] for m in messages)
    listing = next(m for m in messages if m["content"].startswith("-# Quellen als Text"))
    assert "„Links einbetten“" in listing["content"]
    assert "[1] Trump schließt sofortige Waffenruhe aus – 2025-08-16" in listing["content"]
    assert listing["components"], "the sources button still opens the full sources"


async def test_without_read_message_history_it_posts_without_a_reply(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService())
    await double.deny(double.channel_id, "read_message_history", "create_public_threads")
    await double.user_message(double.make_user("anna"), QUESTION, mention_bot=True)
    await double.wait_for(lambda: ANSWER in texts(double, double.channel_id), what="the answer")
    notice = texts(double, double.channel_id)[0]
    assert "„Nachrichtenverlauf anzeigen“" in notice and "„Öffentliche Threads erstellen“" in notice
    answer = next(m for m in double.bot_messages(double.channel_id) if m["content"] == ANSWER)
    assert "message_reference" not in answer


@pytest.mark.parametrize(("denied", "named"), [
    (("send_messages", "create_public_threads"), ["„Nachrichten senden“", "„Öffentliche Threads erstellen“"]),
    (("send_messages", "send_messages_in_threads"), ["„Nachrichten senden“", "„Nachrichten in Threads senden“"]),
])
async def test_where_nothing_can_be_posted_the_model_does_no_work(double: DiscordDouble, start_bot,
                                                                  denied: tuple[str, ...], named: list[str]) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    await double.deny(double.channel_id, *denied)
    question = await double.user_message(anna, QUESTION, mention_bot=True)
    dm = double.dm_channel(anna)
    await double.wait_for(lambda: bool(texts(double, dm)), what="the DM saying why")
    assert all(name in texts(double, dm)[0] for name in named)
    assert f"<#{double.channel_id}>" in texts(double, dm)[0]
    assert texts(double, double.channel_id) == [] and service.calls == []
    assert int(question["id"]) not in double.channels  # no (empty) thread


async def test_thread_follow_up_without_send_messages_in_threads(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    question = await double.user_message(anna, QUESTION, mention_bot=True)
    thread_id = int(question["id"])
    await double.wait_for(lambda: ANSWER in texts(double, thread_id), what="the first answer")
    await double.deny(double.channel_id, "send_messages_in_threads")
    double.dms_closed.add(anna["id"])  # and no DM either: only the log knows
    await double.user_message(anna, "Und danach?", thread_id, mention_bot=True)
    await double.user_message(anna, "Noch da?", double.other_channel_id, mention_bot=True)  # a later event
    await double.wait_for(lambda: len(service.calls) == 2, what="the mention elsewhere")
    assert [q for q, _ in service.calls] == [QUESTION, "Noch da?"]


async def test_without_view_channel_no_message_arrives_and_interactions_still_work(double: DiscordDouble,
                                                                                  start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    await double.deny(double.channel_id, "view_channel")
    await double.user_message(anna, "Eins?", mention_bot=True)  # Discord does not deliver it
    ask = await double.slash(anna, "ask", frage="Zwei?")  # interactions need no channel permission
    await double.wait_for(lambda: any(m["content"] == default_text("Zwei?", ()) for m in double.answer_messages(ask)),
                          what="the /ask answer")
    assert [q for q, _ in service.calls] == ["Zwei?"]


@pytest.mark.parametrize("denied", ["view_channel", "send_messages"])
async def test_an_expiring_question_is_cancelled_where_nothing_can_be_posted(double: DiscordDouble, start_bot,
                                                                            denied: str) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    await double.slash(double.make_user("anna"), "ask", double.other_channel_id, frage="Eins?")
    assert await asyncio.to_thread(service.started.wait, 10)
    await double.deny(double.channel_id, denied)
    waiting = await double.slash(double.make_user("ben"), "ask", frage="Zwei?")
    await double.wait_for(lambda: "Platz 1 " in (double.contents(waiting.original_id) or [""])[-1], what="queued")
    double.clock.advance(14.5 * 60)
    name = {"view_channel": "„Kanal ansehen“", "send_messages": "„Nachrichten senden“"}[denied]
    await double.wait_for(lambda: name in double.contents(waiting.original_id)[-1], what="the cancellation")
    gate.set()
    await double.wait_for(lambda: any(m["content"] == default_text("Eins?", ())
                                      for m in double.bot_messages(double.other_channel_id)), what="the first answer")
    assert [q for q, _ in service.calls] == ["Eins?"]
