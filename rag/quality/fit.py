"""`newsbot fit`: fit the answer decisions on the tune questions, report them on held-out ones.

1. Collect: for every question, the service's own retrieval, context and one model pass
   (`choose`), measured into an `Evidence` (rag/answering/decide.py). Saved as JSONL, so fitting
   again needs no model.
2. Fit, in pipeline order, each on the tune questions only:
   - pick: which context sentence holds the answer (label: it contains an `evidence` string);
   - join: which other sentence adds what the pick lacks (label: it holds evidence the pick does not;
     its threshold: the one of most cross-validated right answers);
   - answer: answer or refuse (label: the picked sentences satisfy the question's `expect`).
   The regularisation strength of each model is chosen by 5-fold cross-validation over
   questions; the answer threshold maximises right minus WRONG_ANSWER_COST x wrong answers on
   the cross-validated predictions.
   - skip: the same three decisions without the reader's signals, and the two thresholds where
     they replace reading (`fit_skip`: the most questions decided unread whose cross-validated
     utility stays within one standard error of always reading).
3. Report: the held-out questions' evidence only goes through the fitted models to print their
   precision/recall table; nothing is chosen on it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.answering.decide import Evidence, answer_signals, decide, join_signals, sentence_signals, with_reading
from rag.answering.fitted import DEFAULT_MAX_SENTENCES, DecisionModels, LogisticModel, ReadingSkip, file_hash, fit_logistic
from rag.quality.evaluate import _norm, answer_correct

# The answer threshold maximises (right answers - WRONG_ANSWER_COST x wrong answers) on the
# cross-validated tune predictions. Measured there: a precision target of 95% (cost >= 1.5) left
# 22 of 108 answerable questions answered (thresh. 0.77); cost 1 answers 66, 47 of them right
# (thresh. 0.54). The signals do not yet separate right from wrong picks well enough for both.
WRONG_ANSWER_COST = 1.0
REGULARISATION_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
# Join thresholds tried (by cross-validated right answers on tune). Measured on the saved tune signals:
# 0.5 (the default of a balanced logistic model, used before) 63/108 right, 0.3 66, 0.2 67.
JOIN_THRESHOLDS = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
FOLDS = 5
SEED = 20261202
# Caps on the sentences an answer quotes, tried by `fit_decisions` (the smallest within one standard
# error of the best cross-validated utility on tune wins: a longer quote costs reading and rendering).
MAX_SENTENCES_GRID = (2, 3, 4, 5, 6)

PICK_FEATURES = ["logprob", "logprob_gap", "lexical", "lexical_gap", "coverage", "coverage_gap", "dense", "dense_gap",
                 "first", "position", "length"]
JOIN_FEATURES = ["before", "after", "elsewhere", "pick_leans_back", "leans_back", "continues", "adds", "coverage", "dense",
                 "dense_gap", "pick_score", "offered", "two_things", "other_source", "other_source_two"]
ANSWER_FEATURES = ["refusal_margin", "pick_score", "pick_margin", "pick_logprob", "pick_coverage", "pick_dense",
                   "best_coverage", "context_coverage", "unknown_share", "english", "terms"]
# The decisions that may skip the reader read everything but the reader's signals.
UNREAD_PICK_FEATURES = [f for f in PICK_FEATURES if not f.startswith("logprob")]
UNREAD_ANSWER_FEATURES = [f for f in ANSWER_FEATURES if f not in ("refusal_margin", "pick_logprob")]
# Reading-skip thresholds tried: answer without reading at >= ANSWER_AT, refuse below REFUSE_BELOW.
SKIP_ANSWER_AT = tuple(t / 100 for t in range(30, 100, 2))
SKIP_REFUSE_BELOW = tuple(t / 100 for t in range(0, 100, 2))


def collect(service, questions: list[dict[str, Any]], on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """One record per question: the question's metadata and its measured evidence (None: empty context)."""
    records = []
    for item in questions:
        question = service.check_question(item["question"])
        language = service.language(question)
        standalone, queries, context = service.retrieve(question)
        record = {key: item.get(key) for key in ("id", "question", "lang", "kind", "style", "sources", "evidence", "expect", "forbid")}
        record["evidence_signals"] = None
        if not context.empty:
            from rag.answering.select import choose

            choice = choose(service.reader, service.prompt(context, standalone, language), context)
            evidence = service.measure(standalone, queries, context, language)
            record["evidence_signals"] = with_reading(evidence, choice.logprobs, choice.refusal_margin).to_json()
        records.append(record)
        if on_result:
            on_result(record)
    return records


