"""Where an answer can go, from the bot's permissions in the channel (checked before any model work).

No thread permission -> a reply in the channel; no Read Message History -> a plain message; no
Embed Links -> sources as text; nothing postable -> no model call, the user is told by DM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import discord

from .memory import Conversation

THREAD_PERMISSIONS = ("create_public_threads", "send_messages_in_threads")


@dataclass
class Plan:
    """Where and how an answer to a message can go, given the bot's permissions there."""

    route: str | None  # "thread", "reply", "send", or None: nothing can be posted
    embeds: bool = True
    missing: list[str] = field(default_factory=list)  # permissions that forced a fallback
    notice: str | None = None  # the i18n key saying so



def my_permissions(channel: object) -> discord.Permissions | None:
    """The bot's permissions in a channel (a thread has its parent's); None when unknown."""
    if isinstance(channel, discord.DMChannel):
        return discord.Permissions.text() | discord.Permissions(view_channel=True)
    guild = getattr(channel, "guild", None)
    if guild is None or guild.me is None or not hasattr(channel, "permissions_for"):
        return None
    try:
        return channel.permissions_for(guild.me)  # type: ignore[union-attr]
    except discord.ClientException:  # a thread whose parent is not cached
        return None

def plan_for(message: discord.Message, conversation: Conversation | None) -> Plan:
    channel = message.channel
    if isinstance(channel, discord.DMChannel):
        return Plan("reply")
    perms = my_permissions(channel)
    if perms is None:
        return Plan("reply")
    history_missing = [] if perms.read_message_history else ["read_message_history"]
    direct = "reply" if not history_missing else "send"
    if isinstance(channel, discord.Thread):
        if not perms.send_messages_in_threads:
            return Plan(None, missing=["send_messages_in_threads"])
        return Plan(direct, perms.embed_links, history_missing, "no_reply" if history_missing else None)
    if conversation is None and isinstance(channel, discord.TextChannel):
        lacking = [p for p in THREAD_PERMISSIONS if not getattr(perms, p)]
        if not lacking:
            return Plan("thread", perms.embed_links)
        if not perms.send_messages:
            return Plan(None, missing=["send_messages", *lacking])
        return Plan(direct, perms.embed_links, lacking + history_missing, "no_thread")
    if not perms.send_messages:
        return Plan(None, missing=["send_messages"])
    return Plan(direct, perms.embed_links, history_missing, "no_reply" if history_missing else None)
