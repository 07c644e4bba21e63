"""The Discord adapter: slash commands and mentions in, answers of the shared service out.

It holds no answering logic of its own: questions go through `AnswerQueue` to the same
service the console uses, and `render` turns the resulting `Answer` into Discord messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import discord
from discord import app_commands

from rag.settings import Settings

from . import render
from .endpoints import adopt_bot_gateway
from .memory import Conversation, Conversations, Cooldown
from .queue import AnswerQueue, Job, QueueFull
from .reply import NO_MENTIONS, InteractionTarget, MessageTarget, ReplyTarget, deliver
from .service import AnswerService

_log = logging.getLogger(__name__)

THREAD_ARCHIVE_MINUTES = 1440


class ServiceUnavailable(Exception):
    """The answer service could not be built (missing index or model); the cause says why."""


class NewsBot(discord.Client):
    def __init__(self, settings: Settings, service_factory: Callable[[], AnswerService], **options: object) -> None:
        # Mentions and replies that ping the bot carry their content without the privileged
        # message-content intent; plain messages in the bot's threads need it (opt-in).
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = settings.discord_message_content
        super().__init__(intents=intents, allowed_mentions=NO_MENTIONS, max_messages=None, **options)
        self.settings = settings
        self._service_factory = service_factory
        self._queue: AnswerQueue | None = None
        self.conversations = Conversations(settings.history_turns)
        self.cooldown = Cooldown(settings.discord_cooldown_s)
        self.tree = app_commands.CommandTree(self)
        self._add_commands()

    @property
    def queue(self) -> AnswerQueue:
        if self._queue is None:
            raise RuntimeError("the bot has not logged in yet")
        return self._queue

    # --- lifecycle ---------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        """After a successful login, before the gateway: find it, load the model, register commands."""
        if self.settings.discord_api_base and not self.settings.discord_gateway_url:
            await adopt_bot_gateway(self)
        try:
            service = await asyncio.to_thread(self._service_factory)
        except Exception as exc:
            raise ServiceUnavailable(str(exc) or type(exc).__name__) from exc
        self._queue = AnswerQueue(service, self.settings.discord_queue_size)
        self._queue.start()
        try:
            await self.tree.sync()
        except discord.HTTPException as exc:  # the commands registered last time still work
            _log.warning("Could not register the slash commands: Discord answered HTTP %s", exc.status)

    async def close(self) -> None:
        if self._queue is not None:
            await self._queue.close()
        await super().close()

    async def on_ready(self) -> None:
        _log.info("Connected to Discord as %s in %d servers", self.user, len(self.guilds))

    # --- slash commands ----------------------------------------------------------------------

    def _add_commands(self) -> None:
        @self.tree.command(name="ask", description="Stell eine Frage zu den Nachrichtenartikeln")
        @app_commands.describe(frage="Deine Frage, z. B. Worum ging es beim Gipfel in Alaska?")
        async def ask(interaction: discord.Interaction, frage: str) -> None:
            await self.ask(interaction, frage)

        @self.tree.command(name="quellen", description="Alle Quellen der letzten Antwort hier")
        async def quellen(interaction: discord.Interaction) -> None:
            await self.sources(interaction)

        @self.tree.command(name="reset", description="Den Gesprächsverlauf hier vergessen")
        async def reset(interaction: discord.Interaction) -> None:
            await self.reset(interaction)

    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        if await self._refused(interaction):
            return
        channel_id = interaction.channel_id or 0
        conversation = self.conversations.in_thread(channel_id)
        job = self._submit(interaction.user.id, question, conversation)
        if isinstance(job, str):
            await interaction.response.send_message(job, ephemeral=True)
            return
        try:  # acknowledge first: Discord drops interactions not answered within 3 s
            await interaction.response.defer(thinking=True)
        except discord.HTTPException as exc:
            self.queue.cancel(job)
            _log.warning("Could not acknowledge /ask: Discord answered HTTP %s", exc.status)
            return
        await self._answer(job, InteractionTarget(interaction), conversation or self.conversations.new(channel_id))

    async def sources(self, interaction: discord.Interaction) -> None:
        if await self._refused(interaction):
            return
        channel_id = interaction.channel_id or 0
        answer = self.conversations.last_answer(channel_id)
        pages = render.pack_embeds(render.source_embeds(answer)) if answer else []
        if not pages:
            await interaction.response.send_message(render.NO_SOURCES, ephemeral=True)
            return
        await interaction.response.send_message(embeds=pages[0], ephemeral=True)
        for page in pages[1:]:
            await interaction.followup.send(embeds=page, ephemeral=True)

    async def reset(self, interaction: discord.Interaction) -> None:
        if await self._refused(interaction):
            return
        channel_id = interaction.channel_id or 0
        self.conversations.reset(channel_id)
        await interaction.response.send_message(render.RESET, ephemeral=True)

    # --- mentions and follow-ups ---------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.bot:
            return
        mentioned = any(user.id == me.id for user in message.mentions)
        conversation = None
        if message.reference is not None and message.reference.message_id is not None:
            conversation = self.conversations.replying_to(message.reference.message_id)
        conversation = conversation or self.conversations.in_thread(message.channel.id)
        if not (mentioned or conversation):
            return
        if not self._allowed(message.guild.id if message.guild else None, message.channel.id, message.channel):
            return
        question = render.strip_mentions_of(message.content, me.id)
        if not question:  # also what a non-mentioning message looks like without the content intent
            if mentioned:
                await message.reply(render.help_text(me.mention), mention_author=False)
            return
        job = self._submit(message.author.id, question, conversation)
        if isinstance(job, str):
            await message.reply(job, mention_author=False)
            return
        try:
            placeholder, conversation = await self._open_reply(message, question, conversation)
        except discord.HTTPException as exc:
            self.queue.cancel(job)
            _log.warning("Could not reply to a mention: Discord answered HTTP %s", exc.status)
            return
        await self._answer(job, MessageTarget(placeholder), conversation)

    async def _open_reply(
        self, message: discord.Message, question: str, conversation: Conversation | None
    ) -> tuple[discord.Message, Conversation]:
        """Where the answer goes: a new thread for a new question in a channel, else a reply."""
        if conversation is None and isinstance(message.channel, discord.TextChannel):
            try:
                thread = await message.create_thread(
                    name=render.thread_name(question), auto_archive_duration=THREAD_ARCHIVE_MINUTES
                )
            except discord.HTTPException as exc:  # e.g. no permission to create threads
                _log.warning("Could not open a thread, answering in the channel: HTTP %s", exc.status)
            else:
                return await thread.send(render.PLACEHOLDER), self.conversations.open_thread(thread.id)
        placeholder = await message.reply(render.PLACEHOLDER, mention_author=False)
        return placeholder, conversation or self.conversations.new(message.channel.id)

    # --- shared ------------------------------------------------------------------------------

    async def _refused(self, interaction: discord.Interaction) -> bool:
        """Outside the allow-lists a slash command gets a short private refusal."""
        if self._allowed(interaction.guild_id, interaction.channel_id or 0, interaction.channel):
            return False
        await interaction.response.send_message(render.NOT_ALLOWED, ephemeral=True)
        return True

    def _allowed(self, guild_id: int | None, channel_id: int, channel: object) -> bool:
        """The optional allow-lists; a thread counts as its parent channel."""
        guilds, channels = self.settings.discord_guilds, self.settings.discord_channels
        if guilds and guild_id not in guilds:
            return False
        if channels:
            return bool({channel_id, getattr(channel, "parent_id", None)} & set(channels))
        return True

    def _submit(self, user_id: int, question: str, conversation: Conversation | None) -> Job | str:
        """Queue a question, or return why not (cooldown, queue full) as the text to show."""
        wait = self.cooldown.remaining(user_id)
        if wait > 0:
            return render.cooldown_text(wait)
        try:
            job = self.queue.submit(question, self.conversations.history(conversation), user_id)
        except QueueFull:
            return render.BUSY
        self.cooldown.start(user_id)
        return job

    async def _answer(self, job: Job, target: ReplyTarget, conversation: Conversation) -> None:
        try:
            answer, message_ids = await deliver(job, target, self.settings.discord_edit_interval_s)
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            _log.error("Could not deliver an answer: %s", exc)
            return
        finally:
            self.queue.cancel(job)  # over for us either way; a no-op once answered
        if answer is not None:
            self.conversations.remember(conversation, job.question, answer, message_ids)
