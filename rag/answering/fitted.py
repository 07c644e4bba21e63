"""Small fitted decisions: logistic models over measured signals, stored as versioned JSON.

Every answer decision (which sentence answers, which others join it, answer or refuse) is one
of these models, fitted on the tune half of the question set by `newsbot fit` and saved with the
hash of the data it came from, its chosen threshold and its held-out precision/recall table.
Inference is a dot product in numpy; scikit-learn is needed only to fit.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rag.errors import DecisionModelError

FORMAT_VERSION = 1
# An answer quotes at most this many sentences (the pick and those that join it) where the file
# names no fitted cap (`newsbot fit` chooses it on tune).
DEFAULT_MAX_SENTENCES = 3
DEFAULT_PATH = Path(__file__).with_name("decisions.json")


@dataclass
class LogisticModel:
    name: str
    features: list[str]
    weights: list[float]
    bias: float
    means: list[float]
    scales: list[float]
    threshold: float = 0.5
    trained_on: dict = field(default_factory=dict)  # data file hashes, example counts
    report: dict = field(default_factory=dict)  # tune (cross-validated) and held-out tables

    def score(self, signals: dict[str, float]) -> float:
        """The model's probability that the decision is right, from named signals (missing = mean)."""
        z = self.bias
        for name, weight, mean, scale in zip(self.features, self.weights, self.means, self.scales):
            value = float(signals.get(name, mean))
            if not math.isfinite(value):
                value = mean
            z += weight * (value - mean) / scale
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z))))

    def accepts(self, signals: dict[str, float]) -> bool:
        return self.score(signals) >= self.threshold


def measured_with(settings) -> dict[str, str | int]:
    """The settings the signals depend on: decisions fitted under others read signals of another scale."""
    return {"reader": settings.reading_model, "context_tokens": settings.context_tokens,
            "embedding_model": settings.embedding_model}


@dataclass
class ReadingSkip:
    """Decisions fitted on the same tune questions without the reader's signals (no log-probabilities,
    no refusal margin). Where they are sure (answer score >= `answer_at`: answer; < `refuse_below`:
    refuse) the reader is not run: its ~300 tokens of context are 1.5 s of the first token on two
    cores. Both thresholds are fitted (`rag.quality.fit.fit_skip`); in between the reader decides."""

    pick: LogisticModel
    join: LogisticModel
    answer: LogisticModel
    answer_at: float
    refuse_below: float
    report: dict = field(default_factory=dict)  # tune (cross-validated) and held-out outcomes
    max_sentences: int = DEFAULT_MAX_SENTENCES

    @property
    def always(self) -> bool:
        """No answer score falls between the thresholds: the reader is never needed."""
        return self.answer_at <= self.refuse_below

    @property
    def models(self) -> DecisionModels:
        """The reader-free decisions, answering at `answer_at`."""
        return DecisionModels(self.pick, self.join, replace(self.answer, threshold=self.answer_at),
                              max_sentences=self.max_sentences)

    def to_json(self) -> dict:
        return {"answer_at": self.answer_at, "refuse_below": self.refuse_below, "report": self.report,
                "max_sentences": self.max_sentences, "models": {k: asdict(getattr(self, k)) for k in ("pick", "join", "answer")}}

    @classmethod
    def from_json(cls, data: dict) -> ReadingSkip:
        models = {k: LogisticModel(**v) for k, v in data["models"].items()}
        return cls(models["pick"], models["join"], models["answer"], float(data["answer_at"]),
                   float(data["refuse_below"]), data.get("report", {}), int(data.get("max_sentences", DEFAULT_MAX_SENTENCES)))


@dataclass
class DecisionModels:
    pick: LogisticModel
    join: LogisticModel
    answer: LogisticModel
    # An English rendering whose similarity to its German quote is below this is not shown.
    rendering_min_similarity: float = 0.0
    meta: dict = field(default_factory=dict)  # where the data came from, when, how to refit
    version: int = FORMAT_VERSION
    # which retrieved sentences enter the context, in what order (scripts/fit_context.py); None: lexical order
    context: LogisticModel | None = None
    # decisions without the reader, used where they are sure (None: the reader always reads)
    skip: ReadingSkip | None = None
    # the most sentences an answer quotes: the pick and up to max_sentences - 1 that join it
    max_sentences: int = DEFAULT_MAX_SENTENCES

    def mismatches(self, settings) -> list[str]:
        """Settings that differ from those the signals were measured with (empty: as fitted, or unknown)."""
        fitted = self.meta.get("measured_with") or {}
        return [f"{key} {fitted[key]!r} (now {value!r})" for key, value in measured_with(settings).items()
                if key in fitted and fitted[key] != value]

    @property
    def _named(self) -> tuple[str, ...]:
        return ("pick", "join", "answer") + (("context",) if self.context is not None else ())

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": self.version, "meta": self.meta, "rendering_min_similarity": self.rendering_min_similarity,
                   "max_sentences": self.max_sentences,
                   "models": {k: asdict(getattr(self, k)) for k in self._named}}
        if self.skip is not None:
            payload["skip_reading"] = self.skip.to_json()
        path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> DecisionModels:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("version") != FORMAT_VERSION:
                raise ValueError(f"format {payload.get('version')}, expected {FORMAT_VERSION}")
            models = {k: LogisticModel(**v) for k, v in payload["models"].items()}
            return cls(models["pick"], models["join"], models["answer"], float(payload.get("rendering_min_similarity", 0.0)),
                       payload.get("meta", {}), context=models.get("context"),
                       skip=ReadingSkip.from_json(payload["skip_reading"]) if payload.get("skip_reading") else None,
                       max_sentences=int(payload.get("max_sentences", DEFAULT_MAX_SENTENCES)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DecisionModelError(
                f"Cannot load the answer decisions from {path}: {exc}. Reinstall newsbot, or refit them: newsbot fit"
            ) from exc


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def fit_logistic(name: str, rows: list[dict[str, float]], labels: list[int], features: list[str],
                 c: float = 1.0, class_weight: str | None = None) -> LogisticModel:
    """L2-regularised logistic regression on standardised signals (scikit-learn, lbfgs)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[float(r.get(f, 0.0)) for f in features] for r in rows], dtype=np.float64)
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[scales < 1e-9] = 1.0
    model = LogisticRegression(C=c, class_weight=class_weight, max_iter=2000)
    model.fit((x - means) / scales, np.array(labels))
    return LogisticModel(name, list(features), [float(w) for w in model.coef_[0]], float(model.intercept_[0]),
                         [float(m) for m in means], [float(s) for s in scales])
