"""A loopback Discord API double: enough REST and gateway for the bot's real discord.py client.

It listens on 127.0.0.1 (a free port) and serves `/api/v10/...` plus a gateway websocket. It
enforces what Discord enforces, so the tests fail the way production would:

- message content <= 2000 characters, the embed limits, no empty messages (HTTP 400, 50035/50006);
- the 3 s deadline for acknowledging an interaction (HTTP 404, 10062) and one ack only (40060);
- 429 with `retry_after` (and the `Via` header discord.py expects) when one message is edited
  faster than `min_edit_interval`, or while a forced "429 storm" lasts;
- the bot token on REST (401) and on IDENTIFY (close 4004), the privileged message-content
  intent (close 4014 unless allowed), and stripped message content for messages that do not
  mention the bot when that intent is missing.

The gateway speaks HELLO / IDENTIFY / READY / GUILD_CREATE / heartbeats / RESUME (replaying the
events the client missed) and can be dropped on demand. What the bot did is recorded for
assertions: messages with every version, interactions, heartbeats, and `violations` (anything
Discord would have rejected or that pinged someone).
"""

from __future__ import annotations

import asyncio
import json
import logging
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


class _Snowflakes:
    def __init__(self) -> None:
        self._last = 0

    def __call__(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(value, self._last + 1)
        return self._last


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
    ) -> None:
        self.token = token
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
        self.commands: list[dict[str, Any]] = []
        self.heartbeats: list[float] = []
        self.identifies = 0
        self.resumes = 0
        self.rate_limited = 0  # 429 responses sent
        self.violations: list[str] = []  # what Discord would reject, or a ping
        self.requests: list[tuple[str, str, int]] = []
        self._storm = 0
        self._storm_retry_after = 0.05
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
        r = app.router
        r.add_get(API + "/gateway", self._get_gateway)
        r.add_get(API + "/gateway/bot", self._get_gateway_bot)
        r.add_get(API + "/users/@me", self._get_me)
        r.add_get(API + "/oauth2/applications/@me", self._get_application)
        r.add_put(API + "/applications/{app_id}/commands", self._put_commands)
        r.add_get(API + "/applications/{app_id}/commands", self._get_commands)
        r.add_put(API + "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands)
        r.add_post(API + "/interactions/{id}/{token}/callback", self._interaction_callback)
        r.add_get(API + "/webhooks/{app_id}/{token}/messages/{message_id}", self._get_webhook_message)
        r.add_patch(API + "/webhooks/{app_id}/{token}/messages/{message_id}", self._edit_webhook_message)
        r.add_delete(API + "/webhooks/{app_id}/{token}/messages/{message_id}", self._delete_webhook_message)
        r.add_post(API + "/webhooks/{app_id}/{token}", self._followup)
        r.add_get(API + "/channels/{channel_id}", self._get_channel)
        r.add_post(API + "/channels/{channel_id}/messages", self._create_message)
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

    # --- test controls -----------------------------------------------------------------------

    def make_user(self, name: str) -> dict[str, Any]:
        return {"id": str(self._ids()), "username": name, "discriminator": "0", "global_name": name,
                "avatar": None, "bot": False}

    def storm(self, count: int, retry_after: float = 0.05) -> None:
        """Answer the next `count` message edits with 429, however slow they come."""
        self._storm, self._storm_retry_after = count, retry_after

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

    async def slash(self, user: dict[str, Any], name: str, channel_id: int | None = None, **options: str) -> Interaction:
        """A user runs a slash command the bot registered."""
        command = next((c for c in self.commands if c["name"] == name), None)
        assert command is not None, f"the bot did not register /{name}"
        channel = self.channels[channel_id or self.channel_id]
        guild_id = int(channel["guild_id"])
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        interaction = Interaction(self._ids(), token, name, user, int(channel["id"]), guild_id)
        self.interactions[token] = interaction
        types = {o["name"]: o["type"] for o in command.get("options", [])}
        payload = {
            "id": str(interaction.id), "application_id": str(self.app_id), "type": 2, "token": token, "version": 1,
            "data": {"id": command["id"], "name": name, "type": 1,
                     "options": [{"name": k, "type": types[k], "value": v} for k, v in options.items()]},
            "guild_id": str(guild_id), "channel_id": channel["id"], "channel": channel,
            "member": {**self._member(user), "permissions": ALL_PERMISSIONS},
            "app_permissions": ALL_PERMISSIONS, "locale": "de", "guild_locale": "de", "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)}, "context": 0, "attachment_size_limit": 8388608,
        }
        interaction.dispatched_at = time.monotonic()
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

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
            reference = {"message_id": str(reply_to), "channel_id": replied["channel_id"], "guild_id": channel["guild_id"]}
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
                    await self._identify(ws, data)
                elif op == 6:
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
            "resume_gateway_url": self.gateway_url, "application": {"id": str(self.app_id), "flags": 0},
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
        try:
            needs_bot_auth = path.startswith(API) and not path.startswith((API + "/webhooks/", API + "/interactions/"))
            if needs_bot_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise HTTPError(401, 0, "401: Unauthorized")
            response = await handler(request)
        except _RateLimited as exc:
            response = exc.response()
        except HTTPError as exc:
            if exc.status == 400:
                self._violation(f"{request.method} {path}: {exc.body}")
            response = _json(exc.body, status=exc.status)
        except web.HTTPException as exc:
            response = _json({"code": 0, "message": exc.reason}, status=exc.status)
        self.requests.append((request.method, path, response.status))
        await self._touch()
        return response

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
        for command in body:
            if not 1 <= len(command.get("name", "")) <= 32 or not 1 <= len(command.get("description", "")) <= 100:
                raise HTTPError(400, 50035, "Invalid Form Body", {"name": command.get("name")})
            commands.append({**command, "id": str(self._ids()), "application_id": str(self.app_id),
                             "version": str(self._ids()), "type": command.get("type", 1),
                             "default_member_permissions": None, "dm_permission": True, "nsfw": False})
        self.commands = commands
        return _json(commands)

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self.commands)

    def _interaction(self, request: web.Request) -> Interaction:
        interaction = self.interactions.get(request.match_info["token"])
        if interaction is None or time.monotonic() - interaction.dispatched_at > INTERACTION_TOKEN_TTL_S:
            raise HTTPError(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _interaction_callback(self, request: web.Request) -> web.Response:
        interaction = self.interactions.get(request.match_info["token"])
        if interaction is None or str(interaction.id) != request.match_info["id"]:
            raise HTTPError(404, 10062, "Unknown interaction")
        late = time.monotonic() - interaction.dispatched_at
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
                                    data.get("embeds", []), flags=flags, webhook=True)
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
        return _json(await self._edit(message_id, await self._body(request)))

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
                                flags=int(data.get("flags", 0)), webhook=True)
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
        data = await self._body(request)
        self._validate(data)
        self._check_mentions(data)
        reference = data.get("message_reference")
        if reference is not None and int(reference["message_id"]) not in self.messages:
            raise HTTPError(400, 50035, "Invalid Form Body", {"message_reference": "Unknown message"})
        if reference is not None:  # discord.py sends ids as numbers; Discord answers with strings
            reference = {"message_id": str(reference["message_id"]), "channel_id": channel["id"],
                         "guild_id": channel["guild_id"]}
        message = self._message(int(channel["id"]), self.bot_user, data.get("content", ""), data.get("embeds", []),
                                reference=reference)
        await self._post(message)
        return _json(message)

    async def _get_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        message = self.messages.get(int(request.match_info["message_id"]))
        if message is None:
            raise HTTPError(404, 10008, "Unknown Message")
        return _json(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        message_id = int(request.match_info["message_id"])
        if message_id not in self.messages:
            raise HTTPError(404, 10008, "Unknown Message")
        if self.messages[message_id]["author"]["id"] != self.bot_user["id"]:
            raise HTTPError(403, 50005, "Cannot edit a message authored by another user")
        return _json(await self._edit(message_id, await self._body(request)))

    async def _thread_from_message(self, request: web.Request) -> web.Response:
        parent = self._channel(request)
        message_id = int(request.match_info["message_id"])
        if message_id not in self.messages:
            raise HTTPError(404, 10008, "Unknown Message")
        if message_id in self.channels:
            raise HTTPError(400, 160004, "A thread has already been created for this message")
        data = await self._body(request)
        name = data.get("name", "")
        if not 1 <= len(name) <= 100:
            raise HTTPError(400, 50035, "Invalid Form Body", {"name": "Must be between 1 and 100 in length."})
        thread = {  # a thread started from a message has the message's id
            "id": str(message_id), "type": 11, "guild_id": parent["guild_id"], "parent_id": parent["id"],
            "owner_id": self.bot_user["id"], "name": name, "message_count": 0, "member_count": 1,
            "total_message_sent": 0, "rate_limit_per_user": 0, "flags": 0, "last_message_id": None,
            "thread_metadata": {"archived": False, "locked": False, "archive_timestamp": _now_iso(),
                                "auto_archive_duration": data.get("auto_archive_duration", 1440)},
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
        if not edit and not (content or embeds):
            raise HTTPError(400, 50006, "Cannot send an empty message")

    def _check_mentions(self, data: dict[str, Any]) -> None:
        """Anything but `{"parse": []}` could ping someone (the default pings everyone named)."""
        mentions = data.get("allowed_mentions")
        if mentions is None or mentions.get("parse") or mentions.get("users") or mentions.get("roles") \
                or mentions.get("replied_user"):
            if data.get("content") or data.get("embeds"):
                self._violation(f"message may ping: allowed_mentions={mentions!r}")

    def _rate_limit(self, message_id: int) -> None:
        now = time.monotonic()
        if self._storm > 0:
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

    async def _edit(self, message_id: int, data: dict[str, Any]) -> dict[str, Any]:
        self._rate_limit(message_id)
        self._validate(data, edit=True)
        self._check_mentions(data)
        message = self.messages[message_id]
        for key in ("content", "embeds"):
            if key in data and data[key] is not None:
                message[key] = data[key]
        if not (message["content"] or message["embeds"]):
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
            "roles": [{"id": str(guild_id), "name": "@everyone", "permissions": ALL_PERMISSIONS, "position": 0,
                       "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}],
            "emojis": [], "stickers": [], "features": [], "member_count": 2, "large": False, "unavailable": False,
            "members": [self._member(self.bot_user)], "presences": [], "voice_states": [], "threads": [],
            "channels": [c for c in self.channels.values() if c["guild_id"] == str(guild_id) and c["type"] == 0],
            "joined_at": _now_iso(), "preferred_locale": "de", "afk_timeout": 300, "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
            "premium_tier": 0, "system_channel_flags": 0, "premium_progress_bar_enabled": False,
        }

    def _message(
        self, channel_id: int, author: dict[str, Any], content: str, embeds: list[dict[str, Any]], *,
        flags: int = 0, mentions: list[dict[str, Any]] | None = None, reference: dict[str, Any] | None = None,
        webhook: bool = False,
    ) -> dict[str, Any]:
        channel = self.channels[channel_id]
        message = {
            "id": str(self._ids()), "channel_id": str(channel_id), "guild_id": channel["guild_id"],
            "author": author, "member": self._member(author), "content": content, "embeds": embeds,
            "timestamp": _now_iso(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": mentions or [], "mention_roles": [], "attachments": [], "components": [], "pinned": False,
            "type": 19 if reference else 0, "flags": flags,
        }
        if reference:
            message["message_reference"] = {"type": 0, **reference}
            message["referenced_message"] = self.messages.get(int(reference["message_id"]))
        if webhook:
            message["webhook_id"] = str(self.app_id)
            message["application_id"] = str(self.app_id)
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
        event = dict(message)
        bot_may_read = (
            self._intents & MESSAGE_CONTENT_INTENT
            or message["author"]["id"] == self.bot_user["id"]
            or any(m["id"] == self.bot_user["id"] for m in message["mentions"])
        )
        if not bot_may_read:
            event.update(content="", embeds=[], attachments=[], components=[])
        await self.dispatch("MESSAGE_CREATE", event)

    def _violation(self, what: str) -> None:
        _log.warning("Discord would object: %s", what)
        self.violations.append(what)

    async def _touch(self) -> None:
        async with self._changed:
            self._changed.notify_all()


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
