"""The Discord bot end to end: the real discord.py client against the loopback double.

A fake answer service keeps these fast and deterministic; waits are on events the double
sees, never on wall-clock speed. The fixture fails a test whose bot did anything Discord
would reject (over-long content, bad embeds, late acknowledgements, pings, too-fast edits).
"""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from doubles.discord_api import EPHEMERAL, DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)
from doubles.service import FakeService, default_text

from bot.discord import render
from rag.answer import Turn
from rag.errors import QuestionError

QUESTION = "Was geschah beim Gipfel in Alaska?"


def final(double: DiscordDouble, message_id: int | None) -> str:
    return double.contents(message_id)[-1] if double.contents(message_id) else ""


def answered(double: DiscordDouble, interaction, text: str) -> bool:
    return any(text in m["content"] for m in double.answer_messages(interaction))


@pytest.fixture(autouse=True)
def no_violations(double: DiscordDouble):
    yield
    assert double.violations == [], "the bot did what Discord rejects"


async def test_ask_streams_then_answers_with_source_embed(double: DiscordDouble, start_bot) -> None:
    service = FakeService(token_delay_s=0.06)
    await start_bot(service)
    assert {c["name"] for c in double.commands} == {"ask", "quellen", "reset", "neu", "Frage an newsbot"}
    assert [o["name"] for o in next(c for c in double.commands if c["name"] == "ask")["options"]] == ["frage"]

    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    expected = default_text(QUESTION, ())
    await double.wait_for(lambda: final(double, ask.original_id) == expected, what="the answer")

    assert ask.response_type == 5  # deferred with "thinking"
    shown = double.contents(ask.original_id)
    assert any(c.endswith("▌") for c in shown), "the answer streamed into the message"
    message = double.messages[ask.original_id]
    (embed,) = message["embeds"]
    assert embed["title"] == "Quellen"
    (field,) = embed["fields"]
    assert field["name"] == "[1] Trump schließt sofortige Waffenruhe aus"
    assert "2025-08-16" in field["value"]
    assert "\\*\\*greifbare\\*\\*" in field["value"] and "@\u200beveryone" in field["value"]  # escaped quote
    assert service.calls == [(QUESTION, ())]
    assert all(name.startswith("newsbot-model") for name in service.threads)

    sources = await double.slash(double.make_user("ben"), "quellen")
    await double.wait_for(lambda: sources.original_id is not None, what="/quellen")
    shown = double.messages[sources.original_id]
    assert shown["flags"] & EPHEMERAL
    assert shown["embeds"][0]["title"] == "Trump schließt sofortige Waffenruhe aus"
    assert "ohne \\*\\*greifbare\\*\\* Ergebnisse" in shown["embeds"][0]["description"]

    reset = await double.slash(double.make_user("ben"), "reset")
    await double.wait_for(lambda: reset.original_id is not None, what="/reset")
    assert final(double, reset.original_id) == render.RESET
    again = await double.slash(double.make_user("ben"), "quellen")
    await double.wait_for(lambda: again.original_id is not None, what="/quellen after /reset")
    assert final(double, again.original_id) == render.NO_SOURCES


async def test_long_answer_is_split_at_sentences_with_nothing_lost(double: DiscordDouble, start_bot) -> None:
    text = " ".join(f"Satz Nummer {i} erklärt ein weiteres Detail des Gipfels [1]." for i in range(120))
    assert len(text) > 2 * render.MESSAGE_LIMIT
    await start_bot(FakeService(text=lambda q, h: text))
    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    await double.wait_for(lambda: any(m["embeds"] for m in double.answer_messages(ask)), what="the last part")
    messages = double.answer_messages(ask)
    assert len(messages) == 4
    assert "".join(m["content"] for m in messages) == text
    assert all(len(m["content"]) <= 2000 and m["content"].rstrip().endswith("[1].") for m in messages)
    assert [bool(m["embeds"]) for m in messages] == [False, False, False, True]


