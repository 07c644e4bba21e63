"""Pointing discord.py at another Discord API (the loopback double the tests run).

discord.py 2.7 keeps its REST base URL (`discord.http.Route.BASE`, used by the webhook
adapter for interaction responses too) and its first gateway URL
(`DiscordWebSocket.DEFAULT_GATEWAY`; a plain Client never asks `/gateway/bot`) in class
attributes. This is the one place that changes them, only when `NEWSBOT_DISCORD_API_BASE` is
set, and restores them afterwards. discord.py uses whatever scheme it is given (ws:// works),
and later reconnects follow the `resume_gateway_url` the gateway sends in READY.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

_log = logging.getLogger(__name__)


@contextmanager
def discord_api(api_base: str | None, gateway_url: str | None = None) -> Iterator[None]:
    """Use `api_base` (e.g. http://127.0.0.1:8123/api/v10) and `gateway_url` while inside."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    if api_base:
        url = yarl.URL(api_base)
        if url.scheme != "https" and not _is_loopback(url.host):
            _log.warning("The Discord API base %s is not HTTPS: the bot token would travel unencrypted", url.host)
        Route.BASE = api_base.rstrip("/")
    if gateway_url:
        use_gateway(gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


def use_gateway(url: str) -> None:
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


class DiscordAPIMismatch(Exception):
    """The configured Discord API base answered, but not with Discord's JSON; the message names the URL."""


async def adopt_bot_gateway(client: discord.Client) -> None:
    """Ask the configured API for its gateway (GET /gateway/bot), as Discord's docs prescribe."""
    try:
        _shards, url, _limits = await client.http.get_bot_gateway()
        use_gateway(url)
    except (TypeError, KeyError, ValueError) as exc:
        raise DiscordAPIMismatch(f"The Discord API at {Route.BASE} answered GET /gateway/bot without a gateway URL "
                                 f"({type(exc).__name__}), not what Discord answers; check NEWSBOT_DISCORD_API_BASE") from exc


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
