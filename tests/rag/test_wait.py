"""The Enter-to-first-character timer of `newsbot bench --chat`, on the chat's fake-service script."""

from __future__ import annotations

import pytest
from conftest import REPO

from rag.quality.wait import _spawn, _time_one, summarize

pytest.importorskip("pexpect")


def test_the_timer_sees_the_first_answer_character_not_the_echo_or_the_spinner(tmp_path):
    child = _spawn({}, [str(REPO / "tests" / "bot" / "console" / "test_chat_pty.py"), str(tmp_path)])
    try:
        first = _time_one(child, "Wie bewertete Trump das Treffen?", timeout=30)
        follow = _time_one(child, "Und die Chance?", timeout=30)
    finally:
        child.close(force=True)
    assert first["shown"].startswith("Antwort auf „Wie bewertete Trump das Treffen?“") or first["shown"].startswith("Antwort")
    assert 0 < first["first_char_s"] <= first["done_s"] < 10
    assert "Runden" in follow["shown"] and "↳" not in follow["shown"]  # the rewritten line is not the answer
    stats = summarize([{"path": "de", **first}, {"path": "de", **follow}])
    assert stats["de"]["n"] == 2 and stats["de"]["median"] > 0
