"""Faults: a missing, truncated or corrupt model; an incompatible store; a full disk during ingest.

Existing tests cover a corrupted part package and a tampered cached GGUF (test_settings_models.py),
a garbage chroma.sqlite3 plus `--rebuild`, and SIGKILL at random points (test_ingest.py).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SEEDS, fake_part_packages, make_settings

from bot import cli
from rag.errors import GenerationError
from rag.index.ingest import ingest
from rag.index.store import META_ID, SCHEMA_VERSION, Store, StoreError
from rag.llm import models
from rag.llm.models import BundledModel

ANSWERABLE = "Wie reagierte Kreml-Sprecher Peskow auf Trumps Andeutung eines Telefonats mit Putin?"
SMALL_ARTICLE = "003_abdad34a08e92d8c.txt"  # the shortest seed: cheap to ingest again


def _state(store: Store):
    got = store.chunks.get(include=["documents", "metadatas"])
    chunks = sorted(zip(got["ids"], got["documents"], [tuple(sorted(m.items())) for m in got["metadatas"]]))
    sources = {sid: (r.content_hash, r.status, r.chunks) for sid, r in store.manifest().items()}
    return chunks, sources


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSBOT_")}
    env.update(NEWSBOT_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", **extra)
    return env


def _cli(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, cwd=REPO,
                          timeout=timeout)


def _main(monkeypatch, capsys, data_dir: Path, *args: str, **env: str) -> tuple[int, str]:
    """`newsbot ARGS` in this process (no interpreter start-up): exit code and stderr."""
    for name in [k for k in os.environ if k.startswith("NEWSBOT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NEWSBOT_DATA_DIR", str(data_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    code = cli.main(list(args))
    return code, capsys.readouterr().err


# --- the model ----------------------------------------------------------------------------------

# The model reads every context, so a German question needs it (with the shipped decisions none
# does: `ask` then answers without loading any model, and a broken one shows at the first question
# that needs it, or at the start-up of `chat` and `discord`, which load it ahead).
READS = {"NEWSBOT_SKIP_READING": "false"}

def test_cli_ask_with_a_missing_model_file_names_the_fix(seeded, tmp_path):
    settings, _ = seeded
    result = _cli(_env(settings.data_dir, NEWSBOT_MODEL=str(tmp_path / "gone.gguf"), **READS), "ask", ANSWERABLE)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "NEWSBOT_MODEL=" in result.stderr and "newsbot models pull" in result.stderr
    assert "gone.gguf" in result.stderr


@pytest.fixture(scope="module")
def truncated_gguf(tmp_path_factory) -> Path:
    """The first 2 MB of the real 0.5B model: GGUF magic and header, but the tensors are missing."""
    if not models.is_installed(models.BUNDLED["qwen2.5-coder-0.5b"]):
        pytest.skip("bundled 0.5B model not installed")
    real = models.resolve_model_path("qwen2.5-coder-0.5b", make_settings(tmp_path_factory.mktemp("m")).model_cache_dir)
    path = tmp_path_factory.mktemp("truncated") / "truncated.gguf"
    with real.open("rb") as source:
        path.write_bytes(source.read(2_000_000))
    return path


def test_truncated_gguf_is_a_clear_generation_error(seeded, embeddings, truncated_gguf):
    from rag.wiring import build_service

    settings, _ = seeded
    service = build_service(settings.model_copy(update={"model": str(truncated_gguf)}), embeddings=embeddings)
    with pytest.raises(GenerationError) as err:
        service.answer(ANSWERABLE)
    message = str(err.value)
    assert "could not load" in message and str(truncated_gguf) in message
    assert "NEWSBOT_MODEL" in message and "newsbot models --path" in message


def test_cli_ask_with_a_truncated_gguf_exits_1(seeded, truncated_gguf, monkeypatch, capsys):
    settings, _ = seeded
    code, err = _main(monkeypatch, capsys, settings.data_dir, "ask", ANSWERABLE, NEWSBOT_MODEL=str(truncated_gguf), **READS)
    assert code == 1 and err.strip().splitlines()[-1].startswith("newsbot: llama.cpp could not load"), err


def test_cli_ask_with_a_corrupt_bundled_model_names_the_reinstall(seeded, tmp_path, monkeypatch, capsys):
    """A part package whose bytes do not match the pinned sha256: exit 1, message with the pip command."""
    parts = [b"GGUF" + b"a" * 1000, b"b" * 500]
    root, modules = fake_part_packages(tmp_path, monkeypatch, parts, prefix="reliability_fake_part")
    pinned = hashlib.sha256(b"".join(parts)).hexdigest()
    (root / modules[1] / "data" / "part02.bin").write_bytes(b"c" * 500)  # bit rot in one part
    monkeypatch.setitem(models.BUNDLED, "fake-corrupt", BundledModel("fake-corrupt", "test", modules, 1504, pinned))
    settings, _ = seeded
    code, err = _main(monkeypatch, capsys, settings.data_dir, "ask", ANSWERABLE,
                      NEWSBOT_MODEL="fake-corrupt", NEWSBOT_CACHE_DIR=str(tmp_path / "cache"), **READS)
    assert code == 1, err
    assert "does not match the pinned" in err and "pip install --force-reinstall" in err
    assert not (tmp_path / "cache" / "models" / "fake-corrupt.gguf").exists()


# --- an incompatible store ------------------------------------------------------------------------

@pytest.fixture
def small_store(tmp_path, embeddings):
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(SEEDS / SMALL_ARTICLE, articles / SMALL_ARTICLE)
    settings = make_settings(tmp_path / "data")
    store = Store(settings, embeddings)
    assert ingest(store, [articles], settings.chunk_chars).added == 1
    return store, articles, settings


def test_store_from_another_newsbot_version_is_refused_and_rebuild_recovers(small_store, monkeypatch, capsys):
    store, articles, settings = small_store
    meta = store.meta()
    store.sources.upsert(ids=[META_ID], documents=[""], metadatas=[{**meta, "schema": SCHEMA_VERSION + 1}], embeddings=[[0.0]])

    with pytest.raises(StoreError, match="another newsbot version; rebuild it with: newsbot ingest --rebuild"):
        ingest(store, [articles], settings.chunk_chars)
    code, err = _main(monkeypatch, capsys, settings.data_dir, "ask", ANSWERABLE, NEWSBOT_MODEL="no-model-needed")
    assert code == 1 and "newsbot ingest --rebuild" in err, err

    rebuilt = _cli(_env(settings.data_dir), "ingest", "--json", "--rebuild", str(articles))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    summary = json.loads(rebuilt.stdout)
    assert summary["added"] == 1 and summary["chunks"] == 5 and not summary["errors"]


def test_store_from_an_incompatible_chroma_version_is_refused(small_store, tmp_path, monkeypatch, capsys):
    """A collection schema in a format this Chroma cannot read (as a newer Chroma writes): a clear
    error from `ask` and `ingest`, and `--rebuild` starts over."""
    import sqlite3

    _, articles, settings = small_store
    copy = tmp_path / "copy"  # a path this process never opened (Chroma caches clients per path)
    shutil.copytree(settings.data_dir, copy)
    with sqlite3.connect(copy / "chroma" / "chroma.sqlite3") as db:
        db.execute("""UPDATE collections SET schema_str = '{"format": 99, "defaults": "from the future"}'""")
    for args in (("ask", ANSWERABLE), ("ingest", "--json", str(articles))):
        code, err = _main(monkeypatch, capsys, copy, *args, NEWSBOT_MODEL="no-model-needed")
        assert code == 1, err
        assert "incompatible Chroma version" in err and "newsbot ingest --rebuild" in err, err

    rebuilt = _cli(_env(copy), "ingest", "--json", "--rebuild", str(articles))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert json.loads(rebuilt.stdout)["added"] == 1


# --- a full disk --------------------------------------------------------------------------------

def _assert_consistent(store: Store, clean) -> None:
    """After a failed ingest: finished sources are exactly as in a clean ingest, unfinished ones
    are `pending` (never served), and nothing half-written is visible to answering."""
    chunks, sources = _state(store)
    clean_chunks, clean_sources = clean
    by_source: dict[str, list] = {}
    for chunk in chunks:
        by_source.setdefault(dict(chunk[2])["source"], []).append(chunk)
    for source, (content_hash, status, count) in sources.items():
        assert status in ("ok", "pending")
        if status == "ok":
            assert (content_hash, status, count) == clean_sources[source]
            assert by_source.get(source, []) == [c for c in clean_chunks if dict(c[2])["source"] == source]
    assert set(store.source_records()) == {s for s, v in sources.items() if v[1] == "ok"}
    assert any(v[1] == "pending" for v in sources.values()) or len(sources) < len(clean_sources)


def test_disk_full_mid_ingest_leaves_no_partial_corruption(tmp_path, embeddings, seeded):
    """Simulated: the vector store's add raises ENOSPC part-way through the third article's chunks."""
    _, clean_store = seeded
    clean = _state(clean_store)
    articles = tmp_path / "articles"
    shutil.copytree(SEEDS, articles)
    settings = make_settings(tmp_path / "data")
    store = Store(settings, embeddings)

    original = store.vectors.add_documents
    written = [0]

    def add_until_full(documents, ids):
        room = 22 - written[0]  # articles 000 and 001 fit (9 + 11 chunks), 002 is cut after 2 of 10
        if len(documents) > room:
            original(documents[:room], ids=ids[:room])
            written[0] += room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(settings.store_dir / "chroma.sqlite3"))
        written[0] += len(documents)
        return original(documents, ids=ids)

    store.vectors.add_documents = add_until_full
    with pytest.raises(StoreError) as err:
        ingest(store, [articles], settings.chunk_chars)
    message = str(err.value)
    assert "No space left on device" in message and "'002_140f15234ae05953'" in message
    assert "free some space and run `newsbot ingest` again" in message and "MB free" in message

    store.vectors.add_documents = original  # space is back
    _assert_consistent(store, clean)
    assert store.manifest()["002_140f15234ae05953"].status == "pending"
    summary = ingest(store, [articles], settings.chunk_chars)
    assert (summary.added, summary.unchanged, summary.errors) == (3, 2, [])
    assert _state(store) == clean


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 1 MiB tmpfs (root only); skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_real_full_disk_during_cli_ingest(tiny_disk, tmp_path, embeddings, seeded):
    """`newsbot ingest` into a 1 MiB tmpfs runs out of space mid-way: a clear message and no
    traceback; with space again (remount 64 MiB), the store is consistent and a rerun equals a
    clean ingest."""
    _, clean_store = seeded
    clean = _state(clean_store)
    articles = tmp_path / "articles"
    shutil.copytree(SEEDS, articles)
    data = tiny_disk / "data"
    failed = _cli(_env(data), "ingest", "--json", str(articles))
    assert failed.returncode == 1, f"the store fit into 1 MiB; nothing was tested\n{failed.stdout}{failed.stderr[-2000:]}"
    assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
    assert "newsbot: The store at" in failed.stderr and "free some space and run `newsbot ingest` again" in failed.stderr

    assert subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)]).returncode == 0
    store = Store(make_settings(data), embeddings)
    _assert_consistent(store, clean)
    summary = ingest(store, [articles], store.settings.chunk_chars)
    assert summary.errors == [] and summary.added + summary.updated + summary.unchanged == 5
    assert _state(store) == clean
