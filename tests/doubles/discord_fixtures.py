"""Fixtures for the Discord tests: the loopback double and a bot connected to it.

The bot shares the double's clock, so tests can skip ahead (interaction tokens, the queue
cadence) without waiting. Kept out of conftest.py (which the other suites share); Discord
test modules import them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.discord.client import NewsBot
from bot.discord.endpoints import discord_api
from doubles.discord_api import DiscordDouble
from rag.settings import Settings

StartBot = Callable[..., Awaitable[NewsBot]]


def bot_settings(double: DiscordDouble, **overrides: object) -> Settings:
    """Settings for a bot talking to the double; nothing is read from .env."""
    values: dict[str, object] = dict(
        discord_token=double.token, discord_api_base=double.api_base, discord_edit_interval_s=0.2,
        discord_cooldown_s=0.0, discord_queue_size=20, history_turns=4, discord_queue_edit_interval_s=0.05,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def double() -> AsyncIterator[DiscordDouble]:
    # Edits closer than 0.15 s get a 429 (and count as violations); the bot edits every 0.2 s.
    # Rate-limit buckets run five times faster than Discord's 5 requests per 5 s.
    double = await DiscordDouble(min_edit_interval_s=0.15, bucket_limit=5, bucket_window_s=1.0).start()
    yield double
    await double.close()


@pytest.fixture
async def start_bot(double: DiscordDouble) -> AsyncIterator[StartBot]:
    """Start the real discord.py client against the double; stopped and checked afterwards."""
    running: list[tuple[NewsBot, asyncio.Task[None]]] = []
    with contextlib.ExitStack() as stack:

        async def start(service: object, **overrides: object) -> NewsBot:
            settings = bot_settings(double, **overrides)
            stack.enter_context(discord_api(settings.discord_api_base, settings.discord_gateway_url))
            bot = NewsBot(settings, lambda: service, guild_ready_timeout=0.05, clock=double.clock)
            task = asyncio.create_task(bot.start(double.token))
            running.append((bot, task))
            ready = asyncio.create_task(bot.wait_until_ready())
            done, _ = await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
            if ready not in done:
                ready.cancel()
                if task.done():
                    task.result()  # raises what went wrong
                raise AssertionError("the bot did not become ready")
            return bot

        yield start
        for bot, task in running:
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
