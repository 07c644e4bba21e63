"""Incremental ingestion into a real Chroma store in a temp dir."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, SEEDS, make_settings

from rag.index.ingest import ingest
from rag.index.keyword import KeywordIndex
from rag.index.store import Store


def _state(store: Store):
    got = store.chunks.get(include=["documents", "metadatas"])
    chunks = sorted(zip(got["ids"], got["documents"], [tuple(sorted(m.items())) for m in got["metadatas"]]))
    sources = {sid: (r.content_hash, r.status, r.chunks) for sid, r in store.manifest().items()}
    return chunks, sources


def test_ingest_is_idempotent(store, seeds_copy, settings):
    first = ingest(store, [seeds_copy], settings.chunk_chars)
    assert (first.added, first.updated, first.removed, first.unchanged) == (5, 0, 0, 0)
    before = _state(store)
    second = ingest(store, [seeds_copy], settings.chunk_chars)
    assert (second.added, second.updated, second.removed, second.unchanged) == (0, 0, 0, 5)
    assert second.chunks == first.chunks
    assert _state(store) == before


def test_changed_file_is_replaced_and_removed_file_deleted(store, seeds_copy, settings):
    ingest(store, [seeds_copy], settings.chunk_chars)
    target = seeds_copy / "003_abdad34a08e92d8c.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\n\nNachtrag: Der Kreml schwieg am Abend weiter zu dem Telefonat.\n", encoding="utf-8")
    (seeds_copy / "001_d0d0cfa9444d8be7.txt").unlink()
    summary = ingest(store, [seeds_copy], settings.chunk_chars)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (0, 1, 1, 3)
    sources = store.manifest()
    assert "001_d0d0cfa9444d8be7" not in sources
    assert not store.chunks.get(where={"source": "001_d0d0cfa9444d8be7"})["ids"]
    texts = store.chunks.get(where={"source": "003_abdad34a08e92d8c"})["documents"]
    assert sum("Nachtrag: Der Kreml schwieg" in t for t in texts) == 1
    assert len(store.chunks.get()["ids"]) == summary.chunks


def test_chunk_metadata_and_offsets(store, seeds_copy, settings):
    ingest(store, [seeds_copy], settings.chunk_chars)
    records = store.source_records()
    got = store.chunks.get(include=["documents", "metadatas"])
    assert got["ids"]
    for text, meta in zip(got["documents"], got["metadatas"]):
        record = records[meta["source"]]
        body = record.text[meta["start"]:meta["end"]]
        assert text == f"{record.title}\n\n{body}"  # every chunk carries its article's title
        assert meta["title"] == record.title and "date" in meta
        assert len(body) <= settings.chunk_chars * 1.25 or "\n" not in body


def test_bad_file_is_reported_and_others_kept(store, seeds_copy, settings):
    ingest(store, [seeds_copy], settings.chunk_chars)
    before = _state(store)
    (seeds_copy / "003_abdad34a08e92d8c.txt").write_bytes(b"\x00\xff binary garbage" * 50)
    (seeds_copy / "999_empty.txt").write_text("")
    summary = ingest(store, [seeds_copy], settings.chunk_chars)
    assert len(summary.errors) == 2 and any("binary" in e for e in summary.errors) and any("empty" in e for e in summary.errors)
    assert _state(store) == before  # nothing already in the store is lost


def test_keyword_index_follows_the_store(store, seeds_copy, settings):
    ingest(store, [seeds_copy], settings.chunk_chars)
    index = KeywordIndex(settings.keyword_dir)
    index.ensure_current(store)
    assert len(index) == store.chunk_count()
    (seeds_copy / "002_140f15234ae05953.txt").unlink()
    ingest(store, [seeds_copy], settings.chunk_chars)
    fresh = KeywordIndex(settings.keyword_dir)  # another process: loads from disk, sees a stale generation
    fresh.ensure_current(store)
    assert not any(s == "002_140f15234ae05953" for s in fresh.sources)
    assert len(fresh) == store.chunk_count()


def _cli(env, *args, **kw):
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, cwd=REPO, **kw)


def _env(data_dir: Path):
    env = dict(os.environ)
    env.update({"NEWSBOT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1"})
    return env


def test_cli_ingest_json_twice(tmp_path):
    env = _env(tmp_path / "data")
    first = _cli(env, "ingest", "--json", str(SEEDS))
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    second = json.loads(_cli(env, "ingest", "--json", str(SEEDS)).stdout)
    assert one["added"] == 5 and one["chunks"] > 0
    assert (second["added"], second["updated"], second["removed"], second["unchanged"]) == (0, 0, 0, 5)
    assert second["chunks"] == one["chunks"]
    for key in ("added", "updated", "removed", "unchanged", "chunks"):
        assert isinstance(second[key], int)


def test_ingest_killed_at_random_points_then_rerun_equals_clean(tmp_path, embeddings):
    """SIGKILL an ingest mid-way (several times, at random moments), rerun: same state as a clean run."""
    articles = tmp_path / "articles"
    articles.mkdir()
    for path in SEEDS.glob("*.txt"):
        (articles / path.name).write_bytes(path.read_bytes())
    clean_settings = make_settings(tmp_path / "clean")
    clean = Store(clean_settings, embeddings)
    ingest(clean, [articles], clean_settings.chunk_chars)
    expected = _state(clean)

    env = _env(tmp_path / "killed")
    rng = random.Random(7)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "ingest", "--json", str(articles)], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(3.0, 12.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = _cli(env, "ingest", "--json", str(articles))
    assert final.returncode == 0, final.stderr
    killed = Store(make_settings(tmp_path / "killed"), embeddings)
    assert _state(killed) == expected


def test_rebuild_recovers_a_corrupt_store(tmp_path):
    env = _env(tmp_path / "data")
    assert _cli(env, "ingest", "--json", str(SEEDS)).returncode == 0
    sqlite = tmp_path / "data" / "chroma" / "chroma.sqlite3"
    sqlite.write_bytes(b"this is not a database" * 1000)
    broken = _cli(env, "ingest", "--json", str(SEEDS))
    assert broken.returncode != 0
    assert "newsbot ingest --rebuild" in broken.stderr and "Traceback" not in broken.stderr
    rebuilt = _cli(env, "ingest", "--json", "--rebuild", str(SEEDS))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["added"] == 5
