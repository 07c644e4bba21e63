"""`newsbot discord`: check the token, start the bot, turn failures into clear exit codes.

The token is a password: it is never printed, and log records that would contain it are
redacted while the bot runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import discord
from discord.http import Route

from rag.settings import Settings

from .client import NewsBot, ServiceUnavailable
from .endpoints import DiscordAPIMismatch, discord_api
from .service import AnswerService

_log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1  # could not connect, or the answer service could not start
EXIT_CONFIG = 2  # DISCORD_TOKEN missing, or an intent the application lacks
EXIT_REJECTED = 3  # Discord rejected the token

PORTAL = "https://discord.com/developers/applications"


def run_bot(settings: Settings, service_factory: Callable[[], AnswerService]) -> int:
    """Run the Discord bot until it is stopped (Ctrl-C, SIGTERM); returns the exit code.

    `service_factory()` builds the answer service on a worker thread; it is called only after
    Discord accepted the token, so a wrong token fails fast without loading the model.
    """
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
    if not token:
        _error("DISCORD_TOKEN is not set. Create a bot at " + PORTAL + " (Bot → Reset Token) and put "
               "DISCORD_TOKEN=<token> in the environment or in .env (see .env.example).")
        return EXIT_CONFIG
    with _redacted_logs(token):
        try:
            return asyncio.run(serve(settings, token, service_factory))
        except KeyboardInterrupt:
            return EXIT_OK


async def serve(settings: Settings, token: str, service_factory: Callable[[], AnswerService], **options: object) -> int:
    """The async core of `run_bot`; tests call it on their own event loop."""
    with discord_api(settings.discord_api_base, settings.discord_gateway_url):
        async with NewsBot(settings, service_factory, **options) as bot:
            _close_on_signals(bot)
            try:
                await _login(bot, token)
                await bot.connect(reconnect=True)
            except DiscordAPIMismatch as exc:
                _error(str(exc))
                return EXIT_FAILURE
            except discord.LoginFailure:
                _error("Discord rejected DISCORD_TOKEN (401 Unauthorized). Copy the bot token again from "
                       + PORTAL + " (Bot → Reset Token) and update DISCORD_TOKEN in the environment or .env.")
                return EXIT_REJECTED
            except discord.PrivilegedIntentsRequired:
                _error("NEWSBOT_DISCORD_MESSAGE_CONTENT=true needs the Message Content Intent: enable it at "
                       + PORTAL + " (Bot → Privileged Gateway Intents) or unset the setting.")
                return EXIT_CONFIG
            except discord.ConnectionClosed as exc:
                if exc.code == 4004:  # authentication failed on the gateway
                    _error("Discord rejected DISCORD_TOKEN on the gateway. Copy the bot token again from " + PORTAL + ".")
                    return EXIT_REJECTED
                _error(f"The Discord connection closed with code {exc.code}.")
                return EXIT_FAILURE
            except ServiceUnavailable as exc:
                _error(f"Could not start the answer service: {exc}")
                return EXIT_FAILURE
            except (discord.HTTPException, discord.GatewayNotFound, aiohttp.ClientError, OSError) as exc:
                _error(f"Could not connect to Discord at {Route.BASE} ({type(exc).__name__}). Check the network"
                       + (" and NEWSBOT_DISCORD_API_BASE" if settings.discord_api_base else "") + " and try again.")
                return EXIT_FAILURE
    return EXIT_OK


async def _login(bot: NewsBot, token: str) -> None:
    """`bot.login`, with an API base that answers something other than Discord's JSON named as such."""
    try:
        await bot.login(token)
    except json.JSONDecodeError as exc:
        raise DiscordAPIMismatch(_mismatch("invalid JSON")) from exc
    except (TypeError, KeyError, AttributeError) as exc:
        if not _raised_in_discord_py(exc):  # a bug of ours (setup_hook): keep its traceback
            raise
        shown = "text, not JSON" if "string indices" in str(exc) else f"JSON that is not Discord's ({type(exc).__name__} {exc})"
        raise DiscordAPIMismatch(_mismatch(shown)) from exc


def _mismatch(answered: str) -> str:
    return (f"The Discord API at {Route.BASE} answered {answered}; check "
            "NEWSBOT_DISCORD_API_BASE (it includes the version, e.g. https://discord.com/api/v10) or leave it empty")


def _raised_in_discord_py(exc: BaseException) -> bool:
    """True when discord.py itself failed reading an answer (the innermost frame is in its package)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(Path(discord.__file__).resolve().parent)


def _error(message: str) -> None:
    print(f"newsbot discord: {message}", file=sys.stderr)


def _close_on_signals(bot: NewsBot) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, lambda: loop.create_task(bot.close()))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            return


class _Redact(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg, record.args = message.replace(self._secret, "<DISCORD_TOKEN>"), ()
        return True


@contextmanager
def _redacted_logs(secret: str) -> Iterator[None]:
    """Redact the token from whatever the configured log handlers write."""
    redact = _Redact(secret)
    handlers = [h for h in (*logging.getLogger().handlers, logging.lastResort) if h is not None]
    for handler in handlers:
        handler.addFilter(redact)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redact)
