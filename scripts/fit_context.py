"""Fit the context scorer (which retrieved sentences the model reads first) on the tune questions.

Usage: .venv/bin/python scripts/fit_context.py [--reuse] [--write]   (--reuse: the signals measured last time)
Every content sentence of the retrieved chunks is one row: its signals (rag/answering/context.py
`context_signals`: question-term overlap, dense similarity, chunk rank, English question) and the
label "holds an evidence string of the question". Logistic regression, its regularisation chosen
by 5-fold cross-validation over questions on the tune half (the mean rank of the first evidence
sentence); the held-out half is only scored. `--write` stores the model in
rag/answering/decisions.json as `context`; measure the effect with scripts/tune_retrieval.py.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from tune_retrieval import load_split, retrieval_service  # noqa: E402

from rag.answering.context import candidates_of, context_signals  # noqa: E402
from rag.answering.fitted import DEFAULT_PATH, DecisionModels, file_hash, fit_logistic  # noqa: E402
from rag.quality.fit import _has_evidence  # noqa: E402
from rag.text import detect_language  # noqa: E402

FEATURES = ["overlap", "overlap_gap", "dense", "dense_gap", "prior", "lexical", "english", "length"]
GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
FOLDS = 5
SEED = 20261203


def collect(service, questions: list[dict]) -> list[dict]:
    """Per answerable question: its candidates' signals and evidence labels."""
    groups = []
    for item in questions:
        if not item.get("sources") or item["kind"] in ("unanswerable", "injection"):
            continue
        question = service.check_question(item["question"])
        standalone, queries, _ = service.retrieve(question)
        hits = service.search.search(queries, service.settings.top_k, None)
        found = candidates_of(service.keywords.question_terms(queries), hits, service.corpus,
                              lambda texts, q=[standalone, *queries[1:]]: service._dense(q, texts))
        rows = context_signals(found, detect_language(question) == "en")
        labels = [int(_has_evidence(c.text, item)) for c in found]
        groups.append({"id": item["id"], "lang": item["lang"], "rows": rows, "labels": labels})
    return groups


def first_hit_rank(model, group) -> int | None:
    """Rank of the first evidence sentence in the scorer's order (None: no evidence retrieved)."""
    if not any(group["labels"]):
        return None
    order = sorted(range(len(group["rows"])), key=lambda i: -model.score(group["rows"][i]))
    return next(r for r, i in enumerate(order) if group["labels"][i])


def summary(name: str, ranks: list[int | None], langs: list[str]) -> str:
    found = [r for r in ranks if r is not None]
    parts = [f"{name}: retrieved {len(found)}/{len(ranks)}"]
    for k in (1, 3, 5):
        parts.append(f"top{k} {sum(r < k for r in found)}")
    for lang in sorted(set(langs)):
        mine = [r for r, g in zip(ranks, langs) if g == lang and r is not None]
        parts.append(f"{lang} top3 {sum(r < 3 for r in mine)}/{sum(1 for g in langs if g == lang)}")
    return ", ".join(parts)


def fit(groups: list[dict], c: float):
    rows = [r for g in groups for r in g["rows"]]
    labels = [y for g in groups for y in g["labels"]]
    return fit_logistic("context", rows, labels, FEATURES, c, class_weight="balanced")


def cv_mean_rank(groups: list[dict], c: float) -> float:
    ids = [g["id"] for g in groups]
    random.Random(SEED).shuffle(ids)
    folds = [set(ids[k::FOLDS]) for k in range(FOLDS)]
    ranks = []
    for fold in folds:
        model = fit([g for g in groups if g["id"] not in fold], c)
        ranks += [min(first_hit_rank(model, g), 10) for g in groups if g["id"] in fold and any(g["labels"])]
    return statistics.mean(ranks)


def main(argv: list[str]) -> int:
    service = retrieval_service({})
    cache = Path(service.settings.data_dir) / "context-signals.json"
    if "--reuse" in argv and cache.is_file():
        tune, heldout = json.loads(cache.read_text(encoding="utf-8"))
    else:
        tune, heldout = collect(service, load_split("tune")), collect(service, load_split("heldout"))
        cache.write_text(json.dumps([tune, heldout]), encoding="utf-8")
    scores = {c: cv_mean_rank(tune, c) for c in GRID}
    best = min(GRID, key=lambda c: (scores[c], -c))
    print("cv mean rank of the first evidence sentence:", {c: round(v, 3) for c, v in scores.items()})
    model = fit(tune, best)
    tune_path = REPO / "benchmarks/questions/tune.jsonl"
    model.trained_on = {"questions": len(tune), "rows": sum(len(g["rows"]) for g in tune), "C": best,
                        "files": {tune_path.name: file_hash(tune_path)}}
    lexical = type(model)("lexical", ["lexical"], [1.0], 0.0, [0.0], [1.0])
    for name, groups in (("tune", tune), ("heldout", heldout)):
        langs = [g["lang"] for g in groups]
        print(summary(f"{name} lexical", [first_hit_rank(lexical, g) for g in groups], langs))
        print(summary(f"{name} fitted ", [first_hit_rank(model, g) for g in groups], langs))
    print("weights:", dict(zip(model.features, (round(w, 3) for w in model.weights))))
    if "--write" in argv:
        models = DecisionModels.load(DEFAULT_PATH)
        models.context = model
        models.save(DEFAULT_PATH)
        print("written to", DEFAULT_PATH)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
