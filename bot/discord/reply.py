"""Delivering a job's events to one Discord message: throttled streaming edits, then the answer.

Discord rate-limits message edits, so streamed text is coalesced into at most one edit per
interval (newest text wins, a failed intermediate edit is simply superseded), queue positions
share one cadence across all messages, and the final answer is retried until it lands: a 429
storm may delay it but must not lose it.

An interaction's response can only be edited for 15 minutes. Its target names a handover time
(on an injectable clock); when the job is still going then, the answer moves to a normal
message, or the job is given up when nothing can be posted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import discord

from rag.answer import Answer
from rag.errors import QuestionError

from . import render
from .i18n import Lang
from .queue import Done, Event, Failed, Job, Position, Started, Token

_log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
FINAL_ATTEMPTS = 8
MAX_BACKOFF_S = 30.0
INTERACTION_TTL_S = 15 * 60  # Discord's lifetime of an interaction token
HANDOVER_MARGIN_S = 60.0  # move an answer to a normal message this long before the token dies

View = discord.ui.View | None


class Clock(Protocol):
    """Time for deadlines that tests can skip ahead (the Discord double's clock)."""

    def now(self) -> float: ...

    async def sleep_until(self, when: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - self.now()))


class ReplyTarget(Protocol):
    """One message the bot keeps editing, plus a way to post more messages after it."""

    # When edits stop working (an interaction token's end, with a margin); None: never.
    handover_at: float | None

    async def edit(self, content: str, embeds: Sequence[discord.Embed] = (), view: View = None) -> int: ...

    async def send(self, content: str, embeds: Sequence[discord.Embed] = (), view: View = None) -> int: ...

    async def fail(self, content: str) -> int: ...

    async def handover(self, shown: str) -> ReplyTarget | None: ...


Handover = Callable[[str], Awaitable["ReplyTarget | None"]]


class InteractionTarget:
    """The deferred response of a slash or context-menu command (edited through its webhook).

    Its token dies 15 minutes after the interaction; `handover` (from the client) moves the
    answer to a normal channel message before that, or returns None when it cannot.
    """

    def __init__(self, interaction: discord.Interaction, received_at: float | None = None,
                 handover: Handover | None = None) -> None:
        self._interaction = interaction
        self._handover = handover
        self.handover_at = (None if received_at is None or handover is None
                            else received_at + INTERACTION_TTL_S - HANDOVER_MARGIN_S)

    async def edit(self, content: str, embeds: Sequence[discord.Embed] = (), view: View = None) -> int:
        extra = {"view": view} if view is not None else {}
        message = await self._interaction.edit_original_response(
            content=content, embeds=list(embeds), allowed_mentions=NO_MENTIONS, **extra
        )
        return message.id

    async def send(self, content: str, embeds: Sequence[discord.Embed] = (), view: View = None) -> int:
        extra = {"view": view} if view is not None else {}
        message = await self._interaction.followup.send(
            content=content, embeds=list(embeds), allowed_mentions=NO_MENTIONS, wait=True, **extra
        )
        return message.id

    async def fail(self, content: str) -> int:
        """Errors are private: the public "thinking" response goes, an ephemeral message says why."""
        try:
            await self._interaction.delete_original_response()
        except discord.HTTPException as exc:
            _log.warning("Could not remove the response before an error message (%s)", _describe(exc))
        message = await self._interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_MENTIONS,
                                                        wait=True)
        return message.id

    async def handover(self, shown: str) -> ReplyTarget | None:
        return await self._handover(shown) if self._handover is not None else None


class MessageTarget:
    """A message the bot posted itself (after a mention), edited through the channel API.

    Further parts reply to `reference` (the question) when given, so a restarted bot can find
    the question of every part.
    """

    handover_at: float | None = None

    def __init__(self, message: discord.Message, reference: discord.Message | None = None) -> None:
        self._message = message
        self._reference = reference

    @property
    def message(self) -> discord.Message:
        return self._message

    async def edit(self, content: str, embeds: Sequence[discord.Embed] = (), view: View = None) -> int:
        extra = {"view": view} if view is not None else {}
        await self._message.edit(content=content, embeds=list(embeds), allowed_mentions=NO_MENTIONS, **extra)
        return self._message.id

    async def send(self, content: str, embeds: Sequence[discord.Embed] = (), view: View = None) -> int:
        extra: dict[str, object] = {"view": view} if view is not None else {}
        if self._reference is not None:
            extra.update(reference=self._reference.to_reference(fail_if_not_exists=False), mention_author=False)
        message = await self._message.channel.send(content=content, embeds=list(embeds),
                                                   allowed_mentions=NO_MENTIONS, **extra)
        return message.id

    async def fail(self, content: str) -> int:
        return await self.edit(content)

    async def handover(self, shown: str) -> ReplyTarget | None:
        return self


