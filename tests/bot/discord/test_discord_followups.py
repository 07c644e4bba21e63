"""Follow-ups the way real Discord delivers them, and conversations that survive a restart.

Without the privileged message-content intent a message that does not mention the bot arrives
with empty content (the double strips it, on the gateway and on REST reads), so follow-ups go
through mentions, pinging replies, /ask in the thread, the "Frage an newsbot" message command
(whose target Discord always sends in full) and DMs.
"""

from __future__ import annotations

import pytest
from doubles.discord_api import EPHEMERAL, DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.service import FakeService, default_text

from rag.answer import Turn

QUESTION = "Was geschah beim Gipfel in Alaska?"
FIRST = default_text(QUESTION, ())


@pytest.fixture(autouse=True)
def no_violations(double: DiscordDouble):
    yield
    assert double.violations == [], "the bot did what Discord rejects"


def shown(double: DiscordDouble, channel_id: int, text: str) -> bool:
    return any(m["content"] == text for m in double.bot_messages(channel_id))


async def open_thread(double: DiscordDouble, user: dict) -> int:
    question = await double.user_message(user, QUESTION, mention_bot=True)
    thread_id = int(question["id"])
    await double.wait_for(lambda: shown(double, thread_id, FIRST), what="the first answer")
    return thread_id


