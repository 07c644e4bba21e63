"""`/ask` end to end with the real small model, against the loopback Discord double."""

from __future__ import annotations

import pytest
from discord.utils import escape_mentions
from doubles.discord_api import DiscordDouble
from doubles.discord_fixtures import double, start_bot  # noqa: F401  (fixtures used by name)

pytestmark = pytest.mark.llm

QUESTION = "Wo trafen sich Trump und Putin?"


async def test_ask_with_the_real_model(double: DiscordDouble, start_bot, small_model_service) -> None:
    bot = await start_bot(small_model_service)  # conftest: rag.wiring.build_service over the seeded store
    ask = await double.slash(double.make_user("anna"), "ask", frage=QUESTION)
    await double.wait_for(lambda: bot.conversations.last_answer(double.channel_id) is not None, timeout=900,
                          what="the model's answer")
    answer = bot.conversations.last_answer(double.channel_id)
    assert answer is not None and not answer.refused, answer.text
    messages = double.answer_messages(ask)
    assert "".join(m["content"] for m in messages) == escape_mentions(answer.text.strip())
    embeds = messages[-1]["embeds"]
    assert embeds and embeds[0]["title"] == "Quellen"
    assert len(embeds[0]["fields"]) == len(answer.sources)
