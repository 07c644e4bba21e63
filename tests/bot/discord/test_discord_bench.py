"""`newsbot bench --discord`: the real bot client against the loopback double times each /ask."""

from __future__ import annotations

from doubles.service import FakeService

QUESTIONS = [
    {"question": "Wo trafen sich Trump und Putin?", "lang": "de", "expect": [["Alaska"]]},
    {"question": "Where did Trump and Putin meet?", "lang": "en", "expect": [["Alaska"]]},
    {"question": "Was kostet Milch?", "lang": "de", "expect": []},  # unanswerable: not a timed path
]


def test_each_ask_is_timed_to_the_first_edit_that_shows_text():
    from bot.discord.bench import discord_waits

    service = FakeService(token_delay_s=0.05)
    report = discord_waits(service, QUESTIONS)
    assert [r["path"] for r in report["rows"]] == ["discord de", "discord en"]
    assert [q for q, _ in service.calls] == [QUESTIONS[0]["question"], QUESTIONS[1]["question"]]
    for row in report["rows"]:
        # the status line ("🔎 Ich suche …") shows within ~0.01 s; the fake's first token comes after 0.05 s
        assert 0.05 <= row["first_char_s"] <= row["done_s"], row
        assert "Alaska" in row["shown"]
    assert set(report["paths"]) == {"discord de", "discord en"} and report["paths"]["discord de"]["n"] == 1