def with_evidence(records: list[dict]) -> list[dict]:
    """Each record's saved signals as an `Evidence` under "_ev" (None: the question had no context)."""
    for record in records:
        record["_ev"] = Evidence.from_json(record["evidence_signals"]) if record.get("evidence_signals") else None
    return records


def _has_evidence(text: str, record: dict) -> bool:
    return any(_norm(e) in _norm(text) for e in record.get("evidence") or [])


def _folds(records: list[dict]) -> list[set[str]]:
    ids = sorted(r["id"] for r in records)
    random.Random(SEED).shuffle(ids)
    return [set(ids[k::FOLDS]) for k in range(FOLDS)]


def _pick_rows(records):
    rows, labels, groups = [], [], []
    for record in records:
        evidence = record["_ev"]
        if evidence is None or not record.get("sources"):
            continue
        offered = evidence.offered
        marks = [_has_evidence(c.text, record) for c in offered]
        if not any(marks):
            continue
        for candidate, mark in zip(offered, marks):
            rows.append(sentence_signals(evidence, candidate))
            labels.append(int(mark))
            groups.append(record["id"])
    return rows, labels, groups


def _cv_pick_accuracy(records, c: float, features: list[str] = PICK_FEATURES) -> float:
    rows, labels, groups = _pick_rows(records)
    right = total = 0
    for fold in _folds(records):
        train = [i for i, g in enumerate(groups) if g not in fold]
        if not train or len({labels[i] for i in train}) < 2:
            continue
        model = fit_logistic("pick", [rows[i] for i in train], [labels[i] for i in train], features, c)
        for group in {g for g in groups if g in fold}:
            members = [i for i, g in enumerate(groups) if g == group]
            best = max(members, key=lambda i: model.score(rows[i]))
            right += labels[best]
            total += 1
    return right / total if total else 0.0


def _join_rows(records, models: DecisionModels):
    rows, labels = [], []
    for record in records:
        evidence = record["_ev"]
        if evidence is None or not record.get("sources"):
            continue
        scores = {id(c): models.pick.score(sentence_signals(evidence, c)) for c in evidence.candidates}
        pick = max(evidence.offered, key=lambda c: (scores[id(c)], -c.number))
        for other in evidence.candidates:
            if other is pick or (other.number == 0 and (other.source != pick.source or abs(other.index - pick.index) != 1)):
                continue
            new = [e for e in record["evidence"] if _norm(e) in _norm(other.text) and _norm(e) not in _norm(pick.text)]
            rows.append(join_signals(evidence, pick, other, scores[id(other)]))
            labels.append(int(bool(new)))
    return rows, labels


def _answer_rows(records, models: DecisionModels):
    rows, labels, ids = [], [], []
    for record in records:
        evidence = record["_ev"]
        if evidence is None:
            continue
        scores = sorted((models.pick.score(sentence_signals(evidence, c)), -c.number, c) for c in evidence.offered)
        pick_score, _, pick = scores[-1]
        second = scores[-2][0] if len(scores) > 1 else 0.0
        decision = decide(_always_answer(models), evidence)
        text = " ".join(c.text for c in decision.sentences)
        right = bool(record.get("sources")) and bool(record.get("expect")) and answer_correct(record, text)
        rows.append(answer_signals(evidence, pick, pick_score, second))
        labels.append(int(right))
        ids.append(record["id"])
    return rows, labels, ids


def _pick_only(pick: LogisticModel, max_sentences: int = DEFAULT_MAX_SENTENCES) -> DecisionModels:
    """The pick alone: nothing joins it, nothing is refused."""
    return DecisionModels(pick, LogisticModel("join", [], [], -40.0, [], [], 0.5), LogisticModel("answer", [], [], 40.0, [], [], 0.0),
                          max_sentences=max_sentences)


