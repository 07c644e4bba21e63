"""Model-state files: stable names across processes, eviction by size, deltas from the system state."""

from __future__ import annotations

import os

import numpy as np

from rag.llm.kv_cache import BlockStore, KVState, KVStateCache, evict, state_name
from rag.llm.state_delta import decode, encode


def test_a_state_saved_with_numpy_token_ids_is_found_with_python_ints(tmp_path):
    tokens = np.array([151644, 8948, 198, 42], dtype=np.intc)
    writer = KVStateCache(tmp_path, 64, identity="m|1")
    writer.put(tuple(tokens), KVState(b"state-bytes", list(tokens)), persist=True)  # as _snapshot used to give them
    reader = KVStateCache(tmp_path, 64, identity="m|1")  # a later process: nothing in RAM
    found = reader.get((151644, 8948, 198, 42))
    assert found is not None and found.data == b"state-bytes" and found.tokens == [151644, 8948, 198, 42]
    assert all(type(t) is int for t in found.tokens)
    assert len(list(tmp_path.glob("*.kv"))) == 1
    writer.put(tuple(tokens), KVState(b"state-bytes", list(tokens)), persist=True)
    assert len(list(tmp_path.glob("*.kv"))) == 1  # the same file again, not a second one


def test_the_name_depends_on_the_model_identity_and_every_token():
    assert state_name("a", [1, 2, 3]) == state_name("a", (np.int64(1), np.int32(2), 3))
    assert state_name("a", [1, 2, 3]) != state_name("b", [1, 2, 3])
    assert state_name("a", [1, 2, 3]) != state_name("a", [1, 2, 4])
    assert KVStateCache(None, 1, "b").get((1, 2, 3)) is None


def test_disk_files_are_evicted_least_recently_used_first_by_total_size(tmp_path):
    cache = KVStateCache(tmp_path, 1, identity="m")  # 1 MB
    chunk = b"x" * 400_000
    for n in range(4):
        cache.put((n,), KVState(chunk, [n]), persist=True)
        os.utime(cache.disk_path((n,)), (1000 + n, 1000 + n))
    total = sum(p.stat().st_size for p in tmp_path.glob("*.kv"))
    assert total <= 1024 * 1024
    assert sorted(p.name for p in tmp_path.glob("*.kv")) == sorted(cache.disk_path((n,)).name for n in (2, 3))
    (tmp_path / "stray.kv.tmp123").write_bytes(b"y" * 900_000)  # a crashed writer's leftover goes first
    assert evict(tmp_path, 1024 * 1024) <= 1024 * 1024
    assert not (tmp_path / "stray.kv.tmp123").exists() and len(list(tmp_path.glob("*.kv"))) == 2


def _layered(n_cells: int, logits: bytes, k_rows, v_rows) -> bytes:
    """A stand-in with llama.cpp's layout: counts, cell positions, logits, per-layer K rows, transposed V."""
    out = [n_cells.to_bytes(4, "little"), b"".join(i.to_bytes(4, "little") + b"\1\0\0\0\0\0\0\0" for i in range(n_cells)), logits]
    for rows in k_rows:
        out += [b"\1\0\0\0\0\2\0\0\0\0\0\0", rows[: n_cells * 512]]
    for rows in v_rows:
        out += [b"\1\0\0\0"] + [row[: n_cells * 2] for row in rows]
    return b"".join(out)


def test_a_block_state_is_stored_as_a_small_delta_from_the_system_state_and_restored_exactly(tmp_path):
    rng = np.random.default_rng(0)
    k_rows = [rng.bytes(300 * 512) for _ in range(6)]
    v_rows = [[rng.bytes(300 * 2) for _ in range(32)] for _ in range(6)]
    base = KVState(_layered(200, rng.bytes(40_000), k_rows, v_rows), list(range(200)))
    full = KVState(_layered(260, rng.bytes(40_000), k_rows, v_rows), list(range(260)))
    delta = encode(base.data, full.data)
    assert delta is not None and len(delta) < 0.4 * len(full.data)
    assert decode(base.data, delta) == full.data
    assert encode(base.data, rng.bytes(len(full.data))) is None  # nothing in common: stored in full

    store = BlockStore(tmp_path, "m")
    written = store.write(base, full)
    assert written < 0.4 * len(full.data) and store.has(full.tokens)
    cache = KVStateCache(None, 64, "m", blocks=BlockStore(tmp_path, "m"))  # a later process
    restored = cache.get(tuple(full.tokens))
    assert restored is not None and restored.data == full.data
    assert cache.disk_hits == 1
    assert list(store.files()) == [state_name("m", full.tokens)]  # the base is not a block
