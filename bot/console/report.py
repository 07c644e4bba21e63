"""Tables for `newsbot eval` and `newsbot bench` (the data comes from rag.quality)."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table


def print_eval(summaries: dict[str, dict[str, Any]]) -> None:
    """One column per question set, side by side (held-out first: the figures to report)."""
    first = next(iter(summaries.values()))
    table = Table(title=f"newsbot eval ({first['model']})")
    table.add_column("metric")
    for name, summary in summaries.items():
        table.add_column(f"{name} ({summary['questions']})", justify="right")
    keys = list(dict.fromkeys(k for summary in summaries.values() for k in summary if k not in ("questions", "model")))
    for key in keys:
        cells = []
        for summary in summaries.values():
            value = summary.get(key, "")
            cells.append(", ".join(value) if isinstance(value, list) else str(value))
        table.add_row(key, *cells)
    Console().print(table)


def print_bench(report: dict[str, Any]) -> None:
    console = Console()
    console.print(f"machine: {report['machine']}  model: {report['model']}", markup=False)  # a model path may hold "[/]"
    runs = [k for k in ("newsbot_cold", "newsbot_blocks", "newsbot_warm", "naive") if k in report]
    if runs:
        table = Table(title="per stage: median / p95")
        table.add_column("stage")
        for run in runs:
            table.add_column(run, justify="right")
        for key in ("retrieve_s", "prompt_tokens", "prefill_tokens", "first_token_s", "total_s", "generated_tokens", "gen_tok_s"):
            table.add_row(key, *[f"{report[r][key]['median']} / {report[r][key]['p95']}" for r in runs])
        table.add_row("answer_correct", *[str(report[r].get("answer_correct")) for r in runs])
        console.print(table)
        for key in ("ratio_first_token_cold", "ratio_total_cold", "ratio_first_token_blocks", "ratio_first_token_warm", "ratio_total_warm",
                    "block_states"):
            if key in report:
                console.print(f"{key}: {report[key]}", markup=False)
    for face, title in (("chat", "newsbot chat in a pty: Enter to first character (s)"),
                        ("discord", "/ask through the bot and the Discord double: to the first edit with text (s)")):
        if face in report:
            table = Table(title=title)
            for col in ("path", "n", "median", "p95", "ratio_to_naive"):
                table.add_column(col, justify="right")
            for path, stats in report[face]["paths"].items():
                table.add_row(path, *[str(stats.get(c)) for c in ("n", "median", "p95", "ratio_to_naive")])
            console.print(table)
    if "retrieval_scale" in report:
        table = Table(title="retrieval at scale")
        for col in ("chunks", "build_s", "chunks_per_s", "query_p50_ms", "query_p95_ms"):
            table.add_column(col, justify="right")
        for row in report["retrieval_scale"]:
            table.add_row(*[str(row[c]) for c in ("chunks", "build_s", "chunks_per_s", "query_p50_ms", "query_p95_ms")])
        console.print(table)
    sys.stdout.flush()
