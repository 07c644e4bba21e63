"""Delivering a job's events to one Discord message: throttled streaming edits, then the answer.

Discord rate-limits message edits, so streamed text is coalesced into at most one edit per
interval (newest text wins, a failed intermediate edit is simply superseded), while the final
answer is retried until it lands: a 429 storm may delay it but must not lose it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import aiohttp
import discord

from rag.answer import Answer
from rag.errors import QuestionError

from . import render
from .queue import Done, Failed, Job, Position, Started, Token

_log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
FINAL_ATTEMPTS = 8
MAX_BACKOFF_S = 30.0


class ReplyTarget(Protocol):
    """One message the bot keeps editing, plus a way to post more messages after it."""

    async def edit(self, content: str, embeds: Sequence[discord.Embed] = ()) -> int: ...

    async def send(self, content: str, embeds: Sequence[discord.Embed] = ()) -> int: ...


class InteractionTarget:
    """The deferred response of a slash command (edited through the interaction webhook)."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self._interaction = interaction

    async def edit(self, content: str, embeds: Sequence[discord.Embed] = ()) -> int:
        message = await self._interaction.edit_original_response(
            content=content, embeds=list(embeds), allowed_mentions=NO_MENTIONS
        )
        return message.id

    async def send(self, content: str, embeds: Sequence[discord.Embed] = ()) -> int:
        message = await self._interaction.followup.send(
            content=content, embeds=list(embeds), allowed_mentions=NO_MENTIONS, wait=True
        )
        return message.id


class MessageTarget:
    """A message the bot posted itself (after a mention), edited through the channel API."""

    def __init__(self, message: discord.Message) -> None:
        self._message = message

    async def edit(self, content: str, embeds: Sequence[discord.Embed] = ()) -> int:
        await self._message.edit(content=content, embeds=list(embeds), allowed_mentions=NO_MENTIONS)
        return self._message.id

    async def send(self, content: str, embeds: Sequence[discord.Embed] = ()) -> int:
        message = await self._message.channel.send(content=content, embeds=list(embeds), allowed_mentions=NO_MENTIONS)
        return message.id


def _transient(exc: Exception) -> bool:
    """Worth another try: rate limits, Discord's server errors, a dropped connection."""
    if isinstance(exc, discord.HTTPException):
        return exc.status == 429 or exc.status >= 500
    return isinstance(exc, (aiohttp.ClientError, OSError))


def _describe(exc: Exception) -> str:
    return f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__


async def with_retries(call: Callable[[], Awaitable[int]], first_delay: float, attempts: int = FINAL_ATTEMPTS) -> int:
    """Retry a Discord call through rate limits and transient errors with exponential backoff.

    discord.py already honours `retry_after` a few times per call; this outlasts longer storms.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            if not _transient(exc) or attempt == attempts:
                raise
            _log.warning("Discord call failed (%s); retrying in %.1f s (attempt %d of %d)",
                         _describe(exc), delay, attempt, attempts)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)
    raise AssertionError("unreachable")


class ThrottledEditor:
    """Streams into one message with at most one edit per `interval`; the newest text wins."""

    def __init__(self, target: ReplyTarget, interval: float) -> None:
        self._target = target
        self._interval = interval
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        self._last = -interval
        self._pending: str | None = None
        self._shown: str | None = None
        self._editing = False
        self._closing = False
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._pump())

    def push(self, content: str) -> None:
        if content != (self._pending if self._pending is not None else self._shown):
            self._pending = content
            self._wake.set()

    async def finish(self, content: str, embeds: Sequence[discord.Embed] = ()) -> int:
        """Stop streaming and put the final content in place, retrying until it lands."""
        await self.stop()
        await asyncio.sleep(max(0.0, self._last + self._interval - self._clock()))
        return await with_retries(lambda: self._target.edit(content, embeds), self._interval)

    async def stop(self) -> None:
        """End streaming; an edit already on its way is let through, never cut off."""
        self._closing = True
        self._wake.set()
        if not self._editing:
            self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(max(0.0, self._last + self._interval - self._clock()))
            self._wake.clear()
            content, self._pending = self._pending, None
            if self._closing:
                return
            if content is None:
                continue
            self._editing = True
            try:
                await self._target.edit(content)
                self._shown = content
            except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:  # the next edit supersedes it
                _log.warning("Skipped a streaming edit (%s)", _describe(exc))
            finally:
                self._editing = False
                self._last = self._clock()


async def deliver(job: Job, target: ReplyTarget, interval: float) -> tuple[Answer | None, list[int]]:
    """Show a job's progress in `target` and then its answer; returns the answer and message ids."""
    editor = ThrottledEditor(target, interval)
    streamed = ""
    try:
        while True:
            event = await job.events.get()
            if isinstance(event, Position):
                editor.push(render.queue_text(event.position))
            elif isinstance(event, Started):
                editor.push(render.WORKING)
            elif isinstance(event, Token):
                streamed += event.text
                editor.push(render.preview(streamed))
            elif isinstance(event, Failed):
                if isinstance(event.error, QuestionError):
                    message = render.truncate(str(event.error), render.MESSAGE_LIMIT) or render.FAILED
                else:
                    _log.error("Answering failed", exc_info=event.error)
                    message = render.FAILED
                return None, [await editor.finish(message)]
            elif isinstance(event, Done):
                parts = render.answer_messages(event.answer)
                ids = [await editor.finish(parts[0].content, parts[0].embeds)]
                for part in parts[1:]:
                    ids.append(await with_retries(lambda p=part: target.send(p.content, p.embeds), interval))
                return event.answer, ids
    finally:
        await editor.stop()