def _cv_join_right(records, pick: LogisticModel, max_sentences: int = DEFAULT_MAX_SENTENCES) -> dict[float, int]:
    """Per join threshold: tune questions answered right (always answering) when each fold's joins
    come from a join model fitted on the other folds. The highest threshold of the most right answers
    wins: a sentence joined without need costs reading time and, in English, generation."""
    provisional = _pick_only(pick, max_sentences)
    right = dict.fromkeys(JOIN_THRESHOLDS, 0)
    for fold in _folds(records):
        rows, labels = _join_rows([r for r in records if r["id"] not in fold], provisional)
        if len(set(labels)) < 2:
            continue
        join = fit_logistic("cv", rows, labels, JOIN_FEATURES, 1.0, class_weight="balanced")
        for threshold in JOIN_THRESHOLDS:
            join.threshold = threshold
            models = _always_answer(DecisionModels(pick, join, provisional.answer, max_sentences=max_sentences))
            for record in records:
                if record["id"] in fold and record["_ev"] is not None and record.get("sources") and record.get("expect"):
                    decision = decide(models, record["_ev"])
                    right[threshold] += answer_correct(record, " ".join(c.text for c in decision.sentences))
    return right


def _always_answer(models: DecisionModels) -> DecisionModels:
    never = LogisticModel("answer", [], [], 40.0, [], [], 0.0)
    return DecisionModels(models.pick, models.join, never, models.rendering_min_similarity, models.meta,
                          max_sentences=models.max_sentences)


def _best_c(score: Callable[[float], float]) -> float:
    return max(REGULARISATION_GRID, key=lambda c: (round(score(c), 4), -abs(c - 1.0)))


def _oof(records, rows, labels, ids, features, c):
    """Out-of-fold probabilities, one per row."""
    predictions = [0.0] * len(rows)
    for fold in _folds(records):
        train = [i for i, g in enumerate(ids) if g not in fold]
        if len({labels[i] for i in train}) < 2:
            continue
        model = fit_logistic("cv", [rows[i] for i in train], [labels[i] for i in train], features, c)
        for i, g in enumerate(ids):
            if g in fold:
                predictions[i] = model.score(rows[i])
    return predictions


def threshold_table(scores: list[float], labels: list[int], total_answerable: int) -> list[dict[str, float]]:
    """Precision (right when it answers) and recall (right answers / answerable) per threshold."""
    table = []
    for threshold in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        answered = [y for s, y in zip(scores, labels) if s >= threshold]
        table.append({"threshold": threshold, "answered": len(answered),
                      "precision": round(sum(answered) / len(answered), 4) if answered else None,
                      "recall": round(sum(answered) / total_answerable, 4) if total_answerable else None})
    return table


def _choose_threshold(scores: list[float], labels: list[int], cost: float = WRONG_ANSWER_COST) -> float:
    def utility(threshold: float) -> float:
        answered = [y for s, y in zip(scores, labels) if s >= threshold]
        return sum(answered) - cost * (len(answered) - sum(answered))

    return max((t / 100 for t in range(5, 96)), key=lambda t: (utility(t), t))


def fit(records: list[dict], data_paths: list[Path], context: LogisticModel | None = None,
        pick_features: list[str] = PICK_FEATURES, answer_features: list[str] = ANSWER_FEATURES,
        max_sentences: int = DEFAULT_MAX_SENTENCES) -> DecisionModels:
    """`context`: the context scorer the records were collected with (fitted apart, kept as it is)."""
    with_evidence(records)
    trained_on = {"questions": len(records), "files": {p.name: file_hash(p) for p in data_paths}}

    c_pick = _best_c(lambda c: _cv_pick_accuracy(records, c, pick_features))
    rows, labels, _ = _pick_rows(records)
    pick = fit_logistic("pick", rows, labels, pick_features, c_pick)
    pick.trained_on = {**trained_on, "rows": len(rows), "C": c_pick}
    pick.report = {"tune_cv_top1": round(_cv_pick_accuracy(records, c_pick, pick_features), 4)}

    provisional = _pick_only(pick, max_sentences)
    rows, labels = _join_rows(records, provisional)
    join = fit_logistic("join", rows, labels, JOIN_FEATURES, 1.0, class_weight="balanced")
    right_per_threshold = _cv_join_right(records, pick, max_sentences)
    join.threshold = max(right_per_threshold, key=lambda t: (right_per_threshold[t], t))
    join.trained_on = {**trained_on, "rows": len(rows), "positives": sum(labels)}
    join.report = {"tune_cv_right_per_threshold": right_per_threshold}

    models = DecisionModels(pick, join, provisional.answer, max_sentences=max_sentences)
    rows, labels, ids = _answer_rows(records, models)
    answerable = sum(bool(r.get("sources")) for r in records)

    def cv_utility(c: float) -> float:  # right minus weighted wrong answers at the chosen threshold
        oof = _oof(records, rows, labels, ids, answer_features, c)
        threshold = _choose_threshold(oof, labels)
        answered = [y for s, y in zip(oof, labels) if s >= threshold]
        return sum(answered) - WRONG_ANSWER_COST * (len(answered) - sum(answered))

    c_answer = _best_c(cv_utility)
    oof = _oof(records, rows, labels, ids, answer_features, c_answer)
    answer = fit_logistic("answer", rows, labels, answer_features, c_answer)
    answer.threshold = _choose_threshold(oof, labels)
    answer.trained_on = {**trained_on, "rows": len(rows), "positives": sum(labels), "C": c_answer}
    answer.report = {"tune_cv": threshold_table(oof, labels, answerable)}
    return DecisionModels(pick, join, answer, models.rendering_min_similarity,
                          {"fitted_by": "newsbot fit", "tune": trained_on}, context=context, max_sentences=max_sentences)


