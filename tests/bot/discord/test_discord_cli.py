"""`newsbot discord` start-up: token problems end with a clear message and never show the token."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import pytest
from doubles.discord_api import DiscordDouble
from doubles.service import FakeService

from bot.discord import EXIT_CONFIG, EXIT_FAILURE, EXIT_REJECTED, run_bot
from rag.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISCORD_TOKEN", "NEWSBOT_DISCORD_TOKEN", "NEWSBOT_DISCORD_API_BASE", "NEWSBOT_DISCORD_GATEWAY_URL",
                 "NEWSBOT_DISCORD_MESSAGE_CONTENT"):
        monkeypatch.delenv(name, raising=False)


def never_called() -> FakeService:
    raise AssertionError("the service must not be built before Discord accepted the token")


async def run(settings: Settings, factory=never_called) -> int:
    # run_bot owns its event loop; the double keeps serving on the test's loop meanwhile.
    return await asyncio.to_thread(run_bot, settings, factory)


async def test_missing_token_is_a_config_error(capfd: pytest.CaptureFixture[str]) -> None:
    assert await run(Settings(_env_file=None)) == EXIT_CONFIG
    out, err = capfd.readouterr()
    assert out == "" and "DISCORD_TOKEN is not set" in err and ".env" in err


async def test_invalid_token_exits_non_zero_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    double = await DiscordDouble(token="the-real-token").start()
    try:
        monkeypatch.setenv("DISCORD_TOKEN", "invalid")  # as in `DISCORD_TOKEN=invalid newsbot discord`
        monkeypatch.setenv("NEWSBOT_DISCORD_API_BASE", double.api_base)
        caplog.set_level(logging.DEBUG)
        assert await run(Settings(_env_file=None)) == EXIT_REJECTED
    finally:
        await double.close()
    out, err = capfd.readouterr()
    assert "Discord rejected DISCORD_TOKEN (401 Unauthorized)" in err
    assert "invalid" not in out + err + caplog.text
    assert ("GET", "/api/v10/users/@me", 401) in double.requests


async def test_privileged_intent_not_enabled_is_a_config_error(capfd: pytest.CaptureFixture[str]) -> None:
    double = await DiscordDouble(token="sekret-abc-123", allow_message_content=False).start()
    try:
        settings = Settings(_env_file=None, discord_token="sekret-abc-123", discord_api_base=double.api_base,
                            discord_message_content=True)
        assert await run(settings, FakeService) == EXIT_CONFIG
    finally:
        await double.close()
    out, err = capfd.readouterr()
    assert "Message Content Intent" in err and "sekret-abc-123" not in out + err


async def test_service_that_cannot_start_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    double = await DiscordDouble(token="sekret-abc-123").start()

    def broken() -> FakeService:
        raise FileNotFoundError("no index in /data: run `newsbot ingest` first")

    try:
        settings = Settings(_env_file=None, discord_token="sekret-abc-123", discord_api_base=double.api_base)
        assert await run(settings, broken) == EXIT_FAILURE
    finally:
        await double.close()
    out, err = capfd.readouterr()
    assert "Could not start the answer service: no index in /data" in err and "sekret-abc-123" not in out + err


async def test_cli_with_invalid_token(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real entry point, as a user runs it: `DISCORD_TOKEN=invalid newsbot discord`."""
    double = await DiscordDouble(token="the-real-token").start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    env.update(DISCORD_TOKEN="invalid", NEWSBOT_DISCORD_API_BASE=double.api_base, NEWSBOT_LOG_LEVEL="DEBUG",
               NEWSBOT_DATA_DIR=str(tmp_path / "data"), NEWSBOT_CACHE_DIR=str(tmp_path / "cache"))
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "discord", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 120)
    finally:
        await double.close()
    output = (out + err).decode()
    assert process.returncode == EXIT_REJECTED, output
    assert "Discord rejected DISCORD_TOKEN" in output
    assert "invalid" not in output
