"""Interactions: expiring tokens, the sources button, localisation, ephemeral refusals.

Time is the double's clock: the bot gets the same clock, so "15 minutes later" is one call.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from doubles.discord_api import EPHEMERAL, INTERACTION_TOKEN_TTL_S, DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.service import FakeService, default_text

from bot.discord import render
from rag.answer import Citation

QUESTION = "Was geschah beim Gipfel in Alaska?"


@pytest.fixture(autouse=True)
def no_violations(double: DiscordDouble):
    yield
    assert double.violations == [], "the bot did what Discord rejects"


def final(double: DiscordDouble, message_id: int | None) -> str:
    return double.contents(message_id)[-1] if double.contents(message_id) else ""


def channel_answer(double: DiscordDouble, channel_id: int, text: str) -> dict | None:
    return next((m for m in double.bot_messages(channel_id) if m["content"] == text and not m.get("webhook_id")), None)


# --- interaction tokens expire after 15 minutes -------------------------------------------------


async def test_a_long_wait_moves_the_answer_to_a_channel_message(double: DiscordDouble, start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    first = await double.slash(double.make_user("anna"), "ask", frage="Eins?")
    assert await asyncio.to_thread(service.started.wait, 10)
    second = await double.slash(double.make_user("ben"), "ask", frage="Zwei?")
    await double.wait_for(lambda: "Platz 1 " in final(double, second.original_id), what="the second queued")

    double.clock.advance(14.5 * 60)  # past the bot's handover point, before the token dies
    for ask in (first, second):
        await double.wait_for(lambda a=ask: "eigenen Nachricht" in final(double, a.original_id),
                              what="the note that the answer moves")
    moved = [m for m in double.bot_messages(double.channel_id) if not m.get("webhook_id")]
    assert len(moved) == 2
    assert all(m["message_reference"]["message_id"] in (str(first.original_id), str(second.original_id))
               for m in moved)  # each replies to its interaction's response
    gate.set()
    for question in ("Eins?", "Zwei?"):
        await double.wait_for(lambda q=question: channel_answer(double, double.channel_id, default_text(q, ()))
                              is not None, what=f"the answer to {question} in the channel")
    assert [q for q, _ in service.calls] == ["Eins?", "Zwei?"]
    assert not [r for r in double.requests if r[2] == 401], "nothing used a dead token"


async def test_an_already_expired_token_still_gets_its_answer_in_the_channel(double: DiscordDouble,
                                                                            start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    await double.slash(double.make_user("anna"), "ask", frage="Eins?")
    assert await asyncio.to_thread(service.started.wait, 10)
    second = await double.slash(double.make_user("ben"), "ask", frage="Zwei?")
    await double.wait_for(lambda: "Platz 1 " in final(double, second.original_id), what="the second queued")

    double.clock.advance(INTERACTION_TOKEN_TTL_S + 60)  # the machine slept: the token is gone already
    gate.set()
    await double.wait_for(lambda: channel_answer(double, double.channel_id, default_text("Zwei?", ())) is not None,
                          what="the answer in the channel")
    assert "Platz 1 " in final(double, second.original_id)  # could not be updated any more (401 50027)


async def test_a_long_wait_where_the_bot_cannot_post_is_cancelled_with_a_message(double: DiscordDouble,
                                                                                start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    first = await double.slash(double.make_user("anna"), "ask", frage="Eins?")
    assert await asyncio.to_thread(service.started.wait, 10)
    await double.deny(double.channel_id, "send_messages")
    second = await double.slash(double.make_user("ben"), "ask", frage="Zwei?")
    await double.wait_for(lambda: "Platz 1 " in final(double, second.original_id), what="the second queued")

    double.clock.advance(14.5 * 60)
    await double.wait_for(lambda: "„Nachrichten senden“" in final(double, second.original_id),
                          what="the cancellation message")
    assert "zu lange gewartet" in final(double, second.original_id)
    gate.set()
    await double.wait_for(lambda: "„Nachrichten senden“" in final(double, first.original_id),
                          what="the running answer given up too")
    await asyncio.sleep(0)  # let the worker notice
    assert [q for q, _ in service.calls] == ["Eins?"], "the model never ran for the undeliverable question"


# --- the sources button -------------------------------------------------------------------------


def cited(question: str) -> list[Citation]:
    title = "Alaska-Gipfel" if "Alaska" in question else "Selenskyj in Washington"
    return [Citation(1, f"src_{len(question)}", title, "2025-08-16", f"Zitat zu {title}.", 0, 10)]


class PerQuestionService(FakeService):
    """Each question cites its own article, so answers' sources differ."""

    def answer(self, question, history=(), on_token=None, cancel=None):  # type: ignore[override]
        self.citations = cited(question)
        return super().answer(question, history, on_token, cancel)


