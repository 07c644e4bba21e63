"""The layout holds: no import cycles, the engine knows no face, files stay small, and
.env.example lists exactly the settings there are."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO

from rag.settings import Settings

PACKAGES = ("rag", "bot")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module of ours this one imports, at the top or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _related(a: str, b: str) -> bool:
    """A package and its own submodules (a package's __init__ may re-export them)."""
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycles_among_rag_and_bot_modules():
    edges = {a: {b for b in targets if not _related(a, b)} for a, targets in _graph().items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_engine_imports_no_face_and_no_discord():
    offenders = []
    for name, path in _modules().items():
        if name.split(".")[0] != "rag":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{name}: {n}" for n in names if n.split(".")[0] in ("bot", "discord")]
    assert offenders == []


def test_no_source_file_is_over_the_line_limit():
    lengths = {str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines()) for path in _modules().values()}
    assert {path: n for path, n in lengths.items() if n > MAX_LINES} == {}


def _env_name(field: str) -> str:
    return "DISCORD_TOKEN" if field == "discord_token" else f"NEWSBOT_{field.upper()}"


def test_env_example_lists_exactly_the_settings():
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*((?:NEWSBOT_|DISCORD_)[A-Z0-9_]+)=", text, re.MULTILINE))
    assert listed == {_env_name(name) for name in Settings.model_fields}


def test_every_setting_has_a_description():
    assert [name for name, field in Settings.model_fields.items() if not field.description] == []
