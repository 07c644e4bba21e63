"""Model states (the KV cache after a token prefix) kept in RAM and on disk for reuse.

The system prompt and each question's first context block are evaluated once; later prompts
that start the same way restore the state instead of evaluating those tokens again. Both the RAM
LRU and the files on disk stay within NEWSBOT_KV_CACHE_MB each.

A state's file is named by a stable hash of the model's identity and the token ids as int32
bytes (`state_name`), so a later process finds what an earlier one wrote. (The name used to come
from `repr` of the token tuple: numpy ints on save, Python ints on load, so nothing was ever
found again and every run wrote new files.) The block states computed at ingest
(`BlockStore`, filled by rag/answering/block_states.py) are searched after the own directory;
they are stored as differences from the system prompt's state (rag/llm/state_delta.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

SUFFIX = ".kv"


@dataclass
class KVState:
    data: bytes
    tokens: list[int]


def state_name(identity: str, tokens: Sequence[int]) -> str:
    """The file name of the state after `tokens` for this model identity: the same in every process."""
    digest = hashlib.sha256(identity.encode("utf-8") + b"\0" + np.asarray(tokens, dtype=np.int32).tobytes())
    return digest.hexdigest()[:40] + SUFFIX


def write_state(path: Path, state: KVState) -> int:
    """Write atomically (a temporary file, then a rename); returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = len(state.tokens).to_bytes(4, "little") + np.asarray(state.tokens, dtype=np.int32).tobytes() + state.data
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
    return len(payload)


def read_state(path: Path, tokens: Sequence[int] | None) -> KVState | None:
    """The state in `path` if it is the one after exactly `tokens` (None: whichever it is)."""
    try:
        raw = path.read_bytes()
        n = int.from_bytes(raw[:4], "little")
        stored = np.frombuffer(raw[4:4 + 4 * n], dtype=np.int32)
        if len(stored) != n or tokens is not None and (
                n != len(tokens) or not np.array_equal(stored, np.asarray(tokens, dtype=np.int32))):
            return None
        return KVState(raw[4 + 4 * n:], [int(t) for t in stored])
    except (OSError, ValueError):
        return None


def evict(directory: Path, budget_bytes: int) -> int:
    """Delete the least recently used state files until the rest fit in `budget_bytes`; returns
    the bytes kept. Stray temporary files of crashed writers count too and go first."""
    try:
        files = [(p.stat().st_mtime, p.stat().st_size, p) for p in directory.iterdir() if p.is_file()]
    except OSError:
        return 0
    stray = [f for f in files if not f[2].name.endswith(SUFFIX)]
    files = stray + sorted(f for f in files if f[2].name.endswith(SUFFIX))
    total = sum(size for _, size, _ in files)
    for _, size, path in files:
        if total <= budget_bytes:
            break
        if path.name.endswith(SUFFIX) or "tmp" in path.name:
            path.unlink(missing_ok=True)
            total -= size
    return total


