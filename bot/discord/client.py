"""The Discord adapter: slash commands, a message command and mentions in, answers out.

It holds no answering logic of its own: questions go through `AnswerQueue` to the same
service the console uses, and `render` turns the resulting `Answer` into Discord messages.

Where Discord allows it, follow-ups work without the privileged message-content intent:
mentions, replies that ping the bot, `/ask` in the bot's thread, the "Frage an newsbot"
message command (Discord always sends its target message) and DMs. Before posting, the bot
checks its permissions in the channel, degrades (no thread: a reply; no embeds: sources as
text) and says what is missing; when it can post nothing, the model does no work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import discord
from discord import app_commands

from rag.settings import Settings

from . import history, render
from .commands import add_commands, register_commands
from .endpoints import adopt_bot_gateway
from .i18n import Lang, Translator, lang_of, t
from .memory import CAPACITY, Conversation, Conversations, Cooldown
from .permissions import Plan, my_permissions, plan_for
from .queue import AnswerQueue, Job, QueueFull, Reservation
from .reply import NO_MENTIONS, Cadence, Clock, Delivery, Handover, InteractionTarget, MessageTarget, MonotonicClock, ReplyTarget, deliver
from .service import AnswerService
from .views import SourcesButton, sources_view

_log = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    """An error for the log, without URLs (webhook URLs carry interaction tokens)."""
    return f"HTTP {exc.status}" if isinstance(exc, discord.HTTPException) else type(exc).__name__

THREAD_ARCHIVE_MINUTES = 1440  # Discord allows 60, 1440, 4320 or 10080


class ServiceUnavailable(Exception):
    """The answer service could not be built (missing index or model); the cause says why."""


class NewsBot(discord.Client):
    def __init__(self, settings: Settings, service_factory: Callable[[], AnswerService], *,
                 clock: Clock | None = None, **options: object) -> None:
        # Mentions and replies that ping the bot carry their content without the privileged
        # message-content intent; plain messages in the bot's threads need it (opt-in).
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.dm_messages = True
        intents.message_content = settings.discord_message_content
        super().__init__(intents=intents, allowed_mentions=NO_MENTIONS, max_messages=None, **options)
        self.settings = settings
        self.clock: Clock = clock or MonotonicClock()
        self._service_factory = service_factory
        self._queue: AnswerQueue | None = None
        self.service: AnswerService | None = None  # /neu reads its store
        self.conversations = Conversations(settings.history_turns)
        self.cooldown = Cooldown(settings.discord_cooldown_s)
        self.cadence = Cadence(settings.discord_queue_edit_interval_s, self.clock)
        self._hinted: set[int] = set()  # channels told once that plain messages are unreadable
        self.tree = app_commands.CommandTree(self)
        add_commands(self)

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
        self.service = service
        self._queue = AnswerQueue(service, self.settings.discord_queue_size)
        self._queue.start()
        self.add_dynamic_items(SourcesButton)  # sources buttons of earlier runs keep working
        await self.tree.set_translator(Translator())
        try:
            await register_commands(self)
        except discord.HTTPException as exc:  # the commands registered last time still work
            _log.warning("Could not register the slash commands: Discord answered HTTP %s", exc.status)

    async def close(self) -> None:
        if self._queue is not None:
            await self._queue.close()
        await super().close()

    async def on_ready(self) -> None:
        _log.info("Connected to Discord as %s in %d servers", self.user, len(self.guilds))

    # --- slash and message commands ----------------------------------------------------------

    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        received = self.clock.now()
        lang = lang_of(interaction.locale)
        if await self._refused(interaction, lang):
            return
        await self._ask_interaction(interaction, question, lambda: self._channel_conversation(interaction.channel, None),
                                    lang, received)

    async def ask_about(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message command: the target message is the question, whatever intents the bot has."""
        received = self.clock.now()
        lang = lang_of(interaction.locale)
        if await self._refused(interaction, lang):
            return
        me = self.user
        question = render.strip_mentions_of(message.content, me.id) if me else message.content.strip()
        if not question or (me is not None and message.author.id == me.id):
            await interaction.response.send_message(t("no_text", lang), ephemeral=True)
            return
        await self._ask_interaction(interaction, question, lambda: self._message_conversation(message), lang, received)

    async def _ask_interaction(self, interaction: discord.Interaction, question: str,
                               find_conversation: Callable[[], Awaitable[Conversation | None]], lang: Lang,
                               received: float) -> None:
        channel_id = interaction.channel_id or 0
        refusal = self._refusal(interaction.user.id, lang)
        if refusal is not None:  # private, and before anything is acknowledged
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        reservation = self.queue.reserve()  # the slot is this arrival's from now on (checked free above)
        try:  # acknowledge first: Discord drops interactions not answered within 3 s
            await interaction.response.defer(thinking=True)
            conversation = await find_conversation()  # may read Discord's history: after the ack
        except BaseException as exc:
            self.queue.release(reservation)
            if not isinstance(exc, discord.HTTPException):
                raise
            _log.warning("Could not acknowledge a command: Discord answered HTTP %s", exc.status)
            return
        how = Delivery(lang=lang, cadence=self.cadence, clock=self.clock)
        target = InteractionTarget(interaction, received, self._handover(interaction, how))
        job = self._submit(interaction.user.id, question, conversation, lang, reservation)
        if isinstance(job, str):  # the queue filled up meanwhile
            await target.fail(job)
            return
        await self._answer(job, target, conversation or self.conversations.new(channel_id), how,
                           key=interaction.id, user_id=interaction.user.id)

    def _handover(self, interaction: discord.Interaction, how: Delivery) -> Handover:
        """Before the interaction token dies: go on in a normal message, or give up and say why."""

        async def handover(shown: str) -> ReplyTarget | None:
            channel = interaction.channel
            cached = my_permissions(channel)
            # Discord's own view of the channel when the cache has none (its Embed Links is
            # always on for interactions, so it does not count for a normal message).
            perms = cached if cached is not None else interaction.app_permissions
            if cached is None:
                perms = discord.Permissions(perms.value & ~discord.Permissions(embed_links=True).value)
            send = "send_messages_in_threads" if isinstance(channel, discord.Thread) else "send_messages"
            missing = [p for p in ("view_channel", send) if not getattr(perms, p)]
            if missing or not isinstance(channel, discord.abc.Messageable):
                _log.warning("An answer cannot outlive its interaction here; cancelled (missing %s)", missing)
                await self._edit_quietly(interaction, render.notice("expired", missing or ["view_channel"], how.lang))
                return None
            reference = None
            if perms.read_message_history:
                try:
                    original = await interaction.original_response()
                    reference = original.to_reference(fail_if_not_exists=False)
                except discord.HTTPException:
                    pass
            header = t("moved_header", how.lang, mention=interaction.user.mention)
            extra = {"reference": reference, "mention_author": False} if reference is not None else {}
            try:
                message = await channel.send(shown or header, allowed_mentions=NO_MENTIONS, **extra)
            except discord.HTTPException as exc:
                _log.warning("Could not move an answer to a channel message (HTTP %s); cancelled", exc.status)
                await self._edit_quietly(interaction, render.notice("expired", [send], how.lang))
                return None
            await self._edit_quietly(interaction, t("moved", how.lang, url=message.jump_url))
            if not perms.embed_links:
                how.embeds, how.embeds_missing = False, render.notice("no_embeds", ["embed_links"], how.lang)
            return MessageTarget(message)

        return handover

    async def _edit_quietly(self, interaction: discord.Interaction, content: str) -> None:
        try:
            await interaction.edit_original_response(content=content, embeds=[], allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:  # 401 50027 once the token is gone
            _log.info("Could not update an interaction response (HTTP %s)", exc.status)

    async def sources(self, interaction: discord.Interaction) -> None:
        lang = lang_of(interaction.locale)
        if await self._refused(interaction, lang):
            return
        answer = self.conversations.last_answer(interaction.channel_id or 0, interaction.user.id)
        pages = render.pack_embeds(render.source_embeds(answer)) if answer else []
        await self._send_sources(interaction, pages, lang)

    async def show_sources(self, interaction: discord.Interaction, key: int) -> None:
        """The sources button: this answer's sources, privately; after a restart from the message."""
        lang = lang_of(interaction.locale)
        answer = self.conversations.answer(key)
        content = None
        if answer is not None:
            pages = render.pack_embeds(render.source_embeds(answer))
        else:
            embeds = interaction.message.embeds if interaction.message is not None else []
            pages = render.pack_embeds(render.embeds_from_message(embeds))
            content = t("restored_sources", lang)
        await self._send_sources(interaction, pages, lang, content)

    async def _send_sources(self, interaction: discord.Interaction, pages: list[list[discord.Embed]], lang: Lang,
                            content: str | None = None) -> None:
        if not pages:
            await interaction.response.send_message(t("no_sources", lang), ephemeral=True)
            return
        await interaction.response.send_message(content, embeds=pages[0], ephemeral=True)
        for page in pages[1:]:
            await interaction.followup.send(embeds=page, ephemeral=True)

    async def reset(self, interaction: discord.Interaction) -> None:
        lang = lang_of(interaction.locale)
        if await self._refused(interaction, lang):
            return
        channel_id = interaction.channel_id or 0
        self.conversations.reset(channel_id, since=interaction.id)
        await interaction.response.send_message(t("reset", lang), ephemeral=True)

    # --- mentions, replies, threads and DMs ----------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if me is None or message.author.bot:
            return
        channel = message.channel
        if not self._allowed(message.guild.id if message.guild else None, channel.id, channel):
            return
        is_dm = isinstance(channel, discord.DMChannel)
        mentioned = any(user.id == me.id for user in message.mentions)
        conversation = await self._message_conversation(message)
        if not (mentioned or conversation or is_dm):
            return
        lang = lang_of(message.guild.preferred_locale) if message.guild else "de"
        plan = plan_for(message, conversation)
        question = render.strip_mentions_of(message.content, me.id)
        if not question:  # also what a non-mentioning message looks like without the content intent
            if plan.route is None:
                return
            if mentioned or is_dm:
                await self._say(message, plan, render.help_text(me.mention, lang))
            elif not self.settings.discord_message_content and channel.id not in self._hinted:
                # A plain message in a bot thread, or a reply without the ping: unreadable for us.
                self._hinted.add(channel.id)
                if len(self._hinted) > CAPACITY:
                    self._hinted.clear()
                await self._say(message, plan, t("unreadable", lang, mention=me.mention))
            return
        if plan.route is None:  # nothing can be posted: no model work, and tell the user privately
            await self._cannot_post(message, plan, lang)
            return
        job = self._submit(message.author.id, question, conversation, lang)
        if isinstance(job, str):
            await self._say(message, plan, job)
            return
        how = Delivery(lang=lang, cadence=self.cadence, clock=self.clock, embeds=plan.embeds,
                       embeds_missing="" if plan.embeds else render.notice("no_embeds", ["embed_links"], lang))
        try:
            target, conversation = await self._open_reply(message, question, conversation, plan, how)
        except (discord.HTTPException, aiohttp.ClientError, OSError, RuntimeError) as exc:
            self.queue.cancel(job)
            if isinstance(exc, RuntimeError) and not self.is_closed():
                raise
            _log.warning("Could not reply to a message: %s", _describe(exc))
            return
        await self._answer(job, target, conversation, how, key=message.id, user_id=message.author.id)

    async def _message_conversation(self, message: discord.Message) -> Conversation | None:
        """The conversation a message continues: a reply to an answer, a bot thread or a DM."""
        me = self.user
        reference = message.reference
        if reference is not None and reference.message_id is not None:
            conversation = self.conversations.replying_to(reference.message_id)
            if conversation is not None:
                return conversation
            replied = reference.resolved
            if me is not None and isinstance(replied, discord.Message) and history.is_answer(replied, me) \
                    and not isinstance(message.channel, discord.Thread):
                turns = await history.reply_chain(replied, me, self.settings.history_turns,
                                                  self.conversations.floor(message.channel.id))
                return self.conversations.restored(message.channel.id, turns)
        return await self._channel_conversation(message.channel, message)

    async def _channel_conversation(self, channel: object, before: discord.Message | None) -> Conversation | None:
        """A bot thread's or DM's conversation; rebuilt from Discord when memory lacks it."""
        me = self.user
        channel_id = getattr(channel, "id", 0)
        conversation = self.conversations.in_thread(channel_id)
        if conversation is not None or me is None:
            return conversation
        bot_thread = isinstance(channel, discord.Thread) and channel.owner_id == me.id
        if bot_thread or isinstance(channel, discord.DMChannel):
            turns = await history.thread_turns(channel, me, before, self.settings.history_turns,  # type: ignore[arg-type]
                                               self.conversations.floor(channel_id))
            return self.conversations.open_thread(channel_id, turns)
        return None

    async def _say(self, message: discord.Message, plan: Plan, text: str) -> None:
        """A short message where the plan allows (reply if it can, else a plain message)."""
        try:
            if plan.route == "send":
                await message.channel.send(text, allowed_mentions=NO_MENTIONS)
            elif plan.route is not None:
                await message.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            _log.warning("Could not post a short message: Discord answered HTTP %s", exc.status)

    async def _cannot_post(self, message: discord.Message, plan: Plan, lang: Lang) -> None:
        channel = message.channel
        _log.warning("Cannot answer in channel %s: missing %s", channel.id, ", ".join(plan.missing))
        mention = getattr(channel, "mention", "#?")
        try:
            await message.author.send(render.notice("cannot_post", plan.missing, lang, channel=mention),
                                      allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:  # DMs closed: the log is all that is left
            _log.info("Could not tell the user by DM either (HTTP %s)", exc.status)

    async def _open_reply(self, message: discord.Message, question: str, conversation: Conversation | None,
                          plan: Plan, how: Delivery) -> tuple[ReplyTarget, Conversation]:
        """Where the answer goes: a new thread for a new question in a channel, else a reply."""
        me = self.user
        assert me is not None
        if plan.route == "thread":
            try:
                thread = await message.create_thread(
                    name=render.thread_name(question), auto_archive_duration=THREAD_ARCHIVE_MINUTES
                )
            except discord.HTTPException as exc:
                _log.warning("Could not open a thread, answering in the channel: HTTP %s", exc.status)
            else:
                hint = (t("thread_hint_content", how.lang) if self.settings.discord_message_content
                        else t("thread_hint", how.lang, mention=me.mention))
                await thread.send(hint, allowed_mentions=NO_MENTIONS)
                placeholder = await thread.send(t("placeholder", how.lang), allowed_mentions=NO_MENTIONS)
                return MessageTarget(placeholder), self.conversations.open_thread(thread.id)
            perms = my_permissions(message.channel)
            plan = Plan("reply" if perms is None or perms.read_message_history else "send", plan.embeds)
        if plan.notice is not None:
            await message.channel.send(render.notice(plan.notice, plan.missing, how.lang),
                                       allowed_mentions=NO_MENTIONS)
        conversation = conversation or self.conversations.new(message.channel.id)
        if plan.route == "send":
            placeholder = await message.channel.send(t("placeholder", how.lang), allowed_mentions=NO_MENTIONS)
            return MessageTarget(placeholder), conversation
        placeholder = await message.reply(t("placeholder", how.lang), mention_author=False,
                                          allowed_mentions=NO_MENTIONS)
        return MessageTarget(placeholder, reference=message), conversation

    # --- shared ------------------------------------------------------------------------------

    async def _refused(self, interaction: discord.Interaction, lang: Lang = "de") -> bool:
        """Outside the allow-lists a command gets a short private refusal."""
        if self._allowed(interaction.guild_id, interaction.channel_id or 0, interaction.channel):
            return False
        await interaction.response.send_message(t("not_allowed", lang), ephemeral=True)
        return True

    def _allowed(self, guild_id: int | None, channel_id: int, channel: object) -> bool:
        """The optional allow-lists; a thread counts as its parent channel."""
        guilds, channels = self.settings.discord_guilds, self.settings.discord_channels
        if guilds and guild_id not in guilds:
            return False
        if channels:
            return bool({channel_id, getattr(channel, "parent_id", None)} & set(channels))
        return True

    def _refusal(self, user_id: int, lang: Lang = "de", has_slot: bool = False) -> str | None:
        """Why a question would not be queued now (cooldown, queue full unless it holds a slot), or None."""
        wait = self.cooldown.remaining(user_id)
        if wait > 0:
            return render.cooldown_text(wait, lang)
        if not has_slot and self.queue.full:
            return t("busy", lang)
        return None

    def _submit(self, user_id: int, question: str, conversation: Conversation | None, lang: Lang = "de",
                reservation: Reservation | None = None) -> Job | str:
        """Queue a question, or return why not (cooldown, queue full) as the text to show."""
        refusal = self._refusal(user_id, lang, has_slot=reservation is not None)
        if refusal is not None:
            if reservation is not None:
                self.queue.release(reservation)
            return refusal
        try:
            job = self.queue.submit(question, self.conversations.history(conversation), user_id, reservation)
        except QueueFull:
            return t("busy", lang)
        self.cooldown.start(user_id)
        return job

    async def _answer(self, job: Job, target: ReplyTarget, conversation: Conversation, how: Delivery, *,
                      key: int, user_id: int) -> None:
        how.view = lambda answer: sources_view(key, how.lang)
        try:
            answer, message_ids = await deliver(job, target, self.settings.discord_edit_interval_s, how)
        except (discord.HTTPException, aiohttp.ClientError, OSError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not self.is_closed():
                raise
            if self.is_closed():  # shutting down with an answer in flight (aiohttp: "Session is closed")
                _log.info("An answer in flight was dropped at shutdown")
            else:
                _log.error("Could not deliver an answer: %s", _describe(exc))
            return
        finally:
            self.queue.cancel(job)  # over for us either way; a no-op once answered
        if answer is not None:
            self.conversations.remember(conversation, job.question, answer, message_ids, user_id, key)
