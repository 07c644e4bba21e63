"""The "Quellen" button under each answer: a persistent view that survives restarts.

Its custom_id carries the answer's key (a snowflake: the question's message or interaction id),
so any click, also on an answer from before a restart, reaches `NewsBot.show_sources`, which
finds the answer's sources in memory or, after a restart, on the message the button sits on.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from .i18n import Lang, t


class ShowsSources(Protocol):
    """What the button needs of the bot (NewsBot), without importing the client module."""

    async def show_sources(self, interaction: discord.Interaction, key: int) -> None: ...

CUSTOM_ID = "newsbot:sources:{key}"


class SourcesButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"newsbot:sources:(?P<key>[0-9]{1,20})"):
    def __init__(self, key: int, lang: Lang = "de") -> None:
        super().__init__(discord.ui.Button(label=t("sources", lang), emoji="📚", style=discord.ButtonStyle.secondary,
                                           custom_id=CUSTOM_ID.format(key=key)))
        self.key = key

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button[Any],
                             match: re.Match[str], /) -> SourcesButton:
        return cls(int(match["key"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        client: ShowsSources = interaction.client  # type: ignore[assignment]
        await client.show_sources(interaction, self.key)


def sources_view(key: int, lang: Lang = "de") -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(SourcesButton(key, lang))
    return view
