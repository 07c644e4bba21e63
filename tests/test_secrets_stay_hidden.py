"""Secrets: a canary Discord token and API key never show up in output, logs, errors or tracebacks.

test_discord_cli.py / test_discord_bot.py already check an invalid token against the Discord
double and the token in discord.py's RESUME debug log; rag/llm/test_openai_server.py the API key in
retry logs. Here: nothing reachable at all, invalid settings, and the whole CLI at debug level.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import traceback

import pytest
from conftest import REPO
from pydantic import SecretStr

from rag.errors import GenerationError
from rag.settings import SettingsError, load_settings

TOKEN = "CANARY-discord-MTA4NzY1NDMyMTA5ODc2NTQzMg.Gx1yZ2.do-not-log-me"
KEY = "sk-CANARY-openai-0123456789abcdef-do-not-log-me"
HEADER = "Bearer CANARY-chroma-header-do-not-log-me"
CANARIES = (TOKEN, KEY, HEADER, "CANARY")
QUESTION = "Wie reagierte Kreml-Sprecher Peskow auf Trumps Andeutung eines Telefonats mit Putin?"


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_clean(*texts: str) -> None:
    for text in texts:
        for canary in CANARIES:
            assert canary not in text, f"a secret leaked: ...{text[max(0, text.find(canary) - 200):text.find(canary) + 80]}"


def _env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSBOT_", "DISCORD_"))}
    env.update(NEWSBOT_DATA_DIR=str(tmp_path / "data"), NEWSBOT_CACHE_DIR=str(tmp_path / "cache"), HF_HUB_OFFLINE="1",
               DISCORD_TOKEN=TOKEN, NEWSBOT_OPENAI_API_KEY=KEY, NEWSBOT_LOG_LEVEL="DEBUG")
    env.update(extra)
    return env


def _cli(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", "-vv", *args], env=env, capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def test_cli_discord_with_nothing_reachable_keeps_the_token_secret(tmp_path):
    api = f"http://127.0.0.1:{closed_port()}/api/v10"
    result = _cli(_env(tmp_path, NEWSBOT_DISCORD_API_BASE=api), "discord", timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Could not connect to Discord" in result.stderr and "Traceback" not in result.stderr
    assert "DEBUG" in result.stderr  # debug logging really was on
    assert_clean(result.stdout, result.stderr)


@pytest.mark.parametrize(("bad", "named"), [
    ({"NEWSBOT_TOP_K": "many"}, "NEWSBOT_TOP_K"),  # a field error
    ({"NEWSBOT_LLM_BACKEND": "openai", "NEWSBOT_OPENAI_BASE_URL": "ftp://x"}, "openai_base_url"),  # a check across fields
    ({"NEWSBOT_CHROMA_HEADERS": '{"Authorization": "' + HEADER}, "NEWSBOT_CHROMA_HEADERS"),  # not even JSON
    ({"NEWSBOT_CHROMA_HEADERS": f'["{HEADER}"]'}, "NEWSBOT_CHROMA_HEADERS"),  # JSON of the wrong shape
])
def test_invalid_settings_never_echo_secrets(tmp_path, bad, named):
    result = _cli(_env(tmp_path, **bad), "discord", timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("Invalid settings:") and "Traceback" not in result.stderr
    assert named in result.stderr  # the message names the setting to fix
    assert_clean(result.stdout, result.stderr)


def test_load_settings_errors_hide_secrets_in_process(monkeypatch):
    for name, value in _env_values().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NEWSBOT_OPENAI_BASE_URL", "not-a-url")
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    assert_clean(str(err.value), "".join(traceback.format_exception(err.value)))


def _env_values() -> dict[str, str]:
    return {"DISCORD_TOKEN": TOKEN, "NEWSBOT_OPENAI_API_KEY": KEY, "NEWSBOT_LLM_BACKEND": "openai",
            "NEWSBOT_CHROMA_HEADERS": f'{{"Authorization": "{HEADER}"}}'}


def test_openai_backend_at_a_closed_port_keeps_the_key_secret(seeded, embeddings, caplog):
    """In process, every logger at DEBUG (openai, httpx, httpcore included): the GenerationError,
    its whole traceback chain and the log records carry neither the key nor the URL's password."""
    from rag.wiring import build_service

    settings, _ = seeded
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore", "rag", "chromadb"):
        caplog.set_level(logging.DEBUG, logger=name)
    port = closed_port()
    backend = settings.model_copy(update={
        "llm_backend": "openai", "openai_base_url": f"http://newsbot:{HEADER.split()[1]}@127.0.0.1:{port}/v1",
        "openai_api_key": SecretStr(KEY), "openai_max_retries": 1, "openai_timeout_s": 5.0, "discord_token": SecretStr(TOKEN),
    })
    service = build_service(backend, embeddings=embeddings)
    with pytest.raises(GenerationError) as err:
        service.answer(QUESTION)
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "not reachable" in message
    chain = "".join(traceback.format_exception(err.value, chain=True))
    context = err.value.__context__
    while context is not None:  # suppressed (`from None`) but still attached: check it too
        chain += "".join(traceback.format_exception(context, chain=False)) + repr(getattr(context, "request", ""))
        context = context.__context__
    assert "retry 1/1" in caplog.text  # the retry was logged at all
    assert any(r.name.startswith(("httpx", "httpcore", "openai")) for r in caplog.records)  # third-party debug logs ran
    assert_clean(message, chain, caplog.text)


def test_cli_ask_against_a_closed_openai_port_keeps_the_key_secret(seeded, tmp_path):
    settings, _ = seeded
    env = _env(tmp_path, NEWSBOT_DATA_DIR=str(settings.data_dir), NEWSBOT_LLM_BACKEND="openai",
               NEWSBOT_OPENAI_BASE_URL=f"http://127.0.0.1:{closed_port()}/v1", NEWSBOT_OPENAI_MAX_RETRIES="1",
               NEWSBOT_SKIP_READING="false")  # the model reads the context: the question reaches the closed port
    result = _cli(env, "ask", QUESTION)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "newsbot: the model server at" in result.stderr and "Traceback" not in result.stderr
    assert "DEBUG" in result.stderr
    assert_clean(result.stdout, result.stderr)