class KVStateCache:
    """States by their token prefix: an LRU in RAM, files under `directory` (None: RAM only)."""

    def __init__(self, directory: Path | None, budget_mb: int, identity: str = "", blocks: BlockStore | None = None) -> None:
        self.state_dir = directory
        self.budget_mb = budget_mb
        self.identity = identity
        self.blocks = blocks
        self.disk_hits = 0
        self._states: OrderedDict[tuple[int, ...], KVState] = OrderedDict()
        self._system_keys: set[tuple[int, ...]] = set()

    def keep(self, key: tuple[int, ...]) -> None:
        """Mark a system-prompt state: `forget` keeps it."""
        self._system_keys.add(tuple(int(t) for t in key))

    def get(self, key: tuple[int, ...]) -> KVState | None:
        """The state for exactly these tokens, from RAM or disk (then most recently used)."""
        key = tuple(int(t) for t in key)
        state = self._states.get(key) or self._load_disk(key)
        if state is not None:
            self._states[key] = state
            self._states.move_to_end(key)
        return state

    def longest_prefix(self, tokens: list[int]) -> KVState | None:
        """The longest cached state whose tokens are a proper prefix of `tokens` (e.g. the system prompt)."""
        best: KVState | None = None
        for snapshot_key, snapshot in self._states.items():
            n = len(snapshot_key)
            if n < len(tokens) and tokens[:n] == list(snapshot_key) and (best is None or n > len(best.tokens)):
                best = snapshot
        return best

    def put(self, key: tuple[int, ...], state: KVState, persist: bool = False) -> None:
        key = tuple(int(t) for t in key)
        state.tokens = [int(t) for t in state.tokens]
        self._states[key] = state
        if persist:
            self._save_disk(state)
        budget = self.budget_mb * 1024 * 1024
        while len(self._states) > 1 and sum(len(s.data) for s in self._states.values()) > budget:
            self._states.popitem(last=False)

    def forget(self) -> None:
        """Drop every cached chunk state (RAM, and disk for this process) but the system prompts'."""
        self._states = OrderedDict((k, v) for k, v in self._states.items() if k in self._system_keys)
        self.state_dir = None
        self.blocks = None

    def disk_path(self, key: Sequence[int]) -> Path | None:
        if self.state_dir is None:
            return None
        return self.state_dir / state_name(self.identity, key)

    def _load_disk(self, key: tuple[int, ...]) -> KVState | None:
        path = self.disk_path(key)
        state = read_state(path, key) if path is not None and path.is_file() else None
        if state is not None:
            try:
                os.utime(path)  # most recently used: evicted last
            except OSError:
                pass
        elif self.blocks is not None:
            state = self.blocks.load(key)
        if state is not None:
            self.disk_hits += 1
        return state

    def _save_disk(self, state: KVState) -> None:
        path = self.disk_path(state.tokens)
        if path is None:
            return
        if self.blocks is not None and self.blocks.has(state.tokens):
            return  # a block state from ingest: nothing to add
        try:
            write_state(path, state)
            evict(path.parent, self.budget_mb * 1024 * 1024)
        except OSError as exc:  # a full disk must not break answering
            logger.warning("could not persist a model state: %s", exc)


class BlockStore:
    """The block states computed at ingest: `base-<name>` holds the system prompt's state in full,
    every other file one block state as a delta from it (or in full where no delta was found)."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = directory
        self.identity = identity
        self._bases: dict[str, bytes] = {}

    def path(self, tokens: Sequence[int]) -> Path:
        return self.directory / state_name(self.identity, tokens)

    def has(self, tokens: Sequence[int]) -> bool:
        return self.path(tokens).is_file()

    def files(self) -> dict[str, int]:
        """Block state files (not the bases) and their sizes."""
        try:
            return {p.name: p.stat().st_size for p in self.directory.glob("*" + SUFFIX) if not p.name.startswith("base-")}
        except OSError:
            return {}

    def remove(self, name: str) -> None:
        (self.directory / name).unlink(missing_ok=True)

    def write(self, base: KVState, state: KVState) -> int:
        """Store `state` as a delta from `base` (written beside it once); returns the bytes on disk."""
        from rag.llm.state_delta import encode

        base_name = "base-" + state_name(self.identity, base.tokens)
        if not (self.directory / base_name).is_file():
            write_state(self.directory / base_name, base)
        delta = encode(base.data, state.data)
        data = b"D" + base_name.encode("ascii") + b"\n" + delta if delta is not None else b"F" + state.data
        return write_state(self.path(state.tokens), KVState(data, state.tokens))

    def load(self, tokens: Sequence[int]) -> KVState | None:
        from rag.llm.state_delta import decode

        path = self.path(tokens)
        stored = read_state(path, tokens) if path.is_file() else None
        if stored is None:
            return None
        try:
            if stored.data[:1] == b"F":
                return KVState(stored.data[1:], stored.tokens)
            end = stored.data.index(b"\n")
            base_name = stored.data[1:end].decode("ascii")
            if base_name not in self._bases:
                base = read_state(self.directory / base_name, None)
                if base is None:
                    return None
                self._bases[base_name] = base.data
            return KVState(decode(self._bases[base_name], stored.data[end + 1:]), stored.tokens)
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning("block state %s unreadable (%s); evaluating instead", path.name, exc)
            return None
