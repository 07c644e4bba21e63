"""A loopback Discord API double: enough REST and gateway for the bot's real discord.py client.

It listens on 127.0.0.1 (a free port) and serves `/api/v10/...` plus a gateway websocket. It
enforces what Discord enforces, so the tests fail the way production would:

- message content <= 2000 characters, the embed limits, no empty messages (HTTP 400, 50035/50006);
- the 3 s deadline for acknowledging an interaction (HTTP 404, 10062) and one ack only (40060);
- 429 with `retry_after` (and the `Via` header discord.py expects) when one message is edited
  faster than `min_edit_interval`, or while a forced "429 storm" lasts;
- the bot token on REST (401) and on IDENTIFY (close 4004), the privileged message-content
  intent (close 4014 unless allowed), and stripped message content for messages that do not
  mention the bot when that intent is missing (on the gateway and on REST reads);
- whitespace-only content and embed fields (400), thread auto_archive_duration 60/1440/4320/10080;
- per-channel permissions of the bot (View Channel 50001, Send Messages, Send Messages in
  Threads, Create Public Threads, Read Message History 50013; embeds silently dropped without
  Embed Links), and no MESSAGE_CREATE for channels the bot cannot view;
- per-route rate-limit buckets (channel; webhook id + token) with X-RateLimit-* headers on every
  response, so discord.py throttles itself; `over_limit` counts requests beyond a bucket;
- interaction tokens valid for 15 minutes on the double's `clock`, which tests advance.

The gateway speaks HELLO / IDENTIFY / READY / GUILD_CREATE / heartbeats / RESUME (replaying the
events the client missed, on a `resume_gateway_url` that differs from the first URL), op 7
RECONNECT and op 9 INVALID_SESSION on demand, and can be dropped on demand. Users can run slash
commands, message context-menu commands and click buttons (component interactions), also in DMs. What the bot did is recorded for
assertions: messages with every version, interactions, heartbeats, and `violations` (anything
Discord would have rejected or that pinged someone).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

_log = logging.getLogger(__name__)

API = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
MESSAGE_CONTENT_INTENT = 1 << 15
ALL_PERMISSIONS = str((1 << 50) - 1)
# Permission bits (https://discord.com/developers/docs/topics/permissions).
PERMISSIONS = {
    "create_instant_invite": 1 << 0, "add_reactions": 1 << 6, "view_channel": 1 << 10, "send_messages": 1 << 11,
    "embed_links": 1 << 14, "attach_files": 1 << 15, "read_message_history": 1 << 16,
    "use_external_emojis": 1 << 18, "change_nickname": 1 << 26, "use_application_commands": 1 << 31,
    "create_public_threads": 1 << 35, "send_messages_in_threads": 1 << 38,
}
EVERYONE_PERMISSIONS = sum(PERMISSIONS.values())  # a usual @everyone role: no administrator
ARCHIVE_DURATIONS = {60, 1440, 4320, 10080}
EPHEMERAL = 1 << 6
LOADING = 1 << 7
INTERACTION_TOKEN_TTL_S = 15 * 60

# Discord's limits, restated here on purpose (the double must not trust the bot's constants).
CONTENT_LIMIT = 2000
EMBEDS_LIMIT = 10
EMBED_TOTAL = 6000
EMBED_LIMITS = {"title": 256, "description": 4096, "footer.text": 2048, "author.name": 256}
FIELDS_LIMIT = 25
FIELD_NAME = 256
FIELD_VALUE = 1024


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON the way Discord sends it: discord.py only parses an exact `application/json`."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class DoubleClock:
    """The double's time: monotonic plus whatever a test skipped with `advance()`.

    The bot can be given the same clock, so "15 minutes later" needs no 15 minutes.
    """

    def __init__(self) -> None:
        self._offset = 0.0
        self._moved = asyncio.Event()

    def now(self) -> float:
        return time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def sleep_until(self, when: float) -> None:
        while (left := when - self.now()) > 0:
            moved = self._moved
            try:
                await asyncio.wait_for(moved.wait(), left)
            except TimeoutError:
                pass


class _Snowflakes:
    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last


class _Bucket:
    """One rate-limit bucket: `limit` requests per fixed window of `window` seconds."""

    def __init__(self, limit: int, window: float, name: str) -> None:
        self.limit, self.window, self.name = limit, window, name
        self.reset_at = 0.0
        self.used = 0

    def take(self, now: float) -> float | None:
        """Count a request; returns None, or the seconds to wait when the bucket is empty."""
        if now + GRACE_S >= self.reset_at:
            self.reset_at, self.used = now + self.window, 0
        if self.used >= self.limit:
            return self.reset_at - now
        self.used += 1
        return None

    def headers(self, now: float) -> dict[str, str]:
        left = max(0.0, self.reset_at - now)
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.limit - self.used)),
                "X-RateLimit-Reset": f"{time.time() + left:.3f}", "X-RateLimit-Reset-After": f"{left + 0.0005:.3f}",
                "X-RateLimit-Bucket": self.name}


GRACE_S = 0.005  # asyncio may wake a sleeper up to its clock resolution early


class HTTPError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, {"code": code, "message": message}
        if errors:
            self.body["errors"] = errors


@dataclass
class Interaction:
    id: int
    token: str
    name: str
    user: dict[str, Any]
    channel_id: int
    guild_id: int | None
    kind: int = 2  # 2 application command, 3 message component
    locale: str = "de"
    dispatched_at: float = 0.0
    response_type: int | None = None
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)


class DiscordDouble:
    def __init__(
        self,
        *,
        token: str = "test-bot-token",
        heartbeat_interval_s: float = 0.5,
        interaction_deadline_s: float = 3.0,
        min_edit_interval_s: float = 0.0,
        allow_message_content: bool = False,
        bucket_limit: int = 5,
        bucket_window_s: float = 5.0,
    ) -> None:
        self.token = token
        self._users: dict[str, dict[str, Any]] = {}
        self.clock = DoubleClock()
        self.bucket_limit, self.bucket_window_s = bucket_limit, bucket_window_s
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self.over_limit = 0  # requests beyond a bucket the headers had announced as empty
        self.heartbeat_interval_s = heartbeat_interval_s
        self.interaction_deadline_s = interaction_deadline_s
        self.min_edit_interval_s = min_edit_interval_s
        self.allow_message_content = allow_message_content
        self._ids = _Snowflakes()
        self.app_id = self._ids()
        self.bot_user = {"id": str(self.app_id), "username": "newsbot", "discriminator": "0", "global_name": "newsbot",
                         "avatar": None, "bot": True, "verified": True, "mfa_enabled": False, "flags": 0}
        self.owner = self.make_user("owner")
        self.guild_id = self._ids()
        self.other_guild_id = self._ids()
        self.channels: dict[int, dict[str, Any]] = {}
        self.channel_id = self._add_channel(self.guild_id, "nachrichten")
        self.other_channel_id = self._add_channel(self.guild_id, "allgemein")
        self.other_guild_channel_id = self._add_channel(self.other_guild_id, "woanders")
        self.messages: dict[int, dict[str, Any]] = {}
        self.versions: dict[int, list[dict[str, Any]]] = {}  # message id -> every content/embeds version
        self.interactions: dict[str, Interaction] = {}  # by token
        self.commands: list[dict[str, Any]] = []  # global
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.gateway_paths: list[tuple[str, str]] = []  # (path, "identify" | "resume")
        self.dm_channels: dict[str, int] = {}  # user id -> DM channel id
        self.dms_closed: set[str] = set()  # users who accept no DMs from server members
        self.heartbeats: list[float] = []
        self.identifies = 0
        self.resumes = 0
        self.rate_limited = 0  # 429 responses sent
        self.violations: list[str] = []  # what Discord would reject, or a ping
        self.requests: list[tuple[str, str, int]] = []
        self._storm = 0
        self._storm_retry_after = 0.05
        self._storm_route: str | None = None
        self._last_edit: dict[int, float] = {}
        self._session_id: str | None = None
        self._seq = 0
        self._events: list[dict[str, Any]] = []
        self._intents = 0
        self._ws: web.WebSocketResponse | None = None
        self._ws_lock = asyncio.Lock()
        self._resume_allowed = asyncio.Event()
        self._resume_allowed.set()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> DiscordDouble:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/resume-gateway", self._gateway)
        r = app.router
        r.add_get(API + "/gateway", self._get_gateway)
        r.add_get(API + "/gateway/bot", self._get_gateway_bot)
        r.add_get(API + "/users/@me", self._get_me)
        r.add_get(API + "/oauth2/applications/@me", self._get_application)
        r.add_put(API + "/applications/{app_id}/commands", self._put_commands)
        r.add_get(API + "/applications/{app_id}/commands", self._get_commands)
        r.add_put(API + "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands)
        r.add_get(API + "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands)
        r.add_post(API + "/users/@me/channels", self._create_dm)
        r.add_post(API + "/interactions/{id}/{token}/callback", self._interaction_callback)
        r.add_get(API + "/webhooks/{app_id}/{token}/messages/{message_id}", self._get_webhook_message)
        r.add_patch(API + "/webhooks/{app_id}/{token}/messages/{message_id}", self._edit_webhook_message)
        r.add_delete(API + "/webhooks/{app_id}/{token}/messages/{message_id}", self._delete_webhook_message)
        r.add_post(API + "/webhooks/{app_id}/{token}", self._followup)
        r.add_get(API + "/channels/{channel_id}", self._get_channel)
        r.add_post(API + "/channels/{channel_id}/messages", self._create_message)
        r.add_get(API + "/channels/{channel_id}/messages", self._get_messages)
        r.add_get(API + "/channels/{channel_id}/messages/{message_id}", self._get_message)
        r.add_patch(API + "/channels/{channel_id}/messages/{message_id}", self._edit_message)
        r.add_post(API + "/channels/{channel_id}/messages/{message_id}/threads", self._thread_from_message)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        """Where READY tells the client to resume: another URL than the first, as on Discord."""
        return f"ws://127.0.0.1:{self.port}/resume-gateway"

    # --- test controls -----------------------------------------------------------------------

    def make_user(self, name: str) -> dict[str, Any]:
        user = {"id": str(self._ids()), "username": name, "discriminator": "0", "global_name": name,
                "avatar": None, "bot": False}
        self._users[user["id"]] = user
        return user

    def storm(self, count: int, retry_after: float = 0.05, route: str | None = None) -> None:
        """Answer the next `count` message edits with 429, however slow they come.

        With `route` (a substring of the request path, e.g. an interaction token or a channel
        id) only edits on that route are hit, as when one bucket is exhausted.
        """
        self._storm, self._storm_retry_after, self._storm_route = count, retry_after, route

    async def send_reconnect(self) -> None:
        """Op 7 RECONNECT: Discord asks the client to reconnect and resume."""
        if self._ws is not None:
            await self._send(self._ws, {"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_session(self, resumable: bool = True) -> None:
        """Op 9 INVALID_SESSION; with `resumable` the client may RESUME the same session."""
        if not resumable:
            self._session_id = None
        if self._ws is not None:
            await self._send(self._ws, {"op": 9, "d": resumable, "s": None, "t": None})

    # --- permissions -----------------------------------------------------------------------

    async def deny(self, channel_id: int, *names: str) -> None:
        """Deny the bot permissions in a channel (a member overwrite, as a server admin would)."""
        channel = self.channels[channel_id]
        bits = sum(PERMISSIONS[n] for n in names)
        overwrites = [o for o in channel["permission_overwrites"] if o["id"] != self.bot_user["id"]]
        overwrites.append({"id": self.bot_user["id"], "type": 1, "allow": "0", "deny": str(bits)})
        channel["permission_overwrites"] = overwrites
        await self.dispatch("CHANNEL_UPDATE", channel)
        await self._touch()

    def permissions(self, channel_id: int) -> int:
        """The bot's permissions in a channel; a thread has its parent's."""
        channel = self.channels[channel_id]
        if channel["type"] == 1:
            return sum(PERMISSIONS.values()) & ~PERMISSIONS["create_public_threads"]
        if channel["type"] in (10, 11, 12):
            channel = self.channels[int(channel["parent_id"])]
        value = EVERYONE_PERMISSIONS
        for overwrite in channel["permission_overwrites"]:  # @everyone first, then the member's
            if overwrite["id"] in (channel["guild_id"], self.bot_user["id"]):
                value = (value & ~int(overwrite["deny"])) | int(overwrite["allow"])
        if not value & PERMISSIONS["view_channel"]:
            return 0
        return value

    def _can(self, channel_id: int, name: str) -> bool:
        return bool(self.permissions(channel_id) & PERMISSIONS[name])

    def _require(self, channel_id: int, *names: str) -> None:
        if not self._can(channel_id, "view_channel"):
            raise HTTPError(403, 50001, "Missing Access")
        if not all(self._can(channel_id, n) for n in names):
            raise HTTPError(403, 50013, "Missing Permissions")

    def _is_thread(self, channel_id: int) -> bool:
        return self.channels[channel_id]["type"] in (10, 11, 12)

    def dm_channel(self, user: dict[str, Any]) -> int:
        """The DM channel between a user and the bot (created on first use)."""
        if user["id"] not in self.dm_channels:
            channel_id = self._ids()
            self.channels[channel_id] = {"id": str(channel_id), "type": 1, "last_message_id": None,
                                         "recipients": [user], "flags": 0}
            self.dm_channels[user["id"]] = channel_id
        return self.dm_channels[user["id"]]

    async def drop_gateway(self, code: int = 4000, *, hold: bool = False) -> None:
        """Close the gateway connection the way a network blip or a Discord restart does.

        With `hold`, a RESUME waits for `release_gateway()`, so events dispatched meanwhile are
        certainly missed by the client and must come back through the RESUME replay.
        """
        if hold:
            self._resume_allowed.clear()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(code=code, message=b"dropped by the test")
        await self._touch()

    def release_gateway(self) -> None:
        self._resume_allowed.set()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
        """Wait until `predicate()` holds; it is re-checked after every change the double sees."""
        async def until() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)
        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; violations: {self.violations}") from None

    def registered(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The commands a user in that guild (or a DM, for None) can see: the guild's and the global ones."""
        return [*(self.guild_commands.get(guild_id, []) if guild_id else []), *self.commands]

    def _command(self, name: str, kind: int, guild_id: int | None) -> dict[str, Any]:
        command = next((c for c in self.registered(guild_id) if c["name"] == name and c.get("type", 1) == kind), None)
        assert command is not None, f"the bot did not register {name!r} (type {kind}) where the user is"
        if guild_id is None:
            assert 1 in command.get("contexts", [0, 1, 2]), f"{name!r} is not allowed in DMs"
        return command

    async def _interact(self, user: dict[str, Any], channel_id: int, name: str, kind: int, data: dict[str, Any],
                        locale: str, message: dict[str, Any] | None = None) -> Interaction:
        channel = self.channels[channel_id]
        guild_id = int(channel["guild_id"]) if "guild_id" in channel else None
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        interaction = Interaction(self._ids(), token, name, user, channel_id, guild_id, kind, locale)
        self.interactions[token] = interaction
        # Apps always have Embed Links and Attach Files when they answer an interaction.
        app_permissions = self.permissions(channel_id) | PERMISSIONS["embed_links"] | PERMISSIONS["attach_files"]
        payload: dict[str, Any] = {
            "id": str(interaction.id), "application_id": str(self.app_id), "type": kind, "token": token,
            "version": 1, "data": data, "channel_id": channel["id"], "channel": channel,
            "app_permissions": str(app_permissions), "locale": locale, "entitlements": [],
            "attachment_size_limit": 8388608,
        }
        if guild_id is not None:
            payload.update(guild_id=str(guild_id), guild_locale="de", context=0,
                           member={**self._member(user), "permissions": ALL_PERMISSIONS},
                           authorizing_integration_owners={"0": str(guild_id)})
        else:
            payload.update(user=user, context=1, authorizing_integration_owners={"0": "0"})
        if message is not None:
            payload["message"] = message
        interaction.dispatched_at = self.clock.now()
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    async def slash(self, user: dict[str, Any], name: str, channel_id: int | None = None, *,
                    locale: str = "de", **options: str | int) -> Interaction:
        """A user runs a slash command the bot registered (Discord's client enforces max_length)."""
        channel_id = channel_id or self.channel_id
        channel = self.channels[channel_id]
        command = self._command(name, 1, int(channel["guild_id"]) if "guild_id" in channel else None)
        declared = {o["name"]: o for o in command.get("options", [])}
        for key, value in options.items():
            option = declared[key]
            assert not isinstance(value, str) or len(value) <= option.get("max_length", 6000), \
                "Discord's client refuses longer input"
            assert isinstance(value, str) or option.get("min_value", value) <= value <= option.get("max_value", value), \
                "Discord's client refuses numbers out of range"
        data = {"id": command["id"], "name": name, "type": 1,
                "options": [{"name": k, "type": declared[k]["type"], "value": v} for k, v in options.items()]}
        if "guild_id" in command:  # Discord names the guild a guild command is registered in
            data["guild_id"] = command["guild_id"]
        return await self._interact(user, channel_id, name, 2, data, locale)

    async def message_command(self, user: dict[str, Any], name: str, message_id: int, *,
                              locale: str = "de") -> Interaction:
        """A user picks a message context-menu command (Apps → name) on a message.

        Discord sends the target message in full, whatever intents the bot has.
        """
        target = self.messages[message_id]
        channel_id = int(target["channel_id"])
        channel = self.channels[channel_id]
        command = self._command(name, 3, int(channel["guild_id"]) if "guild_id" in channel else None)
        data = {"id": command["id"], "name": name, "type": 3, "target_id": str(message_id),
                "resolved": {"messages": {str(message_id): target}}}
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return await self._interact(user, channel_id, name, 2, data, locale)

    async def click(self, user: dict[str, Any], message_id: int, custom_id: str | None = None, *,
                    locale: str = "de") -> Interaction:
        """A user clicks a button on a message (the first button unless `custom_id` names one)."""
        message = self.messages[message_id]
        buttons = [c for row in message.get("components", []) for c in row.get("components", []) if c["type"] == 2]
        button = next((b for b in buttons if custom_id in (None, b.get("custom_id"))), None)
        assert button is not None, f"no button {custom_id!r} on message {message_id}"
        data = {"custom_id": button["custom_id"], "component_type": 2}
        return await self._interact(user, int(message["channel_id"]), button["custom_id"], 3, data, locale,
                                    message=message)

    async def user_message(
        self, user: dict[str, Any], content: str, channel_id: int | None = None, *,
        mention_bot: bool = False, reply_to: int | None = None, ping_reply: bool = True,
    ) -> dict[str, Any]:
        """A user posts a message; `mention_bot` prefixes an @mention of the bot."""
        channel_id = channel_id or self.channel_id
        channel = self.channels[channel_id]
        mentions = []
        if mention_bot:
            content = f"<@{self.app_id}> {content}"
            mentions.append(self.bot_user)
        reference = None
        if reply_to is not None:
            replied = self.messages[reply_to]
            reference = {"message_id": str(reply_to), "channel_id": replied["channel_id"]}
            if "guild_id" in channel:
                reference["guild_id"] = channel["guild_id"]
            if ping_reply and replied["author"] not in mentions:
                mentions.append(replied["author"])
        message = self._message(channel_id, user, content, [], mentions=mentions, reference=reference)
        await self._post(message)
        return message

    # --- queries for assertions ----------------------------------------------------------------

    def contents(self, message_id: int | None) -> list[str]:
        """Every content the message showed, oldest first."""
        return [v["content"] for v in self.versions.get(message_id or 0, [])]

    def channel_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    def bot_messages(self, channel_id: int) -> list[dict[str, Any]]:
        """The bot's messages everyone in the channel sees (not ephemeral ones)."""
        return [m for m in self.channel_messages(channel_id)
                if m["author"]["id"] == self.bot_user["id"] and not m["flags"] & EPHEMERAL]

    def answer_messages(self, interaction: Interaction) -> list[dict[str, Any]]:
        ids = [interaction.original_id, *interaction.followup_ids]
        return [self.messages[i] for i in ids if i is not None]

    # --- gateway -----------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send an event, or keep it for the RESUME of a dropped connection."""
        if self._session_id is None:
            return
        self._seq += 1
        frame = {"op": 0, "t": event, "s": self._seq, "d": data}
        self._events.append(frame)
        if self._ws is not None:
            await self._send(self._ws, frame)

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        async with self._ws_lock:
            if not ws.closed:
                await ws.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        path = request.path
        await self._send(ws, {"op": 10, "d": {"heartbeat_interval": int(self.heartbeat_interval_s * 1000)},
                              "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                if op == 1:
                    self.heartbeats.append(time.monotonic())
                    await self._send(ws, {"op": 11, "d": None, "s": None, "t": None})
                    await self._touch()
                elif op == 2:
                    self.gateway_paths.append((path, "identify"))
                    await self._identify(ws, data)
                elif op == 6:
                    self.gateway_paths.append((path, "resume"))
                    await self._resume(ws, data)
        finally:
            if self._ws is ws:
                self._ws = None
                await self._touch()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & MESSAGE_CONTENT_INTENT and not self.allow_message_content:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        self.identifies += 1
        self._intents = intents
        self._session_id, self._seq, self._events = secrets.token_hex(16), 0, []
        self._ws = ws
        await self.dispatch("READY", {
            "v": 10, "user": self.bot_user, "session_id": self._session_id, "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url, "application": {"id": str(self.app_id), "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in (self.guild_id, self.other_guild_id)],
            "private_channels": [], "relationships": [],
        })
        for guild_id in (self.guild_id, self.other_guild_id):
            await self.dispatch("GUILD_CREATE", self._guild(guild_id))
        await self._touch()

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if data.get("session_id") != self._session_id:
            await self._send(ws, {"op": 9, "d": False, "s": None, "t": None})
            return
        await self._resume_allowed.wait()
        self.resumes += 1
        self._ws = ws
        seen = data.get("seq") or 0
        for frame in [f for f in self._events if f["s"] > seen]:
            await self._send(ws, frame)
        await self.dispatch("RESUMED", {})
        await self._touch()

    # --- REST --------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        path = request.path
        bucket = self._bucket(request) if path.startswith(API) else None
        try:
            needs_bot_auth = path.startswith(API) and not path.startswith((API + "/webhooks/", API + "/interactions/"))
            if needs_bot_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise HTTPError(401, 0, "401: Unauthorized")
            if bucket is not None:
                wait = bucket.take(time.monotonic())
                if wait is not None:
                    self.over_limit += 1
                    _log.warning("A request went beyond its rate-limit bucket %s", bucket.name)
                    raise _RateLimited(wait)
            try:
                response = await handler(request)
            except _RateLimited:
                if bucket is not None:  # a rejected request uses no slot
                    bucket.used -= 1
                raise
        except _RateLimited as exc:
            response = exc.response()
        except HTTPError as exc:
            if exc.status == 400:
                self._violation(f"{request.method} {path}: {exc.body}")
            response = _json(exc.body, status=exc.status)
        except web.HTTPException as exc:
            response = _json({"code": 0, "message": exc.reason}, status=exc.status)
        if bucket is not None:
            response.headers.update(bucket.headers(time.monotonic()))
        self.requests.append((request.method, path, response.status))
        await self._touch()
        return response

    def _bucket(self, request: web.Request) -> _Bucket:
        """Discord's buckets: one per route, per major parameter (channel; webhook id + token)."""
        parts = request.path[len(API):].strip("/").split("/")
        major: tuple[str, ...] = ()
        if parts[0] == "channels" and len(parts) > 1:
            major = (parts[1],)
        elif parts[0] in ("webhooks", "interactions") and len(parts) > 2:
            major = (parts[1], parts[2])
        template = "/".join("{}" if part in major or part.isdigit() else part for part in parts)
        key = (request.method, template, *major)
        if key not in self._buckets:
            name = hashlib.sha1(f"{request.method} {template}".encode()).hexdigest()[:16]
            self._buckets[key] = _Bucket(self.bucket_limit, self.bucket_window_s, name)
        return self._buckets[key]

    async def _body(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return await request.json()
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            return json.loads(str(form["payload_json"]))
        return {}

    async def _get_gateway(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url})

    async def _get_gateway_bot(self, request: web.Request) -> web.Response:
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json(self.bot_user)

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json({
            "id": str(self.app_id), "name": "newsbot", "icon": None, "description": "", "summary": "",
            "rpc_origins": [], "bot_public": True, "bot_require_code_grant": False, "owner": self.owner,
            "verify_key": "0" * 64, "team": None, "flags": 0, "interactions_endpoint_url": None,
            "bot": self.bot_user,
        })

    async def _put_commands(self, request: web.Request) -> web.Response:
        body = await request.json()
        commands = []
        for i, command in enumerate(body):
            errors = _command_errors(command)
            if errors:
                raise HTTPError(400, 50035, "Invalid Form Body", {str(i): errors})
            commands.append({**command, "id": str(self._ids()), "application_id": str(self.app_id),
                             "version": str(self._ids()), "type": command.get("type", 1),
                             "description": command.get("description", ""), "options": command.get("options", []),
                             "default_member_permissions": None if command.get("default_member_permissions") is None
                             else str(command["default_member_permissions"]),
                             "contexts": command.get("contexts"), "nsfw": False})
        if "guild_id" in request.match_info:
            guild_id = int(request.match_info["guild_id"])
            for command in commands:
                command["guild_id"] = str(guild_id)
            self.guild_commands[guild_id] = commands
        else:
            self.commands = commands
        return _json(commands)

    async def _get_commands(self, request: web.Request) -> web.Response:
        if "guild_id" in request.match_info:
            return _json(self.guild_commands.get(int(request.match_info["guild_id"]), []))
        return _json(self.commands)

    async def _create_dm(self, request: web.Request) -> web.Response:
        data = await self._body(request)
        user = next((u for u in self._users.values() if u["id"] == str(data.get("recipient_id"))), None)
        if user is None:
            raise HTTPError(400, 50035, "Invalid Form Body", {"recipient_id": "Unknown user"})
        return _json(self.channels[self.dm_channel(user)])

    def _interaction(self, request: web.Request) -> Interaction:
        interaction = self.interactions.get(request.match_info["token"])
        if interaction is None or self.clock.now() - interaction.dispatched_at > INTERACTION_TOKEN_TTL_S:
            raise HTTPError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(request.match_info["token"])
        if interaction is None or str(interaction.id) != request.match_info["id"]:
            raise HTTPError(404, 10062, "Unknown interaction")
        late = self.clock.now() - interaction.dispatched_at
        if late > self.interaction_deadline_s:
            self._violation(f"/{interaction.name} acknowledged after {late:.2f} s")
            raise HTTPError(404, 10062, "Unknown interaction")
        if interaction.response_type is not None:
            raise HTTPError(400, 40060, "Interaction has already been acknowledged.")
        body = await self._body(request)
        kind, data = body.get("type"), body.get("data") or {}
        if kind == 4:
            self._validate(data)
            flags = int(data.get("flags", 0))
            message = self._message(interaction.channel_id, self.bot_user, data.get("content", ""),
                                    data.get("embeds", []), flags=flags, webhook=True,
                                    components=data.get("components") or [])
        elif kind == 5:
            flags = int(data.get("flags", 0)) | LOADING
            message = self._message(interaction.channel_id, self.bot_user, "", [], flags=flags, webhook=True)
        else:
            raise HTTPError(400, 50035, "Invalid Form Body", {"type": kind})
        self._check_mentions(data)
        interaction.response_type = kind
        interaction.original_id = int(message["id"])
        await self._post(message)
        return _json({
            "interaction": {"id": str(interaction.id), "type": 2, "response_message_id": message["id"],
                            "response_message_loading": kind == 5,
                            "response_message_ephemeral": bool(message["flags"] & EPHEMERAL)},
            "resource": {"type": kind, **({"message": message} if kind == 4 else {})},
        })

    def _webhook_message_id(self, interaction: Interaction, request: web.Request) -> int:
        raw = request.match_info["message_id"]
        message_id = interaction.original_id if raw == "@original" else int(raw)
        if message_id is None or message_id not in self.messages or (
            message_id != interaction.original_id and message_id not in interaction.followup_ids
        ):
            raise HTTPError(404, 10008, "Unknown Message")
        return message_id

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        return _json(self.messages[self._webhook_message_id(interaction, request)])

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        message_id = self._webhook_message_id(interaction, request)
        return _json(await self._edit(message_id, await self._body(request), request.path))

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        del self.messages[self._webhook_message_id(interaction, request)]
        return web.Response(status=204)

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interaction(request)
        if interaction.response_type is None:
            raise HTTPError(404, 10015, "Unknown Webhook")  # follow-ups need the interaction acknowledged
        data = await self._body(request)
        self._validate(data)
        self._check_mentions(data)
        message = self._message(interaction.channel_id, self.bot_user, data.get("content", ""), data.get("embeds", []),
                                flags=int(data.get("flags", 0)), webhook=True, components=data.get("components") or [])
        interaction.followup_ids.append(int(message["id"]))
        await self._post(message)
        return _json(message)

    def _channel(self, request: web.Request) -> dict[str, Any]:
        channel = self.channels.get(int(request.match_info["channel_id"]))
        if channel is None:
            raise HTTPError(404, 10003, "Unknown Channel")
        return channel

    async def _get_channel(self, request: web.Request) -> web.Response:
        return _json(self._channel(request))

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        channel_id = int(channel["id"])
        data = await self._body(request)
        reference = data.get("message_reference")
        if channel["type"] == 1 and channel["recipients"][0]["id"] in self.dms_closed:
            raise HTTPError(403, 50007, "Cannot send messages to this user")
        self._require(channel_id, "send_messages_in_threads" if self._is_thread(channel_id) else "send_messages",
                      *(["read_message_history"] if reference is not None else []))
        data = self._without_embeds_unless_allowed(channel_id, data)
        self._validate(data)
        self._check_mentions(data)
        if reference is not None and int(reference["message_id"]) not in self.messages:
            raise HTTPError(400, 50035, "Invalid Form Body", {"message_reference": "Unknown message"})
        if reference is not None:  # discord.py sends ids as numbers; Discord answers with strings
            reference = {"message_id": str(reference["message_id"]), "channel_id": channel["id"]}
            if "guild_id" in channel:
                reference["guild_id"] = channel["guild_id"]
        message = self._message(channel_id, self.bot_user, data.get("content", ""), data.get("embeds", []),
                                reference=reference, components=data.get("components") or [])
        await self._post(message)
        return _json(message)

    async def _get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        self._require(int(channel["id"]), "read_message_history")
        message = self.messages.get(int(request.match_info["message_id"]))
        if message is None or message["channel_id"] != channel["id"] or message["flags"] & EPHEMERAL:
            raise HTTPError(404, 10008, "Unknown Message")
        return _json(self._as_seen(message, self.allow_message_content))

    async def _get_messages(self, request: web.Request) -> web.Response:
        """Channel history, newest first; without Read Message History Discord returns none."""
        channel = self._channel(request)
        channel_id = int(channel["id"])
        self._require(channel_id)
        if not self._can(channel_id, "read_message_history"):
            return _json([])
        limit = max(1, min(100, int(request.query.get("limit", 50))))
        found = sorted((m for m in self.channel_messages(channel_id) if not m["flags"] & EPHEMERAL),
                       key=lambda m: int(m["id"]), reverse=True)
        if "before" in request.query:
            found = [m for m in found if int(m["id"]) < int(request.query["before"])]
        if "after" in request.query:
            found = sorted((m for m in found if int(m["id"]) > int(request.query["after"])),
                           key=lambda m: int(m["id"]))[:limit][::-1]
        return _json([self._as_seen(m, self.allow_message_content) for m in found[:limit]])

    async def _edit_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        message_id = int(request.match_info["message_id"])
        if message_id not in self.messages:
            raise HTTPError(404, 10008, "Unknown Message")
        if self.messages[message_id]["author"]["id"] != self.bot_user["id"]:
            raise HTTPError(403, 50005, "Cannot edit a message authored by another user")
        channel_id = int(request.match_info["channel_id"])
        self._require(channel_id)
        data = self._without_embeds_unless_allowed(channel_id, await self._body(request))
        return _json(await self._edit(message_id, data, request.path))

    def _without_embeds_unless_allowed(self, channel_id: int, data: dict[str, Any]) -> dict[str, Any]:
        """Without Embed Links Discord accepts a bot's message but silently drops its embeds."""
        if data.get("embeds") and not self._can(channel_id, "embed_links"):
            return {**data, "embeds": []}
        return data

    async def _thread_from_message(self, request: web.Request) -> web.Response:
        parent = self._channel(request)
        self._require(int(parent["id"]), "create_public_threads")
        message_id = int(request.match_info["message_id"])
        if message_id not in self.messages:
            raise HTTPError(404, 10008, "Unknown Message")
        if message_id in self.channels:
            raise HTTPError(400, 160004, "A thread has already been created for this message")
        data = await self._body(request)
        name = data.get("name", "")
        if not 1 <= len(name) <= 100:
            raise HTTPError(400, 50035, "Invalid Form Body", {"name": "Must be between 1 and 100 in length."})
        archive = data.get("auto_archive_duration", 4320)
        if archive not in ARCHIVE_DURATIONS:
            raise HTTPError(400, 50035, "Invalid Form Body",
                            {"auto_archive_duration": f"Value must be one of {sorted(ARCHIVE_DURATIONS)}."})
        thread = {  # a thread started from a message has the message's id
            "id": str(message_id), "type": 11, "guild_id": parent["guild_id"], "parent_id": parent["id"],
            "owner_id": self.bot_user["id"], "name": name, "message_count": 0, "member_count": 1,
            "total_message_sent": 0, "rate_limit_per_user": 0, "flags": 0, "last_message_id": None,
            "thread_metadata": {"archived": False, "locked": False, "archive_timestamp": _now_iso(),
                                "auto_archive_duration": archive},
        }
        self.channels[message_id] = thread
        self.messages[message_id]["thread"] = thread
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    # --- what Discord enforces ---------------------------------------------------------------

    def _validate(self, data: dict[str, Any], *, edit: bool = False) -> None:
        errors: dict[str, Any] = {}
        content = data.get("content")
        if content is not None and len(content) > CONTENT_LIMIT:
            errors["content"] = f"Must be {CONTENT_LIMIT} or fewer in length (got {len(content)})."
        embeds = data.get("embeds") or []
        if len(embeds) > EMBEDS_LIMIT:
            errors["embeds"] = f"Must be {EMBEDS_LIMIT} or fewer in length."
        total = 0
        for i, embed in enumerate(embeds):
            sizes = {
                "title": len(embed.get("title") or ""),
                "description": len(embed.get("description") or ""),
                "footer.text": len((embed.get("footer") or {}).get("text") or ""),
                "author.name": len((embed.get("author") or {}).get("name") or ""),
            }
            for key, size in sizes.items():
                if size > EMBED_LIMITS[key]:
                    errors[f"embeds.{i}.{key}"] = f"Must be {EMBED_LIMITS[key]} or fewer in length."
            fields = embed.get("fields") or []
            if len(fields) > FIELDS_LIMIT:
                errors[f"embeds.{i}.fields"] = f"Must be {FIELDS_LIMIT} or fewer in length."
            for j, f in enumerate(fields):
                for key in ("name", "value"):
                    if not (f.get(key) or "").strip():
                        errors[f"embeds.{i}.fields.{j}.{key}"] = "This field is required"
                if not 1 <= len(f.get("name") or "") <= FIELD_NAME:
                    errors[f"embeds.{i}.fields.{j}.name"] = f"Must be between 1 and {FIELD_NAME} in length."
                if not 1 <= len(f.get("value") or "") <= FIELD_VALUE:
                    errors[f"embeds.{i}.fields.{j}.value"] = f"Must be between 1 and {FIELD_VALUE} in length."
                total += len(f.get("name") or "") + len(f.get("value") or "")
            total += sum(sizes.values())
        if total > EMBED_TOTAL:
            errors["embeds"] = f"Embed size exceeds maximum size of {EMBED_TOTAL} (got {total})."
        if errors:
            raise HTTPError(400, 50035, "Invalid Form Body", errors)
        if not edit and not ((content or "").strip() or embeds or data.get("components")):
            raise HTTPError(400, 50006, "Cannot send an empty message")

    def _check_mentions(self, data: dict[str, Any]) -> None:
        """Anything but `{"parse": []}` could ping someone (the default pings everyone named)."""
        mentions = data.get("allowed_mentions")
        if mentions is None or mentions.get("parse") or mentions.get("users") or mentions.get("roles") \
                or mentions.get("replied_user"):
            if data.get("content") or data.get("embeds"):
                self._violation(f"message may ping: allowed_mentions={mentions!r}")

    def _rate_limit(self, message_id: int, path: str) -> None:
        now = time.monotonic()
        if self._storm > 0 and (self._storm_route is None or self._storm_route in path):
            self._storm -= 1
            retry_after = self._storm_retry_after
        else:
            since = now - self._last_edit.get(message_id, float("-inf"))
            if since >= self.min_edit_interval_s:
                self._last_edit[message_id] = now
                return
            retry_after = self.min_edit_interval_s - since
            self._violation(f"message {message_id} edited again after {since:.3f} s")
        self.rate_limited += 1
        raise _RateLimited(retry_after)

    async def _edit(self, message_id: int, data: dict[str, Any], path: str) -> dict[str, Any]:
        self._rate_limit(message_id, path)
        self._validate(data, edit=True)
        self._check_mentions(data)
        message = self.messages[message_id]
        if "content" in data and data["content"] is not None and not data["content"].strip() \
                and not (data.get("embeds") or message["embeds"]):
            raise HTTPError(400, 50006, "Cannot send an empty message")
        for key in ("content", "embeds", "components"):
            if key in data and data[key] is not None:
                message[key] = data[key]
        if not (message["content"].strip() or message["embeds"] or message["components"]):
            raise HTTPError(400, 50006, "Cannot send an empty message")
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = _now_iso()
        self._record(message)
        return message

    # --- payloads ----------------------------------------------------------------------------

    def _add_channel(self, guild_id: int, name: str) -> int:
        channel_id = self._ids()
        self.channels[channel_id] = {
            "id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": name, "position": len(self.channels),
            "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None, "last_message_id": None,
            "rate_limit_per_user": 0,
        }
        return channel_id

    def _member(self, user: dict[str, Any]) -> dict[str, Any]:
        return {"user": user, "roles": [], "joined_at": _now_iso(), "deaf": False, "mute": False, "flags": 0,
                "nick": None, "avatar": None, "pending": False}

    def _guild(self, guild_id: int) -> dict[str, Any]:
        return {
            "id": str(guild_id), "name": f"Gilde {guild_id % 1000}", "icon": None, "owner_id": self.owner["id"],
            "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": str(EVERYONE_PERMISSIONS), "position": 0,
                       "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
            "emojis": [], "stickers": [], "features": [], "member_count": 2, "large": False, "unavailable": False,
            "members": [self._member(self.bot_user)], "presences": [], "voice_states": [],
            "threads": [c for c in self.channels.values() if c.get("guild_id") == str(guild_id) and c["type"] == 11
                        and not c["thread_metadata"]["archived"]],
            "channels": [c for c in self.channels.values() if c.get("guild_id") == str(guild_id) and c["type"] == 0],
            "joined_at": _now_iso(), "preferred_locale": "de", "afk_timeout": 300, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
            "premium_tier": 0, "system_channel_flags": 0, "premium_progress_bar_enabled": False,
        }

    def _message(
        self, channel_id: int, author: dict[str, Any], content: str, embeds: list[dict[str, Any]], *,
        flags: int = 0, mentions: list[dict[str, Any]] | None = None, reference: dict[str, Any] | None = None,
        webhook: bool = False, components: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        channel = self.channels[channel_id]
        message = {
            "id": str(self._ids()), "channel_id": str(channel_id),
            "author": author, "content": content, "embeds": embeds,
            "timestamp": _now_iso(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": mentions or [], "mention_roles": [], "attachments": [], "components": components or [],
            "pinned": False,
            "type": 19 if reference else 0, "flags": flags,
        }
        if "guild_id" in channel:  # DMs have neither
            message.update(guild_id=channel["guild_id"], member=self._member(author))
        if reference:
            message["message_reference"] = {"type": 0, **reference}
            message["referenced_message"] = self.messages.get(int(reference["message_id"]))
        if webhook:
            message["webhook_id"] = str(self.app_id)
            message["application_id"] = str(self.app_id)
        if channel["type"] == 11:
            channel["message_count"] = channel.get("message_count", 0) + 1
        return message

    def _record(self, message: dict[str, Any]) -> None:
        self.versions.setdefault(int(message["id"]), []).append(
            {"content": message["content"], "embeds": message["embeds"], "at": time.monotonic()})

    async def _post(self, message: dict[str, Any]) -> None:
        """Store a new message and tell the gateway, as Discord would (ephemeral ones stay private)."""
        self.messages[int(message["id"])] = message
        self._record(message)
        if message["flags"] & EPHEMERAL:
            return
        if not self._can(int(message["channel_id"]), "view_channel"):
            return  # the gateway only tells the bot about channels it can see
        await self.dispatch("MESSAGE_CREATE", self._as_seen(message, bool(self._intents & MESSAGE_CONTENT_INTENT)))

    def _as_seen(self, message: dict[str, Any], content_allowed: bool) -> dict[str, Any]:
        """A message as the bot receives it: without the message-content privilege, content
        only of its own messages, of messages that mention it and of DMs."""
        seen = dict(message)
        bot_may_read = (
            content_allowed
            or message["author"]["id"] == self.bot_user["id"]
            or any(m["id"] == self.bot_user["id"] for m in message["mentions"])
            or "guild_id" not in message
        )
        if not bot_may_read:
            seen.update(content="", embeds=[], attachments=[], components=[])
        if isinstance(message.get("referenced_message"), dict):
            seen["referenced_message"] = self._as_seen(message["referenced_message"], content_allowed)
        return seen

    def _violation(self, what: str) -> None:
        _log.warning("Discord would object: %s", what)
        self.violations.append(what)

    async def _touch(self) -> None:
        async with self._changed:
            self._changed.notify_all()


_LOCALES = {"id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl",
            "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja",
            "zh-TW", "ko"}
_CHAT_NAME = re.compile(r"^[-_\w]{1,32}$")


def _name_errors(name: str, kind: int) -> str | None:
    if kind == 1 and not (_CHAT_NAME.match(name) and name == name.lower()):
        return f"Command name {name!r} is invalid (lower case, no spaces, at most 32)."
    if kind != 1 and not 1 <= len(name) <= 32:
        return f"Command name {name!r} must be between 1 and 32 in length."
    return None


def _command_errors(command: dict[str, Any]) -> dict[str, Any]:
    """What Discord's validation of an application command says (a subset)."""
    errors: dict[str, Any] = {}
    kind = command.get("type", 1)
    names = {None: command.get("name", ""), **(command.get("name_localizations") or {})}
    for locale, name in names.items():
        if locale is not None and locale not in _LOCALES:
            errors[f"name_localizations.{locale}"] = "Invalid locale"
        elif (problem := _name_errors(name, kind)) is not None:
            errors[f"name_localizations.{locale}" if locale else "name"] = problem
    descriptions = {None: command.get("description", ""), **(command.get("description_localizations") or {})}
    for locale, description in descriptions.items():
        if kind == 1 and not 1 <= len(description) <= 100:
            errors[f"description_localizations.{locale}" if locale else "description"] = "1 to 100 characters"
        if kind != 1 and description:
            errors["description"] = "Context menu commands cannot have a description"
    for j, option in enumerate(command.get("options") or []):
        for name in [option.get("name", ""), *(option.get("name_localizations") or {}).values()]:
            if (problem := _name_errors(name, 1)) is not None:
                errors[f"options.{j}.name"] = problem
        if "max_length" in option and not 1 <= option["max_length"] <= 6000:
            errors[f"options.{j}.max_length"] = "Must be between 1 and 6000."
    for context in command.get("contexts") or []:
        if context not in (0, 1, 2):
            errors["contexts"] = "Invalid interaction context"
    return errors


class _RateLimited(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after

    def response(self) -> web.Response:
        retry_after = round(self.retry_after, 3)
        return _json(
            {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
            status=429,
            headers={"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Scope": "user",
                     "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": str(retry_after)},
        )
