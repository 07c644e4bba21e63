"""Log output of the command line: one stderr handler that enforces the chosen level itself.

Setting a logger's level is not enough: some libraries set their own at import (bm25s sets
DEBUG when it is first imported, after start-up), so the handler drops whatever is below the
level, and below WARNING for the chatty libraries, whichever logger it comes from.
"""

from __future__ import annotations

import logging
import os
import sys

# Libraries whose INFO and DEBUG lines are noise for an operator (shown from WARNING on)
NOISY = ("httpx", "chromadb", "sentence_transformers", "urllib3", "discord", "bm25s", "dotenv")


class _LevelGate(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return False
        return record.levelno >= logging.WARNING or record.name.split(".", 1)[0] not in NOISY


def setup_logging(log_level: str, verbose: int) -> None:
    """`-v` = INFO, `-vv` = DEBUG, otherwise NEWSBOT_LOG_LEVEL (default WARNING)."""
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else getattr(logging, log_level)
    root = logging.getLogger()
    if not root.handlers:  # a host that configured logging itself (pytest, an embedding app) keeps its handlers as they are
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_LevelGate(level))
        root.addHandler(handler)
        root.setLevel(level)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
