"""`newsbot bench --discord`: from a `/ask` to the first edit that shows answer text.

The bot's real discord.py client runs against the loopback Discord double
(`tests/doubles/discord_api.py`: REST and gateway over real sockets on 127.0.0.1, with Discord's
rate limits), with the bench's own answer service. What is timed is what a Discord user waits for:
from the moment the interaction is dispatched to the first version of the answer message that
shows answer text (not the deferred "thinking" state or a status line). The double lives in the repository's tests,
so this row needs a checkout, like `--chat`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

from rag.errors import UserError
from rag.quality.wait import summarize
from rag.settings import PROJECT_ROOT, Settings

# How often the double's record of the answer message is polled (seconds).
POLL_S = 0.01
# Longest wait for one answer before the row is recorded without a time.
ANSWER_TIMEOUT_S = 300.0
# A version shows the answer when its first characters are those of the final text.
FINAL_PREFIX = 12


def discord_waits(service: Any, questions: list[dict[str, Any]], per_path: int = 3) -> dict[str, Any]:
    """German and English `/ask` through the bot against the double: rows and per-path median/p95."""
    tests = str(PROJECT_ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    try:
        from doubles.discord_api import DiscordDouble
    except ImportError as exc:
        raise UserError(f"`bench --discord` needs the Discord double of a repository checkout ({tests}): {exc}") from None
    german = [q["question"] for q in questions if q.get("lang", "de") == "de" and q.get("expect")][:per_path]
    english = [q["question"] for q in questions if q.get("lang") == "en"][:per_path]
    paths = [("discord de", q) for q in german] + [("discord en", q) for q in english]
    return asyncio.run(_run(DiscordDouble, service, paths))


async def _run(double_class, service: Any, paths: list[tuple[str, str]]) -> dict[str, Any]:
    from bot.discord.client import NewsBot
    from bot.discord.endpoints import discord_api

    double = await double_class().start()  # Discord's own limits: 5 requests per 5 s per route
    try:
        settings = Settings(_env_file=None, discord_token=double.token, discord_api_base=double.api_base,
                            discord_cooldown_s=0.0)  # type: ignore[call-arg]
        with discord_api(settings.discord_api_base, settings.discord_gateway_url):
            bot = NewsBot(settings, lambda: service, guild_ready_timeout=0.05, clock=double.clock)
            task = asyncio.create_task(bot.start(double.token))
            try:
                await asyncio.wait_for(bot.wait_until_ready(), 60)
                user = double.make_user("bench")
                rows = [{"path": path, **await _time_one(double, bot, user, question)} for path, question in paths]
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                    await asyncio.wait_for(task, 10)
    finally:
        await double.close()
    return {"rows": rows, "paths": summarize(rows)}


async def _time_one(double, bot, user: dict[str, Any], question: str) -> dict[str, Any]:
    """Seconds to the first version of the answer message that begins as its final text does (the
    status lines before it, "🔎 Ich suche …", are not the answer) and to the finished answer."""
    before = bot.conversations.last_answer(double.channel_id)
    started = time.perf_counter()
    interaction = await double.slash(user, "ask", frage=question)
    seen: list[tuple[float, str]] = []  # (seconds, content) of each new version of the first answer message
    while time.perf_counter() - started < ANSWER_TIMEOUT_S:
        messages = double.answer_messages(interaction)
        versions = double.contents(int(messages[0]["id"])) if messages else []
        seen += [(time.perf_counter() - started, content) for content in versions[len(seen):]]
        done = bot.conversations.last_answer(double.channel_id)
        if done is not None and done is not before and seen:
            final = seen[-1][1].strip()[:FINAL_PREFIX]
            first = next(t for t, content in seen if content.strip()[:FINAL_PREFIX] == final)
            return {"question": question, "first_char_s": round(first, 3), "done_s": round(time.perf_counter() - started, 3),
                    "shown": " ".join(done.text.split())[:120]}
        await asyncio.sleep(POLL_S)
    return {"question": question, "first_char_s": None, "done_s": None, "shown": ""}