async def test_the_sources_button_of_an_older_answer_shows_that_answers_sources(double: DiscordDouble,
                                                                              start_bot) -> None:
    bot = await start_bot(PerQuestionService())
    anna, ben = double.make_user("anna"), double.make_user("ben")
    older = await double.slash(anna, "ask", frage="Was war in Alaska?")
    await double.wait_for(lambda: bool(double.messages.get(older.original_id or 0, {}).get("components")),
                          what="the first answer with its button")
    newer = await double.slash(ben, "ask", frage="Was sagte Selenskyj?")
    await double.wait_for(lambda: bool(double.messages.get(newer.original_id or 0, {}).get("components")),
                          what="the second answer")
    button = double.messages[older.original_id]["components"][0]["components"][0]
    assert button["label"] == "Quellen" and button["custom_id"] == f"newsbot:sources:{older.id}"

    click = await double.click(ben, older.original_id)
    await double.wait_for(lambda: click.original_id is not None, what="the sources")
    shown = double.messages[click.original_id]
    assert shown["flags"] & EPHEMERAL
    assert [e["title"] for e in shown["embeds"]] == ["Alaska-Gipfel"]

    # After a restart the button still works, from what the answer message shows.
    await bot.close()
    await start_bot(PerQuestionService())
    again = await double.click(anna, older.original_id)
    await double.wait_for(lambda: again.original_id is not None, what="the sources after a restart")
    restored = double.messages[again.original_id]
    assert restored["flags"] & EPHEMERAL
    assert [e["title"] for e in restored["embeds"]] == ["[1] Alaska-Gipfel"]
    assert "Zitat zu Alaska-Gipfel." in restored["embeds"][0]["description"]


async def test_quellen_prefers_the_users_own_last_answer(double: DiscordDouble, start_bot) -> None:
    await start_bot(PerQuestionService())
    anna, ben = double.make_user("anna"), double.make_user("ben")
    mine = await double.slash(anna, "ask", frage="Was war in Alaska?")
    await double.wait_for(lambda: bool(double.messages.get(mine.original_id or 0, {}).get("components")), what="1")
    theirs = await double.slash(ben, "ask", frage="Was sagte Selenskyj?")
    await double.wait_for(lambda: bool(double.messages.get(theirs.original_id or 0, {}).get("components")), what="2")
    sources = await double.slash(anna, "quellen")
    await double.wait_for(lambda: sources.original_id is not None, what="/quellen")
    assert [e["title"] for e in double.messages[sources.original_id]["embeds"]] == ["Alaska-Gipfel"]


# --- two languages ----------------------------------------------------------------------------------


async def test_commands_are_localised_in_german_and_english(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService())
    commands = {c["name"]: c for c in double.commands}
    ask = commands["ask"]
    assert ask["name_localizations"]["de"] == "frage"
    assert ask["name_localizations"]["en-US"] == ask["name_localizations"]["en-GB"] == "ask"
    assert ask["description_localizations"]["en-US"] == "Ask a question about the news articles"
    assert ask["description_localizations"]["de"] == "Stell eine Frage zu den Nachrichtenartikeln"
    (option,) = ask["options"]
    assert option["name"] == "frage" and option["name_localizations"]["en-US"] == "question"
    assert option["max_length"] == 2000 and option["required"]
    assert commands["quellen"]["name_localizations"]["en-GB"] == "sources"
    assert commands["reset"]["name_localizations"]["de"] == "zurücksetzen"
    assert commands["Frage an newsbot"]["type"] == 3
    assert commands["Frage an newsbot"]["name_localizations"]["en-US"] == "Ask newsbot"
    for command in commands.values():
        assert command["default_member_permissions"] == str(1 << 11)  # Send Messages
        assert sorted(command["contexts"]) == [0, 1]  # guilds and DMs with the bot
        assert command["integration_types"] == [0]


async def test_ui_strings_follow_the_users_locale(double: DiscordDouble, start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    await double.slash(double.make_user("anna"), "ask", frage="Eins?")
    assert await asyncio.to_thread(service.started.wait, 10)
    english = await double.slash(double.make_user("ben"), "ask", frage="Two?", locale="en-US")
    await double.wait_for(lambda: "place 1 " in final(double, english.original_id), what="the English queue text")
    gate.set()
    await double.wait_for(lambda: bool(double.messages[english.original_id].get("components")), what="the answer")
    message = double.messages[english.original_id]
    assert message["embeds"][0]["title"] == "Sources"
    assert message["components"][0]["components"][0]["label"] == "Sources"
    busy = await double.slash(double.make_user("carla"), "quellen", double.other_channel_id, locale="en-GB")
    await double.wait_for(lambda: busy.original_id is not None, what="/quellen in English")
    assert final(double, busy.original_id) == "There is no answer with sources here yet. Ask a question with `/ask` first."


async def test_busy_and_cooldown_messages_are_ephemeral_and_localised(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService(), discord_cooldown_s=600)
    anna = double.make_user("anna")
    first = await double.slash(anna, "ask", frage="Eins?", locale="en-US")
    await double.wait_for(lambda: final(double, first.original_id) == default_text("Eins?", ()), what="answer")
    again = await double.slash(anna, "ask", frage="Zwei?", locale="en-US")
    await double.wait_for(lambda: again.original_id is not None, what="the cooldown")
    assert double.messages[again.original_id]["flags"] & EPHEMERAL
    assert final(double, again.original_id).startswith("Please wait ")
    assert render.cooldown_text(3.2) == "Bitte warte noch 4 s bis zur nächsten Frage."


async def test_the_question_length_is_enforced_by_discord(double: DiscordDouble, start_bot) -> None:
    await start_bot(FakeService(), max_question_chars=300)
    (option,) = next(c for c in double.commands if c["name"] == "ask")["options"]
    assert option["max_length"] == 300
    with pytest.raises(AssertionError, match="refuses longer input"):
        await double.slash(double.make_user("anna"), "ask", frage="x" * 301)
