"""Console rendering shared by `newsbot chat` and `newsbot ask`: the sources block, the ingest
progress bar, plain consoles for scripted use, and one-line descriptions of store and model."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from rag.answer import Citation, RetrievedPassage
from rag.safe_text import strip_controls
from rag.settings import Settings

_MARKERS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\d+\])+)")


def sources_block(citations: Iterable[Citation], as_of: str | None = None) -> list[Text]:
    """`Quellen:`, then per citation `[n] Title (date; source or outlet; URL)`, the quote indented,
    "auch bei: …" for agency copies; then `Stand: <date of the newest cited article>`.
    Article text is written without control sequences (issue 17.4), whatever the store holds."""
    citations = list(citations)
    lines = [Text("Quellen:", style="bold")]
    for c in citations:
        lines.append(source_line(c))
        lines.append(Text(f"    „{strip_controls(c.quote)}“", style="italic"))
        if c.also:
            lines.append(Text(f"    {also_text(c)}", style="dim"))
    if citations:
        lines.append(Text(f"Stand: {as_of or 'undatiert'}", style="dim"))
    return lines


def sources_text(citations: list[Citation], as_of: str | None = None) -> str:
    """The sources block as plain text, after a blank line ("" without citations)."""
    if not citations:
        return ""
    return "\n".join(["", *(line.plain for line in sources_block(citations, as_of))])


def also_text(citation: Citation) -> str:
    """Agency copies: "auch bei: Outlet B, Outlet C" (empty without copies)."""
    names = list(dict.fromkeys((a.get("outlet") or a.get("url") or "").strip() for a in citation.also))
    return strip_controls(f"auch bei: {', '.join(n for n in names if n)}") if any(names) else ""


@contextmanager
def ingest_progress(console: Console, *, detailed: bool = False) -> Iterator[Any]:
    """A transient progress bar; yields the `progress(name, done, total)` callback for ingest.
    `detailed` (the chat) adds a spinner, the elapsed time and the file name."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if detailed:
        columns = (SpinnerColumn(), TextColumn("Ingesting"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[name]}", style="dim", markup=False))
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("ingest", total=None, name="")

            def progress(name: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, name=name)

            yield progress
        return
    with Progress(TextColumn("ingesting {task.description}"), BarColumn(), MofNCompleteColumn(), transient=True,
                  console=console) as bar:
        task = bar.add_task("", total=None)

        def update(name: str, done: int, total: int) -> None:
            bar.update(task, description=name, completed=done, total=total)

        yield update


def comparable(text: str) -> str:
    """Text as a reader sees it: "sei. [1]" and "sei [1]." read the same, "[2]" and "[1]" do not."""
    text = _MARKERS_AFTER_STOP.sub(r"\2\1", text)
    return " ".join(text.split())


def source_line(c: Citation) -> Text:
    where = "; ".join(x for x in (c.outlet if c.url else "", c.url or c.source) if x)  # web sources: outlet and page
    return Text.assemble((f"[{c.n}] ", "bold cyan"), (strip_controls(c.title or c.source), "bold"),
                         (strip_controls(f" ({c.date or 'undatiert'}; "), "dim"), (strip_controls(where), "cyan"), (")", "dim"))


def group_by_source(passages: list[RetrievedPassage]) -> list[tuple[str, list[RetrievedPassage]]]:
    groups: dict[str, list[RetrievedPassage]] = {}
    for p in passages:
        groups.setdefault(p.source, []).append(p)
    return list(groups.items())


def plain_console(file: TextIO) -> Console:
    """A console that writes text only: no colours, cursor moves or wrapping."""
    return Console(file=file, force_terminal=False, force_interactive=False, color_system=None,
                   no_color=True, highlight=False, emoji=False, soft_wrap=True, width=10_000)


def describe_store(settings: Settings) -> str:
    if settings.uses_chroma_server:
        return f"Chroma server {settings.chroma_host}:{settings.chroma_port}, collection {settings.collection}"
    return f"{settings.store_dir}, collection {settings.collection}"


def describe_model(service: Any) -> str:
    settings = service.settings
    if settings.llm_backend == "openai":
        return f"{settings.openai_model} via {settings.openai_base_url}"
    reader = f", reads the context: {settings.reading_model}" if settings.reading_model != settings.model else ""
    return f"{service.model_name} (llama.cpp, {'GPU' if settings.n_gpu_layers else 'CPU'}{reader})"