async def test_plain_thread_message_with_the_intent_off_is_answered_through_the_message_command(
        double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    thread_id = await open_thread(double, anna)
    hint = double.bot_messages(thread_id)[0]["content"]
    assert "/ask" in hint and "Apps → Frage an newsbot" in hint and f"<@{double.app_id}>" in hint

    plain = await double.user_message(anna, "Und was heißt das für die Ukraine?", thread_id)
    await double.wait_for(lambda: any("ohne Erwähnung" in m["content"] for m in double.bot_messages(thread_id)),
                          what="the hint that plain messages are unreadable")
    assert len(service.calls) == 1  # the bot did not guess at an empty message

    # Apps → "Frage an newsbot" on that very message: Discord sends its text, the thread's history applies.
    ask = await double.message_command(anna, "Frage an newsbot", int(plain["id"]))
    follow_up = "Und was heißt das für die Ukraine?"
    expected = default_text(follow_up, [Turn(QUESTION, FIRST)])
    await double.wait_for(lambda: any(m["content"] == expected for m in double.answer_messages(ask)),
                          what="the message command's answer")
    assert service.calls[-1] == (follow_up, (Turn(QUESTION, FIRST),))

    # A second plain message gets no second hint.
    await double.user_message(anna, "Noch etwas?", thread_id)
    await double.user_message(anna, "Danke", thread_id, mention_bot=True)
    await double.wait_for(lambda: len(service.calls) == 3, what="the mention after it")
    assert sum("ohne Erwähnung" in m["content"] for m in double.bot_messages(thread_id)) == 1


async def test_slash_ask_in_the_thread_continues_it(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    thread_id = await open_thread(double, anna)
    ask = await double.slash(anna, "ask", thread_id, frage="Und danach?")
    expected = default_text("Und danach?", [Turn(QUESTION, FIRST)])
    await double.wait_for(lambda: any(m["content"] == expected for m in double.answer_messages(ask)),
                          what="the follow-up")


async def test_reply_without_ping_gets_the_hint_and_a_pinging_reply_an_answer(double: DiscordDouble,
                                                                             start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    ask = await double.slash(anna, "ask", frage=QUESTION)
    await double.wait_for(lambda: any(m["content"] == FIRST for m in double.answer_messages(ask)), what="answer")
    await double.user_message(anna, "Wer noch?", reply_to=ask.original_id, ping_reply=False)
    await double.wait_for(lambda: any("ohne Erwähnung" in m["content"]
                                      for m in double.bot_messages(double.channel_id)), what="the hint")
    await double.user_message(anna, "Wer noch?", reply_to=ask.original_id)
    expected = default_text("Wer noch?", [Turn(QUESTION, FIRST)])
    await double.wait_for(lambda: shown(double, double.channel_id, expected), what="the pinging reply's answer")
    assert [q for q, _ in service.calls] == [QUESTION, "Wer noch?"]


async def test_plain_thread_message_with_the_intent_on(double: DiscordDouble, start_bot) -> None:
    double.allow_message_content = True
    service = FakeService()
    await start_bot(service, discord_message_content=True)
    anna = double.make_user("anna")
    thread_id = await open_thread(double, anna)
    assert double.bot_messages(thread_id)[0]["content"] == "ℹ️ Folgefragen: schreib einfach hier im Thread weiter."
    await double.user_message(anna, "Und danach?", thread_id)
    expected = default_text("Und danach?", [Turn(QUESTION, FIRST)])
    await double.wait_for(lambda: shown(double, thread_id, expected), what="the follow-up")
    assert not any("ohne Erwähnung" in m["content"] for m in double.bot_messages(thread_id))


async def test_message_command_on_any_message_asks_it(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna, ben = double.make_user("anna"), double.make_user("ben")
    message = await double.user_message(anna, "Was sagte Selenskyj?")  # no mention: the bot never saw its text
    ask = await double.message_command(ben, "Frage an newsbot", int(message["id"]))
    expected = default_text("Was sagte Selenskyj?", ())
    await double.wait_for(lambda: any(m["content"] == expected for m in double.answer_messages(ask)), what="answer")
    assert ask.response_type == 5

    empty = await double.user_message(anna, "   ")
    refused = await double.message_command(ben, "Frage an newsbot", int(empty["id"]))
    await double.wait_for(lambda: refused.original_id is not None, what="the refusal")
    assert double.messages[refused.original_id]["flags"] & EPHEMERAL
    assert len(service.calls) == 1


async def test_dm_is_answered_without_a_mention(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    dm = double.dm_channel(anna)
    await double.user_message(anna, QUESTION, dm)
    await double.wait_for(lambda: shown(double, dm, FIRST), what="the DM answer")
    await double.user_message(anna, "Und danach?", dm)
    expected = default_text("Und danach?", [Turn(QUESTION, FIRST)])
    await double.wait_for(lambda: shown(double, dm, expected), what="the DM follow-up")
    ask = await double.slash(anna, "ask", dm, frage="Wer noch?")  # commands are allowed in DMs too
    await double.wait_for(lambda: any("Wer noch?" in m["content"] for m in double.answer_messages(ask)),
                          what="/ask in the DM")


# --- restarts ----------------------------------------------------------------------------------


async def test_thread_conversation_survives_a_restart(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    bot = await start_bot(service)
    anna = double.make_user("anna")
    thread_id = await open_thread(double, anna)
    await bot.close()

    restarted = FakeService()
    bot = await start_bot(restarted)
    assert bot.conversations.in_thread(thread_id) is None  # nothing in memory
    await double.user_message(anna, "Und danach?", thread_id, mention_bot=True)
    expected = default_text("Und danach?", [Turn(QUESTION, FIRST)])
    await double.wait_for(lambda: shown(double, thread_id, expected), what="the follow-up after the restart")
    assert restarted.calls == [("Und danach?", (Turn(QUESTION, FIRST),))]

    # And a third turn, now from the cache, carries both earlier ones.
    await double.user_message(anna, "Und dann?", thread_id, mention_bot=True)
    await double.wait_for(lambda: len(restarted.calls) == 2, what="the third turn")
    assert restarted.calls[1][1] == (Turn(QUESTION, FIRST), Turn("Und danach?", expected))


async def test_reply_chain_survives_a_restart(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    bot = await start_bot(service, discord_channels=[double.other_channel_id])  # no threads here: replies
    anna = double.make_user("anna")
    await double.deny(double.other_channel_id, "create_public_threads")
    await double.user_message(anna, QUESTION, double.other_channel_id, mention_bot=True)
    await double.wait_for(lambda: shown(double, double.other_channel_id, FIRST), what="the first answer")
    answer = next(m for m in double.bot_messages(double.other_channel_id) if m["content"] == FIRST)
    await bot.close()

    restarted = FakeService()
    await start_bot(restarted, discord_channels=[double.other_channel_id])
    await double.user_message(anna, "Wer noch?", double.other_channel_id, reply_to=int(answer["id"]))
    expected = default_text("Wer noch?", [Turn(QUESTION, FIRST)])
    await double.wait_for(lambda: shown(double, double.other_channel_id, expected), what="the follow-up")
    assert restarted.calls == [("Wer noch?", (Turn(QUESTION, FIRST),))]


async def test_reset_is_not_undone_by_reading_the_thread_back(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    bot = await start_bot(service)
    anna = double.make_user("anna")
    thread_id = await open_thread(double, anna)
    await bot.close()
    restarted = FakeService()
    await start_bot(restarted)
    reset = await double.slash(anna, "reset", thread_id)
    await double.wait_for(lambda: reset.original_id is not None, what="/reset")
    assert double.messages[reset.original_id]["flags"] & EPHEMERAL
    await double.user_message(anna, "Und danach?", thread_id, mention_bot=True)
    await double.wait_for(lambda: shown(double, thread_id, default_text("Und danach?", ())), what="a fresh answer")
    assert restarted.calls == [("Und danach?", ())]
