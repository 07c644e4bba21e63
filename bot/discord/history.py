"""Conversations rebuilt from Discord, so that they survive a restart of the bot.

Like llmcord, the bot reads the conversation back from Discord instead of trusting its memory:
a reply chain is followed through `message_reference` (bot answer -> the question it replies
to -> the earlier answer that question replied to ...), and a thread the bot opened is read
from its starter message and its history. Only what the bot can read counts: without the
message-content intent that is its own messages and those that mention it (the questions).
The in-memory store (bot.discord.memory) caches the result.
"""

from __future__ import annotations

import logging

import discord

from rag.answer import Turn

from .render import strip_mentions_of

_log = logging.getLogger(__name__)

THREAD_MESSAGES = 100  # newest messages read from a thread
NOTE_PREFIXES = ("ℹ️", "-# ", "⏳", "🔎")  # the bot's hints, notices and transient states: no answers


def is_answer(message: discord.Message, me: discord.abc.Snowflake) -> bool:
    return message.author.id == me.id and bool(message.content) and not message.content.startswith(NOTE_PREFIXES)


def question_of(message: discord.Message, me: discord.abc.Snowflake) -> str:
    return strip_mentions_of(message.content, me.id)


async def _referenced(message: discord.Message) -> discord.Message | None:
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    if isinstance(reference.resolved, discord.Message):
        return reference.resolved
    try:
        return await message.channel.fetch_message(reference.message_id)
    except discord.HTTPException as exc:  # deleted, or no Read Message History
        _log.info("Could not read a replied-to message (HTTP %s)", exc.status)
        return None


async def reply_chain(answer: discord.Message, me: discord.abc.Snowflake, turns: int, floor: int = 0) -> list[Turn]:
    """The turns that end with `answer` (a bot message), oldest first, at most `turns`.

    Messages older than `floor` (a /reset) are not read.
    """
    found: list[Turn] = []
    current: discord.Message | None = answer
    while current is not None and is_answer(current, me) and len(found) < turns and current.id > floor:
        question = await _referenced(current)
        if question is None or question.author.id == me.id or question.id <= floor:
            break
        text = question_of(question, me)
        if not text:
            break
        found.append(Turn(text, current.content))
        current = await _referenced(question)
    found.reverse()
    return found


async def thread_turns(thread: discord.Thread | discord.DMChannel, me: discord.abc.Snowflake,
                       before: discord.Message | None, turns: int, floor: int = 0) -> list[Turn]:
    """The turns of a thread the bot opened (its starter question first) or of a DM.

    Messages older than `floor` (a /reset) are not read.
    """
    pairs: list[tuple[str, list[str]]] = []
    parent = getattr(thread, "parent", None)
    if isinstance(parent, discord.TextChannel) and thread.id > floor:
        try:  # a thread started from a message has that message's id
            starter = await parent.fetch_message(thread.id)
        except discord.HTTPException:
            starter = None
        if starter is not None and question_of(starter, me):
            pairs.append((question_of(starter, me), []))
    try:
        messages = [m async for m in thread.history(limit=THREAD_MESSAGES, before=before)][::-1]
    except discord.HTTPException as exc:
        _log.info("Could not read a thread's history (HTTP %s)", exc.status)
        messages = []
    for message in messages:
        if message.id <= floor:
            continue
        if message.interaction_metadata is not None:
            continue  # a /ask answer: its question is not in the channel
        if message.author.id == me.id:
            if is_answer(message, me) and pairs:
                pairs[-1][1].append(message.content)
        elif text := question_of(message, me):
            pairs.append((text, []))
    found = [Turn(question, "".join(parts)) for question, parts in pairs if parts]
    return found[-turns:] if turns else []
