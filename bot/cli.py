"""`newsbot` command line: ingest, feeds, sources, forget, ask, chat, discord, eval, bench, models."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bot.logs import setup_logging
from bot.quality import add_fit_parser, cmd_fit
from rag.errors import SettingsError
from rag.settings import Settings, load_settings, unknown_setting_warnings

logger = logging.getLogger(__name__)

EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsbot", description="Grounded, cited answers from German news articles.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="add, update and remove articles in the store (incremental)")
    p.add_argument("paths", nargs="*", help="files, folders or URLs of RSS/Atom feeds and article pages "
                   "(default: the seeds folder)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--rebuild", action="store_true", help="start the store from scratch")

    p = sub.add_parser("feeds", help="feeds that chat and discord refresh in the background")
    fsub = p.add_subparsers(dest="feeds_command", required=True)
    f = fsub.add_parser("add", help="register a feed and ingest it now")
    f.add_argument("url")
    f.add_argument("--no-fetch", action="store_true", help="only register it; the next refresh ingests it")
    f.add_argument("--json", action="store_true")
    f = fsub.add_parser("list", help="registered feeds with their last refresh")
    f.add_argument("--json", action="store_true")
    f = fsub.add_parser("remove", help="unregister a feed and delete its articles")
    f.add_argument("url")
    f = fsub.add_parser("new", help="web articles added since a date, or the last N (what Discord's /neu shows)")
    f.add_argument("--since", help="YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)")
    f.add_argument("--last", type=int, help="at most this many, newest first")
    f.add_argument("--json", action="store_true")

    p = sub.add_parser("sources", help="list the stored sources (id, date, title, file or URL)")
    p.add_argument("--json", action="store_true", help="one JSON list")

    p = sub.add_parser("forget", help="delete one source (id, URL or file path) from the store; feeds will not bring it back")
    p.add_argument("source")

    p = sub.add_parser("ask", help="answer one question (or a JSONL file of questions)")
    p.add_argument("question", nargs="?", help="the question, in German or English")
    p.add_argument("--json", action="store_true", help="print one JSON object per answer")
    p.add_argument("--file", type=Path, help="JSONL with `id` and `question` per line")
    p.add_argument("--source", action="append", default=[], help="only search this source id (repeatable)")
    p.add_argument("--since", help="only articles dated on/after YYYY-MM[-DD]")
    p.add_argument("--until", help="only articles dated on/before YYYY-MM[-DD]")

    sub.add_parser("chat", help="interactive console chat (plain line mode when piped)")
    sub.add_parser("discord", help="run the Discord bot (needs DISCORD_TOKEN)")

    p = sub.add_parser("eval", help="retrieval and answer metrics on a question set")
    p.add_argument("questions", nargs="*", type=Path,
                   help="JSONL question sets (default: benchmarks/questions/heldout.jsonl and ../shared/eval/questions.jsonl)")
    p.add_argument("--all", action="store_true", help="also the tune questions (what the decisions were fitted on)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--retrieval-only", action="store_true", help="skip generation (fast)")
    p.add_argument("--out", type=Path, help="write per-question results (JSONL) here")

    p = sub.add_parser("bench", help="time the pipeline per stage; compare with the naive baseline")
    p.add_argument("questions", nargs="?", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--baseline", choices=["naive"], help="also run the LangChain-tutorial baseline")
    p.add_argument("--retrieval-scale", type=int, metavar="N", help="synthetic store of up to N chunks: ingest and query latency")
    p.add_argument("--limit", type=int, help="only the first N questions")
    p.add_argument("--chat", type=int, metavar="SESSIONS", help="also time `newsbot chat` in a pseudo-terminal, Enter to first character")
    p.add_argument("--discord", action="store_true",
                   help="also time /ask through the real bot client against the loopback Discord double, to the first edit with text")

    p = sub.add_parser("models", help="list chat models, print the active model's path, or pull a GGUF")
    p.add_argument("--path", action="store_true", help="print only the active model's GGUF path (assembling it if needed)")
    msub = p.add_subparsers(dest="models_command")
    pull = msub.add_parser("pull", help="download a GGUF from the Hugging Face hub")
    pull.add_argument("repo")
    pull.add_argument("file")

    add_fit_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    setup_logging(settings.log_level, args.verbose)
    for warning in unknown_setting_warnings():
        logger.warning(warning)
    from rag.errors import QuestionError, UserError

    try:
        return COMMANDS[args.command](settings, args)
    except UserError as exc:  # every error written for people: one line, no traceback
        print(f"newsbot: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, QuestionError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# ---- commands -----------------------------------------------------------------------------------

def cmd_ingest(settings: Settings, args) -> int:
    from rich.console import Console
    from rich.text import Text

    from rag.index.store import wipe
    from rag.wiring import split_sources

    if args.rebuild:
        wipe(settings)
    paths, urls = split_sources(args.paths, settings.seeds_dir)
    summary = run_ingest(settings, paths, show_progress=not args.json, urls=urls)
    blocks = run_block_states(settings, show_progress=not args.json)
    console = Console(stderr=True)
    for error in summary.errors:
        console.print(Text.assemble(("skipped:", "yellow"), f" {error}"), highlight=False, soft_wrap=True)  # a path may hold "[/]"
    if args.json:
        print(json.dumps({**summary.as_json(), **({"model_states": blocks.as_json()} if blocks else {})}, ensure_ascii=False))
    else:
        print(f"added {summary.added}, updated {summary.updated}, removed {summary.removed}, "
              f"unchanged {summary.unchanged}; {summary.chunks} chunks in the store"
              + (f"; {summary.merged} agency copies merged" if summary.merged else "")
              + (f"; {len(summary.errors)} file(s) skipped" if summary.errors else ""))
        if blocks:
            print(f"model states: {blocks.computed} computed, {blocks.kept} kept, {blocks.removed} removed, "
                  f"{blocks.over_budget} over NEWSBOT_BLOCK_STATES_MB; {blocks.disk_mb:.0f} MB, {blocks.seconds:.0f} s")
    return 0 if not summary.errors else 1


def run_block_states(settings: Settings, show_progress: bool = True, service=None):
    """The model states of every first context block, after an ingest (None: already current or off)."""
    from bot.console.render import ingest_progress
    from rag.answering.block_states import up_to_date
    from rag.prompts import PromptLibrary
    from rag.wiring import build_service, ensure_block_states, open_store

    if up_to_date(settings, service.store if service is not None else open_store(settings), PromptLibrary(settings.prompts_dir)):
        return None
    service = service or build_service(settings)
    if not show_progress:
        return ensure_block_states(service)
    with ingest_progress(_stderr_console()) as progress:
        return ensure_block_states(service, progress)


def run_ingest(settings: Settings, paths: list[Path], show_progress: bool = True, store=None, urls=()):
    """Ingest with a progress bar on stderr; shared by `ingest`, `feeds add`, `ask`, `eval`, `bench` and
    `discord` start-up. `urls`: feeds and article pages, ingested after the paths."""
    from bot.console.render import ingest_progress
    from rag.wiring import ingest_paths, open_store

    store = store if store is not None else open_store(settings)
    if not show_progress:
        return ingest_paths(settings, store, paths, urls=urls)
    with ingest_progress(_stderr_console()) as progress:
        return ingest_paths(settings, store, paths, progress, urls=urls)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def _filters(args):
    from rag.answering.retrieve import RetrievalFilter
    from rag.index.documents import date_ordinal

    def ordinal(value: str | None, upper: bool) -> int | None:
        if not value:
            return None
        parts = value.split("-")
        if not (1 <= len(parts) <= 3 and all(p.isdigit() for p in parts)):
            raise SystemExit(f"newsbot: dates look like YYYY, YYYY-MM or YYYY-MM-DD, not {value!r}")
        ordv = date_ordinal(value)
        if upper:
            if len(parts) == 1:
                ordv += 1299
            elif len(parts) == 2:
                ordv += 99
        return ordv

    return RetrievalFilter(frozenset(args.source) or None, ordinal(args.since, False), ordinal(args.until, True))


def cmd_ask(settings: Settings, args) -> int:
    from rag.errors import QuestionError
    from rag.safe_text import strip_controls
    from rag.wiring import build_service

    if not args.file and (args.question is None or not args.question.strip()):
        print("usage: newsbot ask \"QUESTION\" [--json] | newsbot ask --json --file QUESTIONS.jsonl\n"
              "newsbot: the question is empty; ask something about the articles", file=sys.stderr)
        return EXIT_USAGE
    service = build_service(settings)
    _ensure_store(settings, service)
    filters = _filters(args)
    if args.file:
        try:
            lines = args.file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            print(f"newsbot: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        status = 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                question = item["question"]
            except (ValueError, KeyError, TypeError):
                print(json.dumps({"line": number, "error": "not a JSON object with a 'question'"}), flush=True)
                status = 1
                continue
            try:
                answer = service.answer(question, filters=filters)
            except QuestionError as exc:
                print(json.dumps({"id": item.get("id"), "question": question, "error": str(exc)}, ensure_ascii=False), flush=True)
                status = 1
                continue
            answer.id = item.get("id")
            print(json.dumps(answer.to_json(), ensure_ascii=False), flush=True)
        return status
    if args.json:
        answer = service.answer(args.question, filters=filters)
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return 0
    streamed: list[str] = []

    def on_token(piece: str) -> None:  # article text reaches the terminal without control sequences (issue 17.4)
        piece = strip_controls(piece)
        streamed.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    answer = service.answer(args.question, on_token=on_token if sys.stdout.isatty() else None, filters=filters)
    if streamed:
        sys.stdout.write("\n")
        if "".join(streamed).strip() != strip_controls(answer.text).strip():
            print("\n(verified:)")
            print(strip_controls(answer.text))
    else:
        print(strip_controls(answer.text))
    print(render_sources(answer))
    return 0


def render_sources(answer) -> str:
    from bot.console.render import sources_text

    return sources_text(answer.citations, answer.as_of)


def _ensure_store(settings: Settings, service) -> None:
    """First use: ingest the seeds, so `ask` and `chat` work on a fresh machine. A store built by
    another newsbot version or embedding model is refused here (StoreError naming --rebuild)."""
    from rag.wiring import needs_seeds

    if needs_seeds(service.store):
        print("The store is empty: ingesting the seed articles first…", file=sys.stderr)
        summary = run_ingest(settings, [settings.seeds_dir], show_progress=sys.stderr.isatty(), store=service.store)
        for error in summary.errors:
            print(f"skipped: {error}", file=sys.stderr)
        if service.store.chunk_count() == 0:  # answering now would only ever refuse
            from rag.errors import StoreError

            raise StoreError(f"the store is still empty: no article from {settings.seeds_dir} could be ingested"
                             + (f" ({len(summary.errors)} file(s) skipped, see above)" if summary.errors else " (no articles there)")
                             + "; fix them, or add articles with: newsbot ingest PATH_OR_URL")


def cmd_chat(settings: Settings, args) -> int:
    from bot.console.chat import run_chat
    from rag.wiring import build_service, start_feed_refresh

    service = build_service(settings)
    refresher = start_feed_refresh(settings, service.store)
    try:
        return run_chat(settings, service)
    finally:
        if refresher is not None:
            refresher.stop()


def cmd_discord(settings: Settings, args) -> int:
    from bot.discord import run_bot
    from rag.wiring import build_service, start_feed_refresh

    def factory():
        service = build_service(settings)
        _ensure_store(settings, service)
        service.warm_up()
        start_feed_refresh(settings, service.store)  # a daemon thread: ends with the process
        return service

    return run_bot(settings, factory)


def cmd_eval(settings: Settings, args) -> int:
    from bot.console.report import print_eval
    from bot.quality import QUESTIONS
    from rag.quality.evaluate import DEFAULT_QUESTIONS, evaluate, load_questions
    from rag.wiring import build_service

    paths = args.questions or [p for p in (QUESTIONS / "heldout.jsonl", DEFAULT_QUESTIONS) if p.is_file()]
    if args.all:
        paths = [QUESTIONS / "tune.jsonl", *paths]
    missing = [p for p in paths if not p.is_file()]
    if missing or not paths:
        print(f"newsbot: question file {missing[0] if missing else DEFAULT_QUESTIONS} not found; pass one: newsbot eval QUESTIONS.jsonl",
              file=sys.stderr)
        return 2
    sets = {p.stem if p.parent.name == "questions" else p.parent.name + "/" + p.stem: load_questions(p) for p in paths}
    service = build_service(settings)
    _ensure_store(settings, service)
    if not args.retrieval_only:  # timed as after a chat's start-up: model loaded, corpus prepared
        service.warm_up()

    def progress(result) -> None:
        print(f"{result.id}: {'correct' if result.correct else 'refused' if result.refused else '-'} "
              f"({result.total_s or 0:.1f} s) {result.answer[:100]!r}", file=sys.stderr, flush=True)

    summaries = {}
    out = args.out.open("w", encoding="utf-8") if args.out else None
    try:
        for name, questions in sets.items():
            summary, results = evaluate(service, questions, retrieval_only=args.retrieval_only, on_result=progress)
            summary["model"] = service.model_name
            summaries[name] = summary
            for result in results if out else ():
                out.write(json.dumps({"set": name, **result.__dict__}, ensure_ascii=False) + "\n")
    finally:
        if out:
            out.close()
    if args.json:  # one set: its summary (as before); several: {"sets": {name: summary}}
        print(json.dumps(next(iter(summaries.values())) if len(summaries) == 1 else {"sets": summaries}, ensure_ascii=False))
        return 0
    print_eval(summaries)
    return 0


def cmd_bench(settings: Settings, args) -> int:
    from bot.console.report import print_bench
    from rag.quality.bench import run_bench, scale_report
    from rag.quality.evaluate import DEFAULT_QUESTIONS, load_questions
    from rag.wiring import build_service

    if args.retrieval_scale:
        report = scale_report(settings, args.retrieval_scale)
    else:
        questions = load_questions(args.questions or DEFAULT_QUESTIONS)[: args.limit or None]
        service = build_service(settings)
        _ensure_store(settings, service)
        report = run_bench(settings, service, questions, args.baseline)
        if args.chat:
            from rag.quality.wait import chat_waits, variant_env

            report["chat"] = chat_waits(questions, variant_env(settings), sessions=args.chat)
        if args.discord:
            from bot.discord.bench import discord_waits

            report["discord"] = discord_waits(service, questions)
        naive = report.get("naive", {}).get("first_token_s", {}).get("median")
        for face in ("chat", "discord"):
            for stats in report.get(face, {}).get("paths", {}).values():
                stats["ratio_to_naive"] = round(stats["median"] / naive, 3) if naive else None
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_bench(report)
    return 0


def cmd_models(settings: Settings, args) -> int:
    from rag.llm.models import BUNDLED, is_installed, pull, resolve_model_path

    if args.models_command == "pull":
        path = pull(args.repo, args.file, settings.model_cache_dir)
        print(path)
        print(f"use it with: NEWSBOT_MODEL={path}", file=sys.stderr)
        return 0
    if args.path:
        print(resolve_model_path(settings.model, settings.model_cache_dir))
        return 0
    print(f"{'':2}{'name':22} {'installed':10} description")
    for model in BUNDLED.values():
        active = "*" if settings.model == model.name else " "
        print(f"{active} {model.name:22} {'yes' if is_installed(model) else 'no':10} {model.description}")
    if settings.model not in BUNDLED:
        print(f"* {settings.model} (NEWSBOT_MODEL path)")
    print(f"\nactive: {settings.model} (set NEWSBOT_MODEL to a name above or a .gguf path)")
    if settings.reading_model != settings.model:
        print(f"reads the context: {settings.reading_model} (NEWSBOT_READER_MODEL; empty = the active model)")
    return 0


def cmd_feeds(settings: Settings, args) -> int:
    from bot.console.manage import feeds_command

    return feeds_command(settings, args, run_ingest)


def cmd_sources(settings: Settings, args) -> int:
    from bot.console.manage import sources_command

    return sources_command(settings, args)


def cmd_forget(settings: Settings, args) -> int:
    from bot.console.manage import forget_command

    return forget_command(settings, args)


COMMANDS = {
    "ingest": cmd_ingest, "ask": cmd_ask, "chat": cmd_chat, "discord": cmd_discord, "eval": cmd_eval,
    "bench": cmd_bench, "models": cmd_models, "fit": cmd_fit, "feeds": cmd_feeds, "sources": cmd_sources,
    "forget": cmd_forget,
}

if __name__ == "__main__":
    sys.exit(main())
