"""`newsbot fit`: collect the measured signals, fit the answer decisions on `tune`, report `heldout`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rag.settings import PROJECT_ROOT, Settings

QUESTIONS = PROJECT_ROOT / "benchmarks" / "questions"


def add_fit_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit the answer decisions on the tune questions; report the held-out ones")
    p.add_argument("--tune", type=Path, default=QUESTIONS / "tune.jsonl", help="questions to fit on")
    p.add_argument("--heldout", type=Path, default=QUESTIONS / "heldout.jsonl", help="questions to report on (never fitted on)")
    p.add_argument("--signals", type=Path, default=None, help="folder for the measured signals (default: <data dir>/fit)")
    p.add_argument("--reuse", action="store_true", help="reuse signals measured earlier instead of running the model again")
    p.add_argument("--out", type=Path, default=None, help="where to write the models (default: rag/answering/decisions.json)")


def cmd_fit(settings: Settings, args) -> int:
    from rag.answering.fitted import DEFAULT_PATH, measured_with
    from rag.quality.evaluate import load_questions
    from rag.quality.fit import collect, fit_decisions, load_records, report, save_records
    from rag.wiring import build_service, ensure_store

    signals_dir = args.signals or settings.data_dir / "fit"
    signals_dir.mkdir(parents=True, exist_ok=True)
    service = build_service(settings)
    ensure_store(settings, service.store)

    def measured(path: Path) -> list[dict]:
        cached = signals_dir / f"{path.stem}.signals.jsonl"
        if args.reuse and cached.is_file():
            return load_records(cached)
        records = collect(service, load_questions(path),
                          on_result=lambda r: print(f"{r['id']}: measured", file=sys.stderr, flush=True))
        save_records(cached, records)
        return records

    tune = measured(args.tune)
    models = fit_decisions(tune, [args.tune], context=service.decisions.context)
    models.meta["measured_with"] = measured_with(settings)
    if args.heldout and args.heldout.is_file():
        models.meta["heldout"] = report(models, measured(args.heldout))
    out = args.out or DEFAULT_PATH
    models.save(out)
    print(json.dumps({"written": str(out), "answer_threshold": models.answer.threshold,
                      "tune_cv": models.answer.report.get("tune_cv"),
                      "max_sentences": models.max_sentences, "max_sentences_cv": models.meta["max_sentences_cv"],
                      "skip_reading": models.skip.report | {"answer_at": models.skip.answer_at,
                                                            "refuse_below": models.skip.refuse_below},
                      "heldout": models.meta.get("heldout")}, ensure_ascii=False, indent=1))
    return 0