async def test_mention_opens_thread_and_follow_ups_continue_it(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    bot = await start_bot(service)
    anna = double.make_user("anna")
    question = await double.user_message(anna, QUESTION, mention_bot=True)
    thread_id = int(question["id"])
    first = default_text(QUESTION, ())
    await double.wait_for(lambda: any(m["content"] == first for m in double.bot_messages(thread_id)), what="answer")
    thread = double.channels[thread_id]
    assert thread["parent_id"] == str(double.channel_id) and thread["name"] == QUESTION
    assert double.bot_messages(thread_id)[-1]["embeds"][0]["title"] == "Quellen"

    # The thread's first message says how to ask a follow-up.
    hint = double.bot_messages(thread_id)[0]["content"]
    assert hint.startswith("ℹ️ Folgefragen") and "Frage an newsbot" in hint

    # Without the message-content intent a plain message arrives empty: the bot says once why it
    # cannot answer that (and does not guess).
    await double.user_message(anna, "Und was heißt das für die Ukraine?", thread_id)
    await double.wait_for(lambda: any(m["content"].startswith("ℹ️ Nachrichten ohne Erwähnung")
                                      for m in double.bot_messages(thread_id)), what="the unreadable hint")
    await double.user_message(anna, "Und danach?", thread_id, mention_bot=True)
    second = default_text("Und danach?", [Turn(QUESTION, first)])
    await double.wait_for(lambda: any(m["content"] == second for m in double.bot_messages(thread_id)), what="follow-up")
    assert service.calls == [(QUESTION, ()), ("Und danach?", (Turn(QUESTION, first),))]
    assert bot.conversations.in_thread(thread_id) is not None

    # /quellen inside the thread shows this thread's last answer.
    sources = await double.slash(anna, "quellen", thread_id)
    await double.wait_for(lambda: sources.original_id is not None, what="/quellen")
    assert double.messages[sources.original_id]["embeds"]


async def test_reply_to_an_answer_is_a_follow_up(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    anna = double.make_user("anna")
    ask = await double.slash(anna, "ask", frage=QUESTION)
    first = default_text(QUESTION, ())
    await double.wait_for(lambda: final(double, ask.original_id) == first, what="the answer")

    await double.user_message(anna, "Ohne Ping geht es nicht", reply_to=ask.original_id, ping_reply=False)
    reply = await double.user_message(anna, "Wer war noch dabei?", reply_to=ask.original_id)
    second = default_text("Wer war noch dabei?", [Turn(QUESTION, first)])
    await double.wait_for(lambda: any(m["content"] == second for m in double.bot_messages(double.channel_id)),
                          what="the follow-up")
    answer = next(m for m in double.bot_messages(double.channel_id) if m["content"] == second)
    assert answer["message_reference"]["message_id"] == reply["id"]
    assert service.calls == [(QUESTION, ()), ("Wer war noch dabei?", (Turn(QUESTION, first),))]


async def test_plain_thread_messages_continue_with_the_content_intent(double: DiscordDouble, start_bot) -> None:
    double.allow_message_content = True
    service = FakeService()
    await start_bot(service, discord_message_content=True)
    anna = double.make_user("anna")
    question = await double.user_message(anna, QUESTION, mention_bot=True)
    thread_id = int(question["id"])
    first = default_text(QUESTION, ())
    await double.wait_for(lambda: any(m["content"] == first for m in double.bot_messages(thread_id)), what="answer")
    await double.user_message(anna, "Und danach?", thread_id)
    second = default_text("Und danach?", [Turn(QUESTION, first)])
    await double.wait_for(lambda: any(m["content"] == second for m in double.bot_messages(thread_id)), what="follow-up")


async def test_ten_concurrent_asks_are_answered_in_order_with_queue_positions(double: DiscordDouble, start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    questions = [f"Frage {i}: Was sagte Selenskyj?" for i in range(10)]
    asks = await asyncio.gather(*(double.slash(double.make_user(f"user{i}"), "ask", frage=q)
                                  for i, q in enumerate(questions)))

    # The first is being answered; the others show their place while they wait.
    for i, ask in enumerate(asks[1:], start=1):
        await double.wait_for(lambda ask=ask, i=i: f"Platz {i} " in final(double, ask.original_id),
                              what=f"queue position {i}")
    gate.set()
    for ask, question in zip(asks, questions):
        await double.wait_for(lambda ask=ask, q=question: final(double, ask.original_id) == default_text(q, ()),
                              what=f"the answer to {question!r}")
    assert [q for q, _ in service.calls] == questions
    assert all(ask.response_type == 5 for ask in asks)
    # Positions only ever counted down.
    for ask in asks[1:]:
        places = [int(c.split("Platz ")[1].split()[0]) for c in double.contents(ask.original_id) if "Platz " in c]
        assert places == sorted(places, reverse=True)


async def test_answer_survives_a_429_storm(double: DiscordDouble, start_bot) -> None:
    service = FakeService(token_delay_s=0.05)
    await start_bot(service)
    double.storm(15)  # more than discord.py retries on its own for one call
    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    expected = default_text(QUESTION, ())
    await double.wait_for(lambda: final(double, ask.original_id) == expected, what="the final answer")
    assert double.rate_limited >= 15
    assert double.messages[ask.original_id]["embeds"][0]["title"] == "Quellen"


async def test_gateway_drop_and_resume_keeps_questions(double: DiscordDouble, start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    anna, ben = double.make_user("anna"), double.make_user("ben")
    ask = await double.slash(anna, "ask", frage=QUESTION)
    assert await asyncio.to_thread(service.started.wait, 10)

    await double.drop_gateway(hold=True)
    missed = await double.user_message(ben, "Was sagte Putin?", mention_bot=True)  # sent while disconnected
    gate.set()  # the answer in flight completes over REST while the gateway is down
    await double.wait_for(lambda: final(double, ask.original_id) == default_text(QUESTION, ()), what="answer")
    assert not double.connected

    double.release_gateway()
    await double.wait_for(lambda: double.resumes == 1, what="RESUME")
    thread_id = int(missed["id"])
    expected = default_text("Was sagte Putin?", ())
    await double.wait_for(lambda: any(m["content"] == expected for m in double.bot_messages(thread_id)),
                          what="the question missed while disconnected")
    assert (double.identifies, double.resumes) == (1, 1)
    assert [q for q, _ in service.calls] == [QUESTION, "Was sagte Putin?"]


async def test_event_loop_stays_free_while_the_model_works(double: DiscordDouble, start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service)
    first = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    assert await asyncio.to_thread(service.started.wait, 10)
    beats = len(double.heartbeats)
    second = await double.slash(double.make_user("ben"), "ask", frage="Was sagte Putin?")
    await double.wait_for(lambda: "Platz 1 " in final(double, second.original_id), what="the second /ask queued")
    await double.wait_for(lambda: len(double.heartbeats) >= beats + 2, what="heartbeats while the model works")
    gate.set()
    await double.wait_for(lambda: final(double, second.original_id) == default_text("Was sagte Putin?", ()),
                          what="both answers")
    assert final(double, first.original_id) == default_text(QUESTION, ())


async def test_busy_message_when_the_queue_is_full(double: DiscordDouble, start_bot) -> None:
    gate = threading.Event()
    service = FakeService(gate=gate)
    await start_bot(service, discord_queue_size=1)
    running = await double.slash(double.make_user("anna"), "ask", frage="Eins?")
    assert await asyncio.to_thread(service.started.wait, 10)
    waiting = await double.slash(double.make_user("ben"), "ask", frage="Zwei?")
    await double.wait_for(lambda: "Platz 1 " in final(double, waiting.original_id), what="second queued")
    busy = await double.slash(double.make_user("carla"), "ask", frage="Drei?")
    await double.wait_for(lambda: busy.original_id is not None, what="the busy reply")
    assert busy.response_type == 4 and double.messages[busy.original_id]["flags"] & EPHEMERAL
    assert final(double, busy.original_id) == render.BUSY
    gate.set()
    await double.wait_for(lambda: final(double, waiting.original_id) == default_text("Zwei?", ()), what="answers")
    # the first answer's last edit waits out its edit interval; the second's may land before it
    await double.wait_for(lambda: final(double, running.original_id) == default_text("Eins?", ()), what="the first answer")
    assert [q for q, _ in service.calls] == ["Eins?", "Zwei?"]


async def test_per_user_cooldown(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service, discord_cooldown_s=600)
    anna, ben = double.make_user("anna"), double.make_user("ben")
    first = await double.slash(anna, "ask", frage="Eins?")
    await double.wait_for(lambda: final(double, first.original_id) == default_text("Eins?", ()), what="answer")
    again = await double.slash(anna, "ask", frage="Zwei?")
    await double.wait_for(lambda: again.original_id is not None, what="the cooldown reply")
    assert again.response_type == 4 and double.messages[again.original_id]["flags"] & EPHEMERAL
    assert final(double, again.original_id).startswith("Bitte warte noch ")
    mention = await double.user_message(anna, "Drei?", mention_bot=True)
    await double.wait_for(lambda: any("Bitte warte noch" in m["content"] for m in double.bot_messages(double.channel_id)),
                          what="the cooldown reply to a mention")
    assert int(mention["id"]) not in double.channels  # no thread for a refused question
    other = await double.slash(ben, "ask", frage="Vier?")
    await double.wait_for(lambda: final(double, other.original_id) == default_text("Vier?", ()), what="ben's answer")
    assert [q for q, _ in service.calls] == ["Eins?", "Vier?"]


async def test_allow_lists_of_guilds_and_channels(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service, discord_guilds=[double.guild_id], discord_channels=[double.channel_id])
    # With a guild allow-list the commands are registered in those guilds only.
    assert double.commands == [] and set(double.guild_commands) == {double.guild_id}
    assert double.registered(double.other_guild_id) == []
    anna = double.make_user("anna")
    refused = await double.slash(anna, "ask", double.other_channel_id, frage="Eins?")
    await double.user_message(anna, "Drei?", double.other_channel_id, mention_bot=True)
    await double.wait_for(lambda: refused.original_id is not None, what="the refusal")
    assert final(double, refused.original_id) == render.NOT_ALLOWED
    assert double.messages[refused.original_id]["flags"] & EPHEMERAL

    question = await double.user_message(anna, "Vier?", mention_bot=True)
    thread_id = int(question["id"])
    await double.wait_for(lambda: any(m["content"] == default_text("Vier?", ()) for m in double.bot_messages(thread_id)),
                          what="the answer in the allowed channel")
    in_thread = await double.slash(anna, "ask", thread_id, frage="Fünf?")  # a thread counts as its parent
    await double.wait_for(lambda: "Fünf?" in final(double, in_thread.original_id), what="the answer in its thread")
    assert double.bot_messages(double.other_channel_id) == []
    assert [q for q, _ in service.calls] == ["Vier?", "Fünf?"]


@pytest.mark.parametrize(("error", "shown"), [
    (QuestionError("Die Frage ist zu lang (höchstens 2000 Zeichen)."), "Die Frage ist zu lang (höchstens 2000 Zeichen)."),
    (RuntimeError("model exploded at /secret/path"), render.FAILED),
])
async def test_errors_become_a_polite_message(double: DiscordDouble, start_bot, error: Exception, shown: str) -> None:
    await start_bot(FakeService(error=error))
    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    # Errors are private: the public "thinking" response is removed, an ephemeral message explains.
    await double.wait_for(lambda: any(final(double, i) == shown for i in ask.followup_ids), what="the error message")
    (error_message,) = [double.messages[i] for i in ask.followup_ids]
    assert error_message["flags"] & EPHEMERAL
    assert ask.original_id not in double.messages


async def test_empty_mention_gets_help(double: DiscordDouble, start_bot) -> None:
    service = FakeService()
    await start_bot(service)
    await double.user_message(double.make_user("anna"), "", mention_bot=True)
    await double.wait_for(lambda: any("Frag mich etwas" in m["content"] for m in double.bot_messages(double.channel_id)),
                          what="help")
    assert service.calls == []


async def test_the_token_never_reaches_the_logs(double: DiscordDouble, start_bot, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await start_bot(FakeService())
    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    await double.wait_for(lambda: final(double, ask.original_id) == default_text(QUESTION, ()), what="the answer")
    await double.drop_gateway()  # RESUME sends the token again
    await double.wait_for(lambda: double.resumes == 1, what="RESUME")
    assert "Shard ID None has sent the RESUME payload" in caplog.text  # discord.py's debug log is on
    assert double.token not in caplog.text
