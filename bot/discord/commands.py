"""The slash and message commands: defined (German names, localised by the Translator) and registered."""

from __future__ import annotations

from collections.abc import Callable

import discord
from discord import app_commands

from .listing import MAX_LAST, show_new

MAX_LENGTH_LIMIT = 6000  # the most Discord allows for a string option's max_length
MESSAGE_COMMAND = "Frage an newsbot"


def _command_defaults(func: Callable[..., object]) -> Callable[..., object]:
    """Everyone who may write may use the commands, in servers and in DMs with the bot."""
    func = app_commands.default_permissions(send_messages=True)(func)
    func = app_commands.allowed_contexts(guilds=True, dms=True, private_channels=False)(func)
    return app_commands.allowed_installs(guilds=True, users=False)(func)


def add_commands(self) -> None:  # self: the NewsBot
    limit = min(self.settings.max_question_chars, MAX_LENGTH_LIMIT)

    async def ask(interaction: discord.Interaction, frage: str) -> None:
        await self.ask(interaction, frage)

    # Discord's client enforces the length (the annotation must be a real object for that).
    ask.__annotations__ = {"interaction": discord.Interaction, "frage": app_commands.Range[str, 1, limit],
                           "return": None}
    ask_command = app_commands.describe(frage="Deine Frage, z. B. Worum ging es beim Gipfel in Alaska?")(ask)
    ask_command = app_commands.rename(frage="frage")(ask_command)
    self.tree.command(name="ask", description="Stell eine Frage zu den Nachrichtenartikeln")(
        _command_defaults(ask_command))

    async def quellen(interaction: discord.Interaction) -> None:
        await self.sources(interaction)

    self.tree.command(name="quellen", description="Alle Quellen deiner letzten Antwort hier")(
        _command_defaults(quellen))

    async def reset(interaction: discord.Interaction) -> None:
        await self.reset(interaction)

    self.tree.command(name="reset", description="Den Gesprächsverlauf hier vergessen")(_command_defaults(reset))

    async def ask_about(interaction: discord.Interaction, message: discord.Message) -> None:
        await self.ask_about(interaction, message)

    self.tree.add_command(app_commands.ContextMenu(name=MESSAGE_COMMAND, callback=_command_defaults(ask_about)))

    async def neu(interaction: discord.Interaction, seit: str | None = None,
                  anzahl: app_commands.Range[int, 1, MAX_LAST] | None = None) -> None:
        await show_new(self, interaction, seit, anzahl)

    neu_command = app_commands.describe(seit="Datum, z. B. 2025-09-01 (aufgenommen ab diesem Tag, UTC)",
                                        anzahl="Höchstens so viele, die neuesten zuerst")(neu)
    self.tree.command(name="neu", description="Neu aufgenommene Artikel: seit einem Datum oder die letzten N")(
        _command_defaults(neu_command))



async def register_commands(self) -> None:  # self: the NewsBot
    """Globally, or, with a guild allow-list, only in those guilds (and none globally)."""
    guilds = [discord.Object(id=g) for g in self.settings.discord_guilds]
    if not guilds:
        await self.tree.sync()
        return
    for guild in guilds:
        self.tree.copy_global_to(guild=guild)
    self.tree.clear_commands(guild=None)
    for guild in guilds:
        await self.tree.sync(guild=guild)
    await self.tree.sync()  # removes global commands an earlier run registered
