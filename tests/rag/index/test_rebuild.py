"""`ingest --rebuild` deletes only its own collections; a running process follows a rebuild
(issue 17, items 2 and 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, make_settings

from bot import cli
from rag.index.ingest import ingest
from rag.index.keyword import KeywordIndex
from rag.index.store import Store

ARTICLE = "Titel {n}\n\ndate 2025-03-0{n}\n\nDer Stadtrat von Ort{n} hat am Mittwoch {n} neue Brücken beschlossen. Die Kosten liegen bei {n} Millionen Euro.\n"


def _articles(root: Path, *numbers: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (root / f"art{n}.txt").write_text(ARTICLE.format(n=n), encoding="utf-8")
    return root


def _main(monkeypatch, capsys, data_dir: Path, *args: str, **env: str) -> tuple[int, str]:
    for name in [k for k in os.environ if k.startswith("NEWSBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(data_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def test_rebuild_under_one_collection_name_keeps_the_others(tmp_path, embeddings, monkeypatch, capsys):
    data = tmp_path / "data"
    main = make_settings(data)
    chunks = ingest(Store(main, embeddings), [_articles(tmp_path / "main", 1, 2)], main.chunk_chars).chunks
    KeywordIndex(main.keyword_dir).ensure_current(Store(main, embeddings))
    alt = make_settings(data, collection="alt")
    ingest(Store(alt, embeddings), [_articles(tmp_path / "alt", 3)], alt.chunk_chars)
    assert main.keyword_dir != alt.keyword_dir

    code, err = _main(monkeypatch, capsys, data, "ingest", "--json", "--rebuild", str(_articles(tmp_path / "alt2", 4)),
                      NEWSBOT_COLLECTION="alt")
    assert code == 0, err
    kept = Store(main, embeddings)
    assert sorted(kept.manifest()) == ["art1", "art2"] and kept.chunk_count() == chunks
    assert main.keyword_dir.exists()
    assert sorted(Store(alt, embeddings).manifest()) == ["art4"]


def test_invalid_collection_name_is_a_settings_error_not_a_corrupt_store(tmp_path, monkeypatch, capsys):
    code, err = _main(monkeypatch, capsys, tmp_path / "data", "ingest", "--json", str(_articles(tmp_path / "a", 1)),
                      NEWSBOT_COLLECTION="mein archiv!")
    assert code == 2 and "NEWSBOT_COLLECTION" in err, err
    assert "corrupt" not in err and "--rebuild" not in err and "Traceback" not in err


def test_read_only_data_dir_is_not_called_corrupt(tmp_path, monkeypatch, capsys):
    import chromadb

    data = tmp_path / "data"
    (data / "chroma").mkdir(parents=True)
    if os.geteuid() == 0:  # root writes anywhere: make Chroma fail the way it does on a read-only folder
        def refuse(*args, **kwargs):
            raise RuntimeError("error returned from database: (code: 8) attempt to write a readonly database")
        monkeypatch.setattr(chromadb, "PersistentClient", refuse)
    else:
        data.chmod(0o555)
        (data / "chroma").chmod(0o555)
    for args in (("ingest", "--json", str(_articles(tmp_path / "a", 1))), ("ingest", "--rebuild", str(tmp_path / "a"))):
        code, err = _main(monkeypatch, capsys, data, *args)
        assert code == 1 and "not writable" in err, err
        assert "corrupt" not in err and "newsbot ingest --rebuild" not in err and "Traceback" not in err, err


def test_a_running_process_serves_the_store_rebuilt_by_another(tmp_path, embeddings):
    settings = make_settings(tmp_path / "data")
    running = Store(settings, embeddings)  # e.g. a chat or the Discord bot, open the whole time
    ingest(running, [_articles(tmp_path / "old", 1, 2)], settings.chunk_chars)
    assert sorted(running.manifest()) == ["art1", "art2"]

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env.update(NEWSBOT_DATA_DIR=str(settings.data_dir), HF_HUB_OFFLINE="1")
    rebuilt = subprocess.run([sys.executable, "-m", "bot.cli", "ingest", "--json", "--rebuild", str(_articles(tmp_path / "new", 5))],
                             env=env, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]

    assert sorted(running.manifest()) == ["art5"]  # reopened, not the deleted collections
    assert [cid for cid, _ in running.dense_search("Brücken in Ort5", 3)] and running.chunk_count() >= 1
    summary = ingest(running, [_articles(tmp_path / "new", 5, 6)], settings.chunk_chars)  # writes work
    assert summary.added == 1 and not summary.errors
    assert sorted(Store(settings, embeddings).manifest()) == ["art5", "art6"]


@pytest.mark.parametrize("as_file", [True])
def test_data_dir_pointing_at_a_file_is_named(tmp_path, monkeypatch, capsys, as_file):
    target = tmp_path / "data.txt"
    target.write_text("not a folder")
    code, err = _main(monkeypatch, capsys, target, "ingest", "--json", str(_articles(tmp_path / "a", 1)))
    assert code == 2 and "NEWSBOT_DATA_DIR" in err and "is a file" in err and "Traceback" not in err, err
