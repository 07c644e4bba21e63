"""The real `newsbot chat` process with the bundled 0.5B model: a terminal session and a piped run.

Slow (each answer is several seconds of CPU); run with `pytest -m llm tests/bot/console/test_chat_llm.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.llm

ROOT = Path(__file__).resolve().parents[3]
MODEL = os.environ.get("NEWSBOT_TEST_CHAT_MODEL", "qwen2.5-coder-0.5b")  # the fast bundled model by default
PESKOW = "003_abdad34a08e92d8c"  # Trump hints at a call with Putin (Air Force One interview); Peskov's reply
STOPP = "004_141f0a1c237ad6c8"  # the partial ceasefire on energy infrastructure
FIRST = "Was sagte Kreml-Sprecher Peskow zu Trumps Telefonat mit Putin?"
FOLLOW_UP = "Und wo wurde das Interview geführt?"  # which interview? only clear after FIRST (003: Air Force One)
OTHER = "Welchem vorübergehenden Stopp stimmte die Ukraine nach Russland zu?"

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")
END_OF_ANSWER = re.compile(r"· \d+\.\d s")  # the dim model · time line after every answer on a terminal
PROMPT = "› "


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A fresh data dir (the first start ingests the seeds) and the fast bundled model."""
    data = tmp_path_factory.mktemp("chat-data")
    return {
        **os.environ,
        "NEWSBOT_DATA_DIR": str(data),
        "NEWSBOT_MODEL": MODEL,
        # the model reads every context: a German answer then takes long enough for Ctrl-C to cancel it
        # (decided without reading, it is on screen within ~0.1 s, before the interrupt arrives)
        "NEWSBOT_SKIP_READING": "false",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect does not answer cursor-position requests
        "TERM": "xterm-256color",
        "COLUMNS": "200",
        "LINES": "50",
    }


def sources_of(block: str) -> list[str]:
    """Source ids from the `[n] Title (date; source)` lines after `Quellen:`."""
    if "Quellen:" not in block:
        return []
    return re.findall(r"^\[\d+\] .*\((?:[^;()]*); ([\w.-]+)\)\s*$", block.split("Quellen:", 1)[1], re.MULTILINE)


def test_terminal_conversation_with_follow_up_cancel_and_history(env):
    child = pexpect.spawn(sys.executable, ["-m", "bot.cli", "chat"], cwd=str(ROOT), env=env, encoding="utf-8",
                          dimensions=(50, 200), timeout=600)
    transcript: list[str] = []

    def until(pattern) -> str:
        child.expect(pattern)
        text = ANSI.sub("", child.before + child.after)
        transcript.append(text)
        return text

    def answer(question: str) -> str:
        child.sendline(question)
        text = until(END_OF_ANSWER)
        until(PROMPT)  # keys typed before the prompt is up can be eaten by the terminal driver (Ctrl-D is)
        return text

    try:
        start = until(PROMPT)
        assert "Store:" in start and f"Model: {MODEL}" in start, start

        first = answer(FIRST)
        assert PESKOW in sources_of(first), "".join(transcript)

        second = answer(FOLLOW_UP)
        rewritten = re.search(r"↳ (.+)", second)  # shown dimmed: the follow-up made standalone
        assert rewritten, "".join(transcript)
        assert "Interview" in rewritten.group(1) and FIRST not in rewritten.group(1), "".join(transcript)
        assert PESKOW in sources_of(second), "".join(transcript)

        child.sendline("/sources")
        assert "Cited passages" in until("Retrieved passages the model read")
        until(PROMPT)

        # Ctrl-C while an answer runs cancels it; the chat stays and takes the next command.
        child.sendline(OTHER)
        child.expect("Searching the articles")
        child.sendintr()
        until("Cancelled.")
        until(PROMPT)
        child.sendline("/model")
        assert f"Model: {MODEL}" in until("History: last")
        until(PROMPT)

        child.sendeof()  # Ctrl-D leaves
        until("Bye.")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, "".join(transcript)
    history = (Path(env["NEWSBOT_DATA_DIR"]) / "chat_history").read_text(encoding="utf-8")
    assert f"+{FIRST}" in history and f"+{FOLLOW_UP}" in history  # kept for the next run


def test_piped_questions_get_plain_answers_with_sources(env):
    run = subprocess.run([sys.executable, "-m", "bot.cli", "chat"], cwd=str(ROOT), env=env,
                         input=f"{FIRST}\n{OTHER}\n", capture_output=True, text=True, timeout=900)
    out = run.stdout
    assert run.returncode == 0, run.stderr[-2000:]
    assert "\x1b" not in out and "\r" not in out  # no control codes when scripted
    assert f"Model: {MODEL}" in out
    _, first, second = out.split("> ", 2)
    assert first.startswith(FIRST) and second.startswith(OTHER), out
    assert PESKOW in sources_of(first), out
    assert STOPP in sources_of(second), out
    for block in (first, second):
        answer = block.split("\n", 1)[1].split("Quellen:")[0].strip()
        assert re.search(r"\[\d+\]", answer), out  # a cited answer, not the refusal
