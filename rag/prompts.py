"""Prompt files from `prompts/`, rendered strictly: a missing or unknown variable is an error."""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

from rag.errors import PromptError


class PromptLibrary:
    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise PromptError(f"prompt directory {directory} does not exist; set NEWSBOT_PROMPTS_DIR to the repo's prompts/ folder")
        self.directory = directory

    @lru_cache(maxsize=64)  # noqa: B019 - one library per process, kept for its lifetime
    def raw(self, name: str) -> str:
        path = self.directory / f"{name}.txt"
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PromptError(f"prompt file {path} is missing or unreadable ({exc.strerror})") from None

    def render(self, name: str, **values: str) -> str:
        template = self.raw(name)
        fields = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        missing = fields - values.keys()
        if missing:
            raise PromptError(f"prompt {name!r} needs {sorted(missing)}")
        extra = values.keys() - fields
        if extra:
            raise PromptError(f"prompt {name!r} has no placeholder for {sorted(extra)}")
        return template.format_map(values)

    def examples(self, name: str) -> list[tuple[str, str]]:
        """Few-shot pairs from a file of blocks separated by blank lines, each ending in `=> answer`.

        Given to the model as real user/assistant turns: small models imitate turns far more
        reliably than examples described inside one prompt."""
        pairs = []
        for block in self.raw(name).split("\n\n"):
            user, sep, reply = block.strip().rpartition("\n=> ")
            if not sep or not user.strip() or not reply.strip():
                raise PromptError(f"prompt {name!r}: every example block ends with a line '=> answer'")
            pairs.append((user.strip(), reply.strip()))
        return pairs
