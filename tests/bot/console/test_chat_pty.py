"""The terminal face (prompt_toolkit + rich) in a real pseudo-terminal, with a scripted fake service.

Fast: no model. Run as a script, this file starts the chat on a fake service; the tests drive
that process through pexpect, so Ctrl-C, Ctrl-D and input history are the real key presses.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\r")
PROMPT = "› "


def _fake_service(data_dir: str):
    """A service whose answers are scripted; 'langsam' streams until cancelled."""
    from rag.answer import Answer, Citation
    from rag.errors import QuestionError
    from rag.settings import Settings

    settings = Settings(_env_file=None, data_dir=Path(data_dir), history_turns=3, model="fake-model")  # type: ignore[call-arg]

    class Store:
        def chunk_count(self) -> int:
            return 52

    class Service:
        model_name = "fake-model"

        def __init__(self) -> None:
            self.settings = settings
            self.store = Store()

        def warm_up(self) -> None:
            pass

        def answer(self, question, history=(), on_token=None, cancel=None, filters=None, on_status=None):
            if question == "leer?":
                raise QuestionError("The question has no words in it: ask something about the news articles.")
            if history:
                on_status("rewritten", f"{question} (nach {len(history)} Runden)")
            citation = Citation(1, "000_alaska", "Gipfel in Alaska", "2025-08-16", "zehn von zehn Punkten", 0, 21)
            if question == "langsam":
                for i in range(600):
                    if cancel.is_set():
                        return Answer(question, "", refused=True, error="cancelled", model="fake-model")
                    on_token(f"Wort{i} ")
                    time.sleep(0.05)
            text = f"Antwort auf „{question}“ mit {len(history)} Runden Verlauf [1]."
            for word in text.split(" "):
                on_token(word + " ")
            return Answer(question, text, refused=False, citations=[citation], model="fake-model",
                          timings={"total_s": 0.5})

    return Service()


if __name__ == "__main__":  # the child process of the tests below
    from bot.console.chat import run_chat

    service = _fake_service(sys.argv[1])
    sys.exit(run_chat(service.settings, service))


pexpect = pytest.importorskip("pexpect")


def spawn(data_dir: Path):
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
    return pexpect.spawn(sys.executable, [__file__, str(data_dir)], cwd=str(ROOT), env=env, encoding="utf-8",
                         dimensions=(40, 160), timeout=30)


def expect(child, pattern) -> str:
    child.expect(pattern)
    return ANSI.sub("", child.before + child.after)


def test_terminal_streams_cancels_and_keeps_going(tmp_path):
    child = spawn(tmp_path)
    try:
        start = expect(child, PROMPT)
        assert "Model: fake-model" in start and "· 52 chunks" in start

        child.sendline("Erste Frage")
        first = expect(child, r"· 0\.5 s")
        assert "Antwort auf „Erste Frage“ mit 0 Runden Verlauf [1]." in first
        assert "[1] Gipfel in Alaska (2025-08-16; 000_alaska)" in first

        child.sendline("langsam")
        expect(child, "Wort5 ")  # streaming has begun
        child.sendintr()  # Ctrl-C
        assert "Cancelled." in expect(child, "Cancelled.")
        expect(child, PROMPT)

        child.sendline("leer?")
        assert "Error: The question has no words in it" in expect(child, "Error: .*")

        child.sendline("Und danach?")
        follow = expect(child, r"· 0\.5 s")
        assert "↳ Und danach? (nach 1 Runden)" in follow  # the cancelled answer is not history
        assert "mit 1 Runden Verlauf" in follow

        expect(child, PROMPT)
        child.sendcontrol("c")  # Ctrl-C at the prompt only clears the line
        expect(child, PROMPT)
        child.sendline("/reset")
        assert "Conversation forgotten" in expect(child, "Conversation forgotten")
        expect(child, PROMPT)  # keys typed before the prompt is up may be eaten by the terminal driver
        child.sendeof()  # Ctrl-D leaves
        expect(child, "Bye.")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_input_history_survives_a_restart(tmp_path):
    child = spawn(tmp_path)
    try:
        expect(child, PROMPT)
        child.sendline("Frage aus dem ersten Lauf")
        expect(child, r"· 0\.5 s")
        expect(child, PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)

    child = spawn(tmp_path)
    try:
        expect(child, PROMPT)
        child.send("\x1b[A")  # arrow up recalls the last run's question
        child.send("\r")
        assert "Antwort auf „Frage aus dem ersten Lauf“" in expect(child, r"· 0\.5 s")
        expect(child, PROMPT)
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
