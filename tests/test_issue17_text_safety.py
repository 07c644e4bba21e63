"""Issue 17 items 4 (terminal escapes), 5 (answer text kept whole, Discord escaping), 11 (chat history file)."""

from __future__ import annotations

import io
import os
import stat
from types import SimpleNamespace

from rich.console import Console

from bot.console.history import BoundedFileHistory, open_history
from bot.console.render import sources_block
from bot.discord import render
from rag.answer import Answer, Citation
from rag.answering.cite import markers_last, split_claims
from rag.index.ingest import ingest

HOSTILE = ("Der Stadtrat \x1b]52;c;SGFja2Vk\x07beschloss \x1b[2J\x1b[1;1Hneue Radwege. Mehr "
           "\x1b]8;;http://evil.example\x1b\\hier\x1b]8;;\x1b\\ und \u009b31mrot\u009b0m \u009d52;c;QQ==\u009c sowie\x08 Ende.")


def _no_controls(text: str) -> bool:
    return not any(ord(ch) < 32 and ch not in "\n\t" or 0x7F <= ord(ch) <= 0x9F for ch in text)


def test_ingest_strips_terminal_sequences_into_a_real_store(store, settings, tmp_path):
    folder = tmp_path / "art"
    folder.mkdir()
    (folder / "a.txt").write_text("Radwege in Leipzig \x1b[31mbeschlossen\x1b[0m\n\n" + HOSTILE + "\n", encoding="utf-8")
    assert ingest(store, [folder], settings.chunk_chars).added == 1
    record = store.source_records()["a"]
    got = store.chunks.get(include=["documents"])["documents"]
    for text in [record.text, record.title, *got]:
        assert _no_controls(text) and "52;c" not in text and "evil.example" not in text
    assert "beschloss neue Radwege. Mehr hier und rot  sowie Ende." in record.text


def _answer(text: str) -> Answer:
    c = Citation(1, "a", "Titel \x1b]8;;http://evil\x1b\\klick\x1b]8;;\x1b\\", "2025-01-01", "Zitat \x1b]52;c;SGk=\x07mit \u009b2J Sprung", 0, 10)
    return Answer(question="q", text=text, refused=False, citations=[c])


def test_console_and_cli_render_no_escapes(capsys, settings, monkeypatch):
    from bot.cli import cmd_ask
    from bot.console.chat import ChatApp

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=300)
    for line in sources_block(_answer("x").citations):
        console.print(line)
    service = SimpleNamespace(settings=settings, model_name="m", answer=lambda *a, **k: _answer("Antwort \x1b[2J\x1b]52;c;SGk=\x07hier [1]."))
    ChatApp(service, console=console, interactive=False).show_answer(service.answer(), "")
    assert "\x1b" not in out.getvalue() and "\u009b" not in out.getvalue() and "Zitat mit  Sprung" in out.getvalue()

    monkeypatch.setattr("bot.cli._ensure_store", lambda *a: None)
    monkeypatch.setattr("rag.wiring.build_service", lambda s: service)
    assert cmd_ask(settings, SimpleNamespace(question="q", file=None, json=False, source=[], since=None, until=None)) == 0
    printed = capsys.readouterr().out
    assert _no_controls(printed) and "Antwort hier [1]." in printed and "Titel klick" in printed


def test_markers_never_eat_text_and_keep_final_punctuation():
    raw = "[1] Kommt der Radweg [Anm. d. Red.: bis 2030]? [2] Siehe [hier](https://x.example/a) und [3](https://y) „Wirklich?“"
    claims = split_claims(markers_last(raw))
    assert [c.text for c in claims] == ["Kommt der Radweg [Anm. d. Red.: bis 2030]?",
                                       "Siehe [hier](https://x.example/a) und [3](https://y) „Wirklich?“"]
    assert [c.cited for c in claims] == [[1], [2]]


def test_verify_keeps_a_question_mark():
    from rag.answering import cite

    assert cite.ends_sentence("Kommt er?") and cite.ends_sentence("„Kommt er?“") and not cite.ends_sentence("Kommt er")


def test_discord_answer_text_is_markdown_escaped_but_markers_stay():
    text = "Er sagte [1] ||Spoiler|| **fett** __u__ ```py\nx``` und [hier](http://evil.example) [2]."
    content = "".join(p.content for p in render.answer_messages(_answer(text), embeds=False))
    assert "||Spoiler" not in content and "**fett" not in content and "```" not in content and "__u" not in content
    assert "](http" not in content and "[hier]" in content
    assert content.startswith("Er sagte [1] ") and "[2]." in content
    assert "](" not in render.preview(text)


def test_history_file_is_owner_only_bounded_and_optional(tmp_path):
    path = tmp_path / "data" / "chat_history"
    path.parent.mkdir()
    path.write_text("\n# old\n+alt\n", encoding="utf-8")
    os.chmod(path, 0o644)
    history = BoundedFileHistory(path, limit=3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for n in range(10):
        history.store_string(f"frage {n}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = list(BoundedFileHistory(path, limit=3).load_history_strings())
    assert kept == ["frage 9", "frage 8", "frage 7"]
    fresh = tmp_path / "other" / "chat_history"
    open_history(fresh, 5).store_string("x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    off = tmp_path / "off" / "chat_history"
    open_history(off, 0).store_string("geheim")
    assert not off.exists()