def _cv_utility(records: list[dict], models: DecisionModels, features: list[str]) -> dict[str, int]:
    """Per question: +1 right, -1 wrong, 0 refused, with out-of-fold answer scores at the fitted threshold."""
    rows, labels, ids = _answer_rows(records, models)
    oof = _oof(records, rows, labels, ids, features, models.answer.trained_on["C"])
    utility = {r["id"]: 0 for r in records}
    for qid, score, label in zip(ids, oof, labels):
        if score >= models.answer.threshold:
            utility[qid] = 1 if label else -1
    return utility


def _total(utility: dict[str, int]) -> float:
    """Right answers minus WRONG_ANSWER_COST x wrong ones."""
    return sum(-WRONG_ANSWER_COST if v < 0 else v for v in utility.values())


def _close_to(utility: dict[str, int], reference: dict[str, int]) -> bool:
    """At most one standard error (of the summed paired per-question difference) below `reference`."""
    diffs = [utility[q] - reference[q] for q in reference]
    mean = sum(diffs) / len(diffs)
    return _total(reference) - _total(utility) <= sum((d - mean) ** 2 for d in diffs) ** 0.5


def _within_one_standard_error(utilities: dict[int, dict[str, int]]) -> int:
    """The smallest key whose summed utility is within one standard error of the best key's."""
    best = max(utilities, key=lambda k: (_total(utilities[k]), -k))
    return next(key for key in sorted(utilities) if _close_to(utilities[key], utilities[best]))


def fit_decisions(records: list[dict], data_paths: list[Path], context: LogisticModel | None = None) -> DecisionModels:
    """`fit` at each cap of MAX_SENTENCES_GRID, the cap chosen on tune, then the reading skip."""
    fitted = {cap: fit(records, data_paths, context, max_sentences=cap) for cap in MAX_SENTENCES_GRID}
    utilities = {cap: _cv_utility(records, models, ANSWER_FEATURES) for cap, models in fitted.items()}
    models = fitted[_within_one_standard_error(utilities)]
    models.meta["max_sentences_cv"] = {str(cap): {"right": sum(v == 1 for v in u.values()), "wrong": sum(v == -1 for v in u.values())}
                                       for cap, u in utilities.items()}
    models.skip = fit_skip(records, models, data_paths)
    return models


def _outcomes(scores: list[float], labels: list[int], ids: list[str]) -> dict[str, tuple[float, int]]:
    """Per question with a context: (answer score, +1 right / -1 wrong if it answered); `labels` as
    `_answer_rows` gives them."""
    return {qid: (score, 1 if label else -1) for qid, score, label in zip(ids, scores, labels)}


def _cascade(read: dict, unread: dict, read_threshold: float, answer_at: float, refuse_below: float) -> dict[str, int]:
    """Per question: +1 right, -1 wrong, 0 refused when the unread decision is used where it is sure."""
    utility = {}
    for qid, (score, outcome) in read.items():
        unread_score, unread_outcome = unread[qid]
        if unread_score >= answer_at:
            utility[qid] = unread_outcome
        elif unread_score < refuse_below:
            utility[qid] = 0
        else:
            utility[qid] = outcome if score >= read_threshold else 0
    return utility


