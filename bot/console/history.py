"""The console chat's input history file (issue 17.11).

Questions typed into `newsbot chat` are personal: the file is readable by its owner only (0600,
also when an older newsbot left it 0644), keeps only the last NEWSBOT_CHAT_HISTORY_LINES entries
and is not written at all when that setting is 0 (the history then lives in memory for one run).
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

from prompt_toolkit.history import FileHistory, History, InMemoryHistory

logger = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700  # only for a folder created here; an existing data folder is left as it is
_ENTRY_START = b"\n# "  # prompt_toolkit's format: "\n# <timestamp>\n+line\n+line\n" per entry


class BoundedFileHistory(FileHistory):
    """prompt_toolkit's FileHistory, created 0600 and cut to the last `limit` entries."""

    def __init__(self, path: Path, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.path = path
        self.limit = limit
        secure_file(path)
        self._entries = trim(path, limit)
        super().__init__(str(path))

    def store_string(self, string: str) -> None:
        super().store_string(string)  # appends to the file, whose mode stays 0600
        self._entries += 1
        if self._entries > self.limit:
            self._entries = trim(self.path, self.limit)


def open_history(path: Path, limit: int) -> History:
    """The history for a chat session: on disk when allowed and possible, otherwise in memory."""
    if limit <= 0:
        return InMemoryHistory()
    try:
        return BoundedFileHistory(path, limit)
    except OSError as exc:
        logger.warning("input history not kept across runs: cannot write %s (%s)", path, exc)
        return InMemoryHistory()


def secure_file(path: Path) -> None:
    """Create `path` owner-only, or make an existing file owner-only."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=DIR_MODE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def trim(path: Path, limit: int) -> int:
    """Keep the last `limit` entries of the file (rewritten atomically, 0600); returns how many are left."""
    data = path.read_bytes()
    starts = _entry_starts(data)
    if len(starts) <= limit:
        return len(starts)
    kept = data[starts[-limit]:]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(kept)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return limit


def _entry_starts(data: bytes) -> list[int]:
    starts: list[int] = []
    at = 0 if data.startswith(_ENTRY_START[1:]) else data.find(_ENTRY_START)
    while at != -1:
        starts.append(at)
        at = data.find(_ENTRY_START, at + 1)
    return starts
