"""Checks of the operator's configuration that pydantic-settings does not make.

A typo in a variable name (`NEWSBOT_TOPK`) is silently ignored by pydantic-settings, and a `.env`
line python-dotenv cannot parse is dropped with a log warning, both leaving a default in force
that the operator believes changed. The first is warned about with the nearest real name; the
second stops the program, naming the line (not its content: it may hold a token).
"""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from rag.errors import SettingsError

ENV_PREFIX = "NEWSBOT_"
# Variables with the prefix that are not settings: knobs read only by the test suite
NOT_SETTINGS_PREFIXES = ("NEWSBOT_TEST_",)
CLOSE_MATCH_CUTOFF = 0.7  # difflib ratio of the names without the prefix: TOPK -> TOP_K is 0.89


def env_files(configured: object) -> list[Path]:
    """The `.env` files pydantic-settings reads for this configuration (relative to the working folder)."""
    if configured is None:
        return []
    items: Iterable[object] = configured if isinstance(configured, list | tuple) else [configured]
    return [Path(str(item)).expanduser() for item in items]


def check_env_files(paths: list[Path], encoding: str = "utf-8") -> None:
    """SettingsError naming the first line of a `.env` that python-dotenv cannot parse."""
    from dotenv.parser import parse_stream

    for path in paths:
        try:
            text = path.read_text(encoding=encoding)
        except FileNotFoundError:
            continue
        except UnicodeDecodeError:
            raise SettingsError(f"{path} is not {encoding.upper()} text; save it as UTF-8") from None
        except OSError as exc:
            raise SettingsError(f"cannot read {path} ({exc.strerror or exc})") from None
        for binding in parse_stream(io.StringIO(text)):
            if binding.error:
                line = binding.original.line + _leading_blank_lines(binding.original.string)
                raise SettingsError(
                    f"{path}, line {line}: cannot be parsed; write NAME=value, one per line "
                    "(quote a value that has spaces or #, and close every quote); see .env.example"
                )


def unknown_variables(settings_names: Iterable[str], environ: Mapping[str, str] | None = None,
                      files: list[Path] | None = None) -> list[str]:
    """One warning per NEWSBOT_* variable (environment or `.env`) that is no setting, with the nearest real name."""
    from dotenv import dotenv_values

    known = {name.upper() for name in settings_names}
    seen: dict[str, str] = {}
    for name in (os.environ if environ is None else environ):
        seen.setdefault(name.upper(), "the environment")
    for path in files or []:
        if path.is_file():
            for name in dotenv_values(path):
                seen.setdefault(name.upper(), str(path))
    warnings = []
    for name, where in sorted(seen.items()):
        if not name.startswith(ENV_PREFIX) or name.removeprefix(ENV_PREFIX) in known or name.startswith(NOT_SETTINGS_PREFIXES):
            continue
        close = difflib.get_close_matches(name.removeprefix(ENV_PREFIX), sorted(known), n=1, cutoff=CLOSE_MATCH_CUTOFF)
        hint = f"did you mean {ENV_PREFIX}{close[0]}?" if close else "see .env.example for the settings"
        warnings.append(f"{name} (in {where}) is not a newsbot setting and is ignored; {hint}")
    return warnings


def _leading_blank_lines(text: str) -> int:
    # dotenv's parser counts a statement from the blank lines before it
    return len(text) - len(text.lstrip("\n")) if text.strip() else 0