def _skip_summary(read: dict, unread: dict, read_threshold: float, skip: ReadingSkip) -> dict[str, int]:
    utility = _cascade(read, unread, read_threshold, skip.answer_at, skip.refuse_below)
    always = _cascade(read, unread, read_threshold, 2.0, -1.0)
    return {"questions": len(utility), "skipped": sum(not (skip.refuse_below <= unread[q][0] < skip.answer_at) for q in utility),
            "right": sum(u == 1 for u in utility.values()), "wrong": sum(u == -1 for u in utility.values()),
            "reading_always_right": sum(u == 1 for u in always.values()),
            "reading_always_wrong": sum(u == -1 for u in always.values())}


def fit_skip(records: list[dict], read: DecisionModels, data_paths: list[Path]) -> ReadingSkip:
    """Decisions without the reader's signals and the thresholds where they replace reading.

    Both sets' answer scores are cross-validated on tune; the thresholds skip the most reads whose
    tune utility (right - WRONG_ANSWER_COST x wrong) stays within one standard error of the paired
    per-question difference from always reading (the one-standard-error rule: the cheapest choice
    that the data cannot tell from the best)."""
    unread = fit(records, data_paths, pick_features=UNREAD_PICK_FEATURES, answer_features=UNREAD_ANSWER_FEATURES,
                 max_sentences=read.max_sentences)
    rows, labels, ids = _answer_rows(records, read)
    read_scores = _outcomes(_oof(records, rows, labels, ids, ANSWER_FEATURES, read.answer.trained_on["C"]), labels, ids)
    rows, labels, ids = _answer_rows(records, unread)
    unread_scores = _outcomes(_oof(records, rows, labels, ids, UNREAD_ANSWER_FEATURES, unread.answer.trained_on["C"]),
                              labels, ids)
    base = _cascade(read_scores, unread_scores, read.answer.threshold, 2.0, -1.0)
    best: tuple | None = None
    for answer_at in SKIP_ANSWER_AT:
        for refuse_below in (t for t in SKIP_REFUSE_BELOW if t <= answer_at):
            utility = _cascade(read_scores, unread_scores, read.answer.threshold, answer_at, refuse_below)
            if not _close_to(utility, base):
                continue
            skipped = sum(not (refuse_below <= unread_scores[q][0] < answer_at) for q in base)
            key = (skipped, _total(utility), answer_at, -refuse_below)
            if best is None or key > best[0]:
                best = (key, answer_at, refuse_below)
    skip = ReadingSkip(unread.pick, unread.join, unread.answer, *(best[1:] if best else (2.0, -1.0)),
                       max_sentences=read.max_sentences)
    skip.report = {"tune_cv": _skip_summary(read_scores, unread_scores, read.answer.threshold, skip)}
    return skip


def report(models: DecisionModels, records: list[dict]) -> dict[str, Any]:
    """The fitted models on questions they were not fitted on: pick top-1 and the answer table."""
    with_evidence(records)
    rows, labels, groups = _pick_rows(records)
    top1 = [max((i for i, g in enumerate(groups) if g == group), key=lambda i: models.pick.score(rows[i])) for group in dict.fromkeys(groups)]
    rows_a, labels_a, ids = _answer_rows(records, models)
    scores = [models.answer.score(r) for r in rows_a]
    answerable = sum(bool(r.get("sources")) for r in records)
    result = {"questions": len(records), "pick_top1": round(sum(labels[i] for i in top1) / len(top1), 4) if top1 else None,
              "answer": threshold_table(scores, labels_a, answerable)}
    if models.skip is not None:
        unread = models.skip.models
        unread_rows, unread_labels, unread_ids = _answer_rows(records, unread)
        result["skip_reading"] = _skip_summary(_outcomes(scores, labels_a, ids),
                                               _outcomes([unread.answer.score(r) for r in unread_rows], unread_labels, unread_ids),
                                               models.answer.threshold, models.skip)
    return result


def save_records(path: Path, records: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps({k: v for k, v in record.items() if k != "_ev"}, ensure_ascii=False) + "\n")


def load_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
