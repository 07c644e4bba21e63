"""Bad input: odd questions get a clear answer or message, odd files a clear per-file message.

What test_answer_e2e.py and test_documents.py / test_ingest.py already cover (empty, blank,
emoji-only, control-only and 100,000-character questions in the service; `ask ""`; empty,
binary and latin-1 files) is not repeated here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SEEDS, make_settings

from rag.errors import QuestionError
from rag.index import documents
from rag.index.ingest import ingest
from rag.index.store import Store


def _state(store: Store):
    got = store.chunks.get(include=["documents", "metadatas"])
    chunks = sorted(zip(got["ids"], got["documents"], [tuple(sorted(m.items())) for m in got["metadatas"]]))
    sources = {sid: (r.content_hash, r.status, r.chunks) for sid, r in store.manifest().items()}
    return chunks, sources


# --- questions ----------------------------------------------------------------------------------

def test_check_question_cleans_control_characters_and_keeps_words(seeded, embeddings):
    """Control characters, zero-width and bidi marks vanish; emoji beside words are harmless."""
    from rag.wiring import build_service

    settings, _ = seeded
    service = build_service(settings, embeddings=embeddings, llm_factory=lambda: pytest.fail("no model needed"))
    check = service.check_question
    assert check("Was\x00 sagte\x1b[31m Peskow\u200b\u202e?\x7f") == "Was sagte[31m Peskow?"
    assert check("\ufeffWas sagte Peskow? 🙂🇺🇦") == "Was sagte Peskow? 🙂🇺🇦"
    assert check("Was\r\nsagte\tPeskow\n\n?") == "Was sagte Peskow ?"
    limit = settings.max_question_chars
    assert check("a" * limit) == "a" * limit
    for bad in ["\u200b\u200b", "🙂 🇺🇦 ✨ ", "?!… ---", "a" * (limit + 1), "\ud800"]:
        with pytest.raises(QuestionError):
            check(bad)


def _assert_clean_answer(service, answer) -> None:
    assert answer.text.strip() and answer.error is None
    assert "NICHT_IN_DEN_ARTIKELN" not in answer.text
    if answer.refused:
        assert not answer.citations
    for citation in answer.citations:
        record = service.corpus.record(citation.source)
        assert record.text[citation.start:citation.end] == citation.quote


@pytest.mark.llm
def test_a_question_in_french_gets_an_answer_or_a_refusal(small_model_service):
    """A third language: a clean answer with real quotes, or the polite refusal that says which
    languages work; never an exception."""
    question = "Qu'a dit le porte-parole du Kremlin Peskov à propos d'un appel téléphonique entre Trump et Poutine ?"
    answer = small_model_service.answer(question)
    print(f"\n{question!r} -> refused={answer.refused} {answer.text!r}")
    _assert_clean_answer(small_model_service, answer)
    assert answer.language == "other"
    if answer.refused:
        assert "German or English" in answer.text


@pytest.mark.parametrize("question", ["Где встретились Путин и Трамп на Аляске?", "Putin ile Trump Alaska'da nerede buluştu?"])
def test_a_question_in_a_third_language_gets_the_english_refusal_naming_both_languages(seeded, embeddings, question):
    """Issue 17 item 7: no retrieval, no model call, no citation; the refusal says which languages work."""
    from rag.wiring import build_service

    settings, _ = seeded
    service = build_service(settings, embeddings=embeddings, llm_factory=lambda: pytest.fail("no model needed"))
    answer = service.answer(question)
    assert answer.refused and answer.language == "other" and not answer.citations
    assert "German or English" in answer.text


@pytest.mark.parametrize("question", [
    "Was\x00 sagte\x1b Kreml-Sprecher\u200b Peskow 🙂 über ein Telefonat zwischen Trump und Putin?\x07",
    "🇺🇦🇺🇦 Selenskyj \u202eSicherheitsgarantien\u202c ✨✨✨ " + "🙂" * 500,
    "Peskow " + "\u0301" * 300 + "Telefonat",  # a pile of combining accents
    "Was sagte\r\n\r\nPutin\t\tnach dem Gipfel\x1b[2J?",
])
def test_control_characters_and_emoji_around_words_run_the_whole_pipeline(seeded, embeddings, question):
    """The real retrieval, context and citation checks, with a stand-in model: no exception, and
    the cleaned question is what the pipeline saw."""
    from doubles.llm import ScriptedLLM

    from rag.wiring import build_service

    settings, _ = seeded
    service = build_service(settings, embeddings=embeddings, llm_factory=ScriptedLLM.echo)
    answer = service.answer(question)
    _assert_clean_answer(service, answer)
    assert not any(ord(ch) < 32 or ch in "\u200b\u202e\u202c\x7f" for ch in answer.question)


def test_cli_ask_with_a_100k_question_exits_2_with_a_clear_message(seeded):
    settings, _ = seeded
    env = dict(os.environ, NEWSBOT_DATA_DIR=str(settings.data_dir), NEWSBOT_MODEL="qwen2.5-coder-0.5b", HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "bot.cli", "ask", "Was sagte Peskow? " * 5556], env=env,
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "limit is 2,000" in result.stderr and "NEWSBOT_MAX_QUESTION_CHARS" in result.stderr
    assert result.stdout == ""


# --- files --------------------------------------------------------------------------------------

KEPT = ("000_24974ad38bb207f4.txt", "003_abdad34a08e92d8c.txt")


@pytest.fixture
def ingested(tmp_path, embeddings):
    """A store with two seed articles ingested from a folder that the test then adds bad files to."""
    articles = tmp_path / "articles"
    articles.mkdir()
    for name in KEPT:
        shutil.copy(SEEDS / name, articles / name)
    settings = make_settings(tmp_path / "data")
    store = Store(settings, embeddings)
    first = ingest(store, [articles], settings.chunk_chars)
    assert first.added == len(KEPT)
    return store, articles, settings


GOOD = ("Bürgerhaushalt für Kleinstadt beschlossen\n\nDer Rat der Gemeinde hat am Dienstag einen Bürgerhaushalt "
        "von zwei Millionen Euro beschlossen. Die Bürgermeisterin sagte, die Einwohner könnten bis Juni Vorschläge machen.\n")


def test_huge_and_unreadable_files_are_reported_and_the_rest_ingested(ingested):
    """Over the size limit (a sparse 21 MiB file), a file whose read fails even for root (a link to
    /proc/self/mem: EIO), a FIFO and a broken link: one clear message each; a new good file is still
    ingested and nothing already in the store is lost."""
    store, articles, settings = ingested
    before = _state(store)
    with open(articles / "990_huge.txt", "wb") as handle:
        handle.truncate(documents.MAX_FILE_BYTES + 1024 * 1024)
    (articles / "991_unreadable.txt").symlink_to("/proc/self/mem")
    os.mkfifo(articles / "992_pipe.txt")  # never opened: reading a FIFO without a writer would hang
    (articles / "993_dangling.md").symlink_to(articles / "gone.md")
    (articles / "994_folder.txt").mkdir()  # a directory with an article-like name is just a folder
    (articles / "995_good.txt").write_text(GOOD, encoding="utf-8")

    summary = ingest(store, [articles], settings.chunk_chars)

    assert summary.added == 1 and summary.unchanged == len(KEPT) and summary.removed == 0
    errors = "\n".join(summary.errors)
    assert len(summary.errors) == 4, errors
    assert any("990_huge.txt" in e and "20 MiB limit" in e and "split" in e for e in summary.errors), errors
    assert any("991_unreadable.txt" in e and "cannot read" in e for e in summary.errors), errors
    assert any("992_pipe.txt" in e and "not a regular file" in e for e in summary.errors), errors
    assert any("993_dangling.md" in e and "not a regular file" in e for e in summary.errors), errors
    chunks, sources = _state(store)
    assert set(before[0]) <= set(chunks) and all(sources[s] == v for s, v in before[1].items())
    assert sources["995_good"][1] == "ok"


def test_a_special_file_named_on_the_command_line_is_reported_as_such(ingested):
    store, articles, settings = ingested
    pipe = articles.parent / "pipe.txt"
    os.mkfifo(pipe)
    summary = ingest(store, [pipe, articles.parent / "missing.txt"], settings.chunk_chars)
    assert summary.errors == [f"{pipe}: not a regular file (a FIFO, socket, device or broken link); skipped",
                              f"{articles.parent / 'missing.txt'}: no such file or directory"]


def test_huge_file_limit_is_checked_before_reading(tmp_path, monkeypatch):
    """The size check uses stat, so a multi-GB file never lands in memory."""
    path = tmp_path / "big.txt"
    path.write_text(GOOD, encoding="utf-8")
    monkeypatch.setattr(documents, "MAX_FILE_BYTES", 100)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read a file over the limit"))
    with pytest.raises(documents.DocumentError, match="limit; split it into articles"):
        documents.read_document(path)


def test_permission_denied_names_the_fix(tmp_path, monkeypatch):
    """chmod 000 does not stop root (these tests run as root), so the OS error is injected."""
    path = tmp_path / "locked.txt"
    path.write_text(GOOD, encoding="utf-8")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(documents.DocumentError, match=r"permission denied; make the file readable \(chmod \+r\)"):
        documents.read_document(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_file_is_reported(ingested):
    store, articles, settings = ingested
    locked = articles / "996_locked.txt"
    locked.write_text(GOOD, encoding="utf-8")
    locked.chmod(0)
    summary = ingest(store, [articles], settings.chunk_chars)
    assert any("996_locked.txt" in e and "permission denied" in e for e in summary.errors)
    assert summary.unchanged == len(KEPT)
