"""`newsbot bench --chat`: what a person waits for, from Enter to the first character on screen.

The real `newsbot chat` runs in a pseudo-terminal (pexpect), as a person uses it: a fresh
process per session, the first question typed as soon as the prompt shows (*cold*: the model
may still be loading in the background), then more questions in the same process (*warm*).
Paths: a German question, an English question (translated, answered in English), a follow-up
(rewritten first). The first character is the first output after Enter that is not the spinner
line, the echo of the question or the "↳ rewritten" line.
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rag.quality.stats import percentile
from rag.settings import PROJECT_ROOT

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")
SPINNER = re.compile(r"[\u2800-\u28ff]|Searching the articles …|Loading model[^\n]*")
PROMPT = "› "
# Follow-ups after a German question (the chat keeps the history): the second one is timed.
FOLLOW_UPS = [("Wie bewertete Trump das Treffen mit Putin?", "Und die Chance auf eine Einigung?"),
              ("Was sagte Selenskyj über die Gespräche?", "Und was forderte er?")]


def _spawn(env: dict[str, str], argv: list[str] | None = None):
    import pexpect

    full = {**os.environ, **env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color", "PYTHONPATH": str(PROJECT_ROOT)}
    child = pexpect.spawn(sys.executable, argv or ["-m", "bot.cli", "chat"], cwd=str(PROJECT_ROOT), env=full, encoding="utf-8",
                          dimensions=(50, 200), timeout=600)
    child.expect_exact(PROMPT, timeout=600)
    return child


def _time_one(child, question: str, timeout: float = 300.0) -> dict[str, Any]:
    """Type the question, press Enter; seconds to the first answer character and to the next prompt."""
    import pexpect

    child.send(question)
    time.sleep(0.2)  # prompt_toolkit echoes the typing; what matters starts at Enter
    try:
        child.read_nonblocking(65536, timeout=0.05)
    except pexpect.TIMEOUT:
        pass
    child.send("\r")
    started = time.perf_counter()
    seen = ""
    first = None
    while time.perf_counter() - started < timeout:
        try:
            chunk = child.read_nonblocking(65536, timeout=0.02)
        except pexpect.TIMEOUT:
            continue
        now = time.perf_counter()
        seen += chunk
        text = SPINNER.sub("", ANSI.sub("", seen)).replace(question, "")
        text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(("↳", PROMPT.strip())))
        if first is None and text.strip():
            first = now - started
        if first is not None and PROMPT in ANSI.sub("", chunk):
            return {"question": question, "first_char_s": round(first, 3), "done_s": round(now - started, 3),
                    "shown": " ".join(text.split())[:120]}
    return {"question": question, "first_char_s": first, "done_s": None, "shown": " ".join(seen.split())[-120:]}


def chat_waits(questions: list[dict[str, Any]], env: dict[str, str], sessions: int = 2, per_path: int = 3) -> dict[str, Any]:
    """Sessions of the real chat: the first question cold, then German, English and follow-up paths warm."""
    german = [q["question"] for q in questions if q.get("lang", "de") == "de" and q.get("expect")][:per_path]
    english = [q["question"] for q in questions if q.get("lang") == "en"][:per_path]
    rows: list[dict[str, Any]] = []
    for session in range(sessions):
        child = _spawn(env)
        try:
            cold = (english if session % 2 and english else german)[session % max(1, len(german))]
            rows.append({"path": "cold " + ("en" if cold in english else "de"), **_time_one(child, cold)})
            for question in german:
                rows.append({"path": "de", **_time_one(child, question)})
            for question in english:
                rows.append({"path": "en", **_time_one(child, question)})
            for first, follow_up in FOLLOW_UPS[:per_path]:
                child.send("/reset\r")
                child.expect_exact(PROMPT)
                _time_one(child, first)
                rows.append({"path": "follow-up", **_time_one(child, follow_up)})
            child.sendline("/quit")
        finally:
            child.close(force=True)
    return {"rows": rows, "paths": summarize(rows)}


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for path in dict.fromkeys(r["path"] for r in rows):
        values = sorted(r["first_char_s"] for r in rows if r["path"] == path and r["first_char_s"] is not None)
        if values:
            out[path] = {"n": len(values), "median": round(statistics.median(values), 3), "p95": percentile(values, 0.95)}
    return out


def variant_env(settings, data_dir: Path | None = None, **overrides: str) -> dict[str, str]:
    """Environment of a chat child: the parent's data dir and model, plus overrides."""
    env = {"NEWSBOT_DATA_DIR": str(data_dir or settings.data_dir), "NEWSBOT_MODEL": settings.model,
           "NEWSBOT_BLOCK_STATES_MB": str(settings.block_states_mb)}
    env.update(overrides)
    return env