class Cadence:
    """One pace for a kind of edit across all messages: at most one such edit per `interval`.

    Queue positions change for every waiting question at once; this spreads those edits out
    instead of sending a burst (newest text still wins per message).
    """

    def __init__(self, interval: float, clock: Clock | None = None) -> None:
        self._interval = interval
        self._clock = clock or MonotonicClock()
        self._lock = asyncio.Lock()
        self._last = float("-inf")

    async def turn(self) -> None:
        async with self._lock:
            when = self._last + self._interval
            if self._clock.now() < when:
                await self._clock.sleep_until(when)
            self._last = self._clock.now()


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
    """Streams into one message with at most one edit per `interval`; the newest text wins.

    Queue-position texts additionally wait their turn on the shared `cadence`.
    """

    def __init__(self, target: ReplyTarget, interval: float, cadence: Cadence | None = None,
                 shown: str | None = None) -> None:
        self._target = target
        self._interval = interval
        self._cadence = cadence
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        self._last = -interval
        self._pending: str | None = None
        self._pending_position = False
        self._shown: str | None = shown
        self._shown_position = False
        self._editing = False
        self._closing = False
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._pump())

    @property
    def latest(self) -> str:
        """The newest text: what is about to be shown, else what is shown."""
        return self._pending if self._pending is not None else (self._shown or "")

    @property
    def shows_position(self) -> bool:
        """Whether the newest text is a queue position (which a "working" status then replaces)."""
        return self._pending_position if self._pending is not None else self._shown_position

    def until_next_edit(self) -> float:
        """Seconds until this message may be edited again."""
        return max(0.0, self._last + self._interval - self._clock())

    def push(self, content: str, *, position: bool = False) -> None:
        if content != (self._pending if self._pending is not None else self._shown):
            self._pending = content
            self._pending_position = position
            self._wake.set()

    async def finish(self, content: str, embeds: Sequence[discord.Embed] = (), view: View = None) -> int:
        """Stop streaming and put the final content in place, retrying until it lands."""
        await self.stop()
        await asyncio.sleep(max(0.0, self._last + self._interval - self._clock()))
        return await with_retries(lambda: self._target.edit(content, embeds, view), self._interval)

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
            if self._pending_position and self._cadence is not None and not self._closing:
                await self._cadence.turn()
            self._wake.clear()
            content, self._pending = self._pending, None
            position = self._pending_position
            if self._closing:
                return
            if content is None:
                continue
            self._editing = True
            try:
                await self._target.edit(content)
                self._shown, self._shown_position = content, position
            except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:  # the next edit supersedes it
                _log.warning("Skipped a streaming edit (%s)", _describe(exc))
            finally:
                self._editing = False
                self._last = self._clock()


async def _next_event(job: Job, target: ReplyTarget, clock: Clock) -> Event | None:
    """The job's next event, or None when the target's handover time comes first."""
    deadline = target.handover_at
    if deadline is None:
        return await job.events.get()
    if clock.now() >= deadline:
        return None
    get = asyncio.ensure_future(job.events.get())
    timer = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        done, _ = await asyncio.wait({get, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not get.done():
            get.cancel()
    return get.result() if get in done else None


@dataclass
class Delivery:
    """How an answer is shown where it goes: language, embeds allowed, the sources button."""

    lang: Lang = "de"
    embeds: bool = True
    embeds_missing: str = ""  # the notice above text sources, when embeds are not allowed
    view: Callable[[Answer], View] | None = None  # the persistent view under the answer's last part
    cadence: Cadence | None = None
    clock: Clock = field(default_factory=MonotonicClock)


async def deliver(job: Job, target: ReplyTarget, interval: float,
                  how: Delivery | None = None) -> tuple[Answer | None, list[int]]:
    """Show a job's progress in `target` and then its answer; returns the answer and message ids.

    An expiring target is handed over before it expires; when that is impossible the job is
    given up (the caller cancels it, so the model never answers for nobody).
    """
    how = how or Delivery()
    editor = ThrottledEditor(target, interval, how.cadence)
    streamed = ""
    try:
        while True:
            event = await _next_event(job, target, how.clock)
            if event is None:
                shown = editor.latest
                await editor.stop()
                await asyncio.sleep(editor.until_next_edit())  # the handover edits this message too
                successor = await target.handover(shown)
                if successor is None or successor is target:
                    return None, []
                target = successor
                editor = ThrottledEditor(target, interval, how.cadence, shown=shown)
            elif isinstance(event, Position):
                editor.push(render.queue_text(event.position, how.lang), position=True)
            elif isinstance(event, Started) and editor.shows_position:
                # a queue position gives way to the working status; otherwise Discord's "thinking …"
                # (or the placeholder) already says so, and an edit now would hold back the answer's
                # first edit by the edit interval (measured: 1.0 s instead of ~0.07 s to the first text)
                editor.push(render.t("working", how.lang))
            elif isinstance(event, Token):
                streamed += event.text
                editor.push(render.preview(streamed, how.lang))
            elif isinstance(event, Failed):
                if isinstance(event.error, QuestionError):
                    message = render.truncate(str(event.error), render.MESSAGE_LIMIT) or render.t("failed", how.lang)
                else:
                    _log.error("Answering failed", exc_info=event.error)
                    message = render.t("failed", how.lang)
                await editor.stop()
                return None, [await with_retries(lambda target=target, message=message: target.fail(message), interval)]
            elif isinstance(event, Done):
                parts = render.answer_messages(event.answer, how.lang, embeds=how.embeds,
                                               embeds_missing=how.embeds_missing)
                view = how.view(event.answer) if how.view is not None and event.answer.citations else None
                last = len(parts) - 1
                ids = [await editor.finish(parts[0].content, parts[0].embeds, view if last == 0 else None)]
                for i, part in enumerate(parts[1:], start=1):
                    part_view = view if i == last else None
                    ids.append(await with_retries(
                        lambda p=part, v=part_view, target=target: target.send(p.content, p.embeds, v), interval))
                return event.answer, ids
    finally:
        await editor.stop()
