"""Model states (the KV cache after a token prefix) kept in RAM and on disk for reuse.

The system prompt and each question's first context block are evaluated once; later prompts
that start the same way restore the state instead of evaluating those tokens again. Both the RAM
LRU and the files on disk stay within NEWSBOT_KV_CACHE_MB each.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class KVState:
    data: bytes
    tokens: list[int]


class KVStateCache:
    """States by their token prefix: an LRU in RAM, files under `directory` (None: RAM only)."""

    def __init__(self, directory: Path | None, budget_mb: int) -> None:
        self.state_dir = directory
        self.budget_mb = budget_mb
        self._states: OrderedDict[tuple[int, ...], KVState] = OrderedDict()
        self._system_keys: set[tuple[int, ...]] = set()

    def keep(self, key: tuple[int, ...]) -> None:
        """Mark a system-prompt state: `forget` keeps it."""
        self._system_keys.add(key)

    def get(self, key: tuple[int, ...]) -> KVState | None:
        """The state for exactly these tokens, from RAM or disk (then most recently used)."""
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

    def _disk_path(self, key: tuple[int, ...]) -> Path | None:
        if self.state_dir is None:
            return None
        digest = hashlib.sha1(repr(key).encode()).hexdigest()
        return self.state_dir / f"{digest}.kv"

    def _load_disk(self, key: tuple[int, ...]) -> KVState | None:
        path = self._disk_path(key)
        if path is None or not path.is_file():
            return None
        try:
            raw = path.read_bytes()
            n = int.from_bytes(raw[:4], "little")
            tokens = list(np.frombuffer(raw[4:4 + 4 * n], dtype=np.int32))
            if tuple(tokens) != key:
                return None
            os.utime(path)
            return KVState(raw[4 + 4 * n:], [int(t) for t in tokens])
        except (OSError, ValueError):
            return None

    def _save_disk(self, state: KVState) -> None:
        path = self._disk_path(tuple(state.tokens))
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(len(state.tokens).to_bytes(4, "little") + np.asarray(state.tokens, dtype=np.int32).tobytes() + state.data)
            os.replace(tmp, path)
            files = sorted(self.state_dir.glob("*.kv"), key=lambda p: p.stat().st_mtime)
            budget = self.budget_mb * 1024 * 1024
            total = sum(p.stat().st_size for p in files)
            while files and total > budget:
                oldest = files.pop(0)
                total -= oldest.stat().st_size
                oldest.unlink(missing_ok=True)
        except OSError as exc:  # a full disk must not break answering
            logger.warning("could not persist a model state: %s", exc)
