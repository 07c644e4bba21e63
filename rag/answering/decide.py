"""The answer decisions, fitted: which sentence answers, which others join it, answer or refuse.

Each decision is a small logistic model (`rag/answering/fitted.py`) over signals measured for the
question: the model's log-probability of citing each context sentence, the sentence's lexical
evidence (idf-weighted share of the question's terms) and its dense similarity to the question
(multilingual E5, so English questions compare directly), its place in the context, the model's
preference for its refusal token, and how much of the question no article's vocabulary holds.
The models are fitted on the tune half of the question set by `newsbot fit`
(`rag/quality/fit.py`), never on the held-out half; the weights, thresholds and the data they
came from are in `rag/answering/decisions.json`.

`Evidence` holds the measured signals of one question (JSON-serialisable, so `newsbot fit` can
collect them once and fit from them); `decide` is a pure function of the models and the evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from rag.answering.fitted import DecisionModels
from rag.german import CONTINUES_STARTS, CONTRAST_WORDS, LEANS_BACK_STARTS
from rag.text import content_terms

# Log-probability given to a sentence the model was not offered (a neighbour outside [1]..[9]).
UNOFFERED_LOGPROB = -30.0
# Question words: a question with two of them (or one plus "und"/"and") asks two things.
_QUESTION_WORDS = frozenset(
    "wer wen wem wessen was wann wo wohin woher wie warum weshalb wieso welche welcher welches welchen "
    "who whom whose what when where why how which".split()
)
_AND = frozenset({"und", "and", "sowie", "plus"})
# A question about the latest state ("neuester Stand", "zuletzt", "latest"): when the two best offered
# sentences come from different dated articles and their pick scores (probabilities) lie within this
# margin, the newer article's sentence is picked. 0.05, like the context's RECENCY_TIE: a gap this
# small is one weak signal (a question word more, a slightly better dense match), no evidence that
# the older report answers better, while the question asks for the newer state.
RECENCY_PICK_TIE = 0.05


@dataclass
class Candidate:
    """A sentence that could be (part of) the answer: a context sentence or a neighbour of one."""

    number: int  # its [n] in the context; 0 for a neighbour the model did not see
    source: str
    index: int  # its place among the article's sentences
    start: int
    end: int
    text: str
    lexical: float  # the context selector's score (0 for an unseen neighbour)
    coverage: float  # idf-weighted share of the question's terms it contains
    dense: float  # cosine similarity to the question (best over the question's phrasings)
    logprob: float = UNOFFERED_LOGPROB
    date_ord: int = 0  # the article's date as an ordinal (0: undated)


@dataclass
class Evidence:
    question: str
    language: str
    refusal_margin: float
    candidates: list[Candidate]
    best_coverage: float
    context_coverage: float
    unknown_share: float  # idf-weighted share of the question's terms no article contains
    question_terms: dict[str, float] = field(default_factory=dict)
    latest: bool = False  # the question asks for the latest state (rag.answering.context.asks_for_latest)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Evidence:
        data = dict(data)
        data["candidates"] = [Candidate(**c) for c in data["candidates"]]
        return cls(**data)

    @property
    def offered(self) -> list[Candidate]:
        return [c for c in self.candidates if c.number > 0]

    def neighbour(self, candidate: Candidate, step: int) -> Candidate | None:
        for other in self.candidates:
            if other.source == candidate.source and other.index == candidate.index + step:
                return other
        return None


@dataclass
class Decision:
    answer: bool
    sentences: list[Candidate]  # in reading order
    pick_score: float
    answer_score: float
    reason: str = ""
    pick: Candidate | None = None  # the sentence that answers; the others joined it


def asks_two_things(question: str) -> float:
    words = [w.casefold().strip("?,.!;:") for w in question.split()]
    asked = sum(w in _QUESTION_WORDS for w in words)
    return float(asked >= 2 or (asked >= 1 and any(w in _AND for w in words)))


def _first_word(text: str) -> str:
    for token in text.split():
        word = "".join(ch for ch in token if ch.isalpha())
        if word:
            return word.casefold()
    return ""


def leans_back(text: str) -> float:
    stripped = text.lstrip()
    return float(bool(stripped) and (stripped[0].islower() or stripped[0] in "“”\"»" or _first_word(stripped) in LEANS_BACK_STARTS))


def continues(text: str, following: str) -> float:
    opened = text.count("„") + text.count("“") + text.count('"')
    opening = {"".join(ch for ch in w if ch.isalpha()).casefold() for w in following.split()[:3]}
    return float(text.rstrip().endswith(":") or _first_word(following) in CONTINUES_STARTS
                 or bool(opening & CONTRAST_WORDS) or opened % 2 == 1)


def sentence_signals(evidence: Evidence, candidate: Candidate) -> dict[str, float]:
    offered = evidence.offered
    best_lp = max(c.logprob for c in offered)
    best_lex = max(c.lexical for c in offered)
    best_dense = max(c.dense for c in offered)
    best_cov = max(c.coverage for c in offered)
    return {
        "logprob": max(candidate.logprob, UNOFFERED_LOGPROB),
        "logprob_gap": max(candidate.logprob, UNOFFERED_LOGPROB) - best_lp,
        "lexical": candidate.lexical,
        "lexical_gap": candidate.lexical - best_lex,
        "coverage": candidate.coverage,
        "coverage_gap": candidate.coverage - best_cov,
        "dense": candidate.dense,
        "dense_gap": candidate.dense - best_dense,
        "first": float(candidate.number == 1),
        "position": 1.0 / max(1, candidate.number),
        "length": math.log(max(20, len(candidate.text))),
    }


def join_signals(evidence: Evidence, pick: Candidate, other: Candidate, other_score: float) -> dict[str, float]:
    """Whether `other` adds what the question asks and the pick lacks."""
    other_source = float(other.source != pick.source)
    two_things = asks_two_things(evidence.question)
    before = other.source == pick.source and other.index == pick.index - 1
    after = other.source == pick.source and other.index == pick.index + 1
    covered = content_terms(pick.text)
    own = content_terms(other.text)
    weight = sum(evidence.question_terms.values()) or 1.0
    adds = sum(w for t, w in evidence.question_terms.items() if t in own and t not in covered) / weight
    return {
        "before": float(before),
        "after": float(after),
        "elsewhere": float(not before and not after),
        "pick_leans_back": leans_back(pick.text) * before,
        "leans_back": leans_back(other.text) * after,
        "continues": continues(pick.text, other.text) * after,
        "adds": adds,
        "coverage": other.coverage,
        "dense": other.dense,
        "dense_gap": other.dense - pick.dense,
        "pick_score": other_score,
        "offered": float(other.number > 0),
        "two_things": two_things,
        # another article's sentence belongs in the answer mostly when the question asks two things
        # (tune: the quoted sentences from an acceptable article 80.7% -> 85.6% with these two)
        "other_source": other_source,
        "other_source_two": other_source * two_things,
    }


def answer_signals(evidence: Evidence, pick: Candidate, pick_score: float, second_score: float) -> dict[str, float]:
    return {
        "refusal_margin": max(-20.0, min(20.0, evidence.refusal_margin)),
        "pick_score": pick_score,
        "pick_margin": pick_score - second_score,
        "pick_logprob": max(pick.logprob, UNOFFERED_LOGPROB),
        "pick_coverage": pick.coverage,
        "pick_dense": pick.dense,
        "best_coverage": evidence.best_coverage,
        "context_coverage": evidence.context_coverage,
        "unknown_share": evidence.unknown_share,
        "english": float(evidence.language == "en"),
        "terms": math.log(1 + len(evidence.question_terms)),
    }


def newer_wins_tie(ranked: list[Candidate], scores: dict[int, float]) -> bool:
    """The runner-up is from another, newer dated article and scores within RECENCY_PICK_TIE of the best."""
    if len(ranked) < 2:
        return False
    best, second = ranked[0], ranked[1]
    return (best.source != second.source and best.date_ord > 0 and second.date_ord > best.date_ord
            and scores[id(best)] - scores[id(second)] <= RECENCY_PICK_TIE)


def decide(models: DecisionModels, evidence: Evidence) -> Decision:
    offered = evidence.offered
    if not offered:
        return Decision(False, [], 0.0, 0.0, "no context")
    scores = {id(c): models.pick.score(sentence_signals(evidence, c)) for c in evidence.candidates}
    ranked = sorted(offered, key=lambda c: (-scores[id(c)], c.number))
    if evidence.latest and newer_wins_tie(ranked, scores):
        ranked[0], ranked[1] = ranked[1], ranked[0]
    pick = ranked[0]
    second = min(scores[id(ranked[1])], scores[id(pick)]) if len(ranked) > 1 else 0.0  # a won tie has margin 0
    answer_score = models.answer.score(answer_signals(evidence, pick, scores[id(pick)], second))
    if answer_score < models.answer.threshold:
        return Decision(False, [pick], scores[id(pick)], answer_score, f"answer score {answer_score:.2f} < {models.answer.threshold:.2f}")
    joined: list[tuple[float, Candidate]] = []
    for other in evidence.candidates:
        if other is pick or (other.number == 0 and abs(other.index - pick.index) != 1):
            continue
        if other.number == 0 and other.source != pick.source:
            continue
        score = models.join.score(join_signals(evidence, pick, other, scores[id(other)]))
        if score >= models.join.threshold:
            joined.append((score, other))
    joined.sort(key=lambda pair: -pair[0])
    chosen = [pick] + [c for _, c in joined[: models.max_sentences - 1]]
    order = {source: n for n, source in enumerate(dict.fromkeys(c.source for c in chosen))}
    chosen.sort(key=lambda c: (order[c.source], c.index))
    return Decision(True, chosen, scores[id(pick)], answer_score, pick=pick)


def decide_unread(models: DecisionModels, evidence: Evidence) -> Decision | None:
    """The decision without the reader, where the reader-free models are sure of it (`ReadingSkip`):
    an answer (pick and joins by those models) or a refusal; None: the reader has to read."""
    skip = models.skip
    if skip is None or not evidence.offered:
        return None
    decision = decide(skip.models, evidence)
    if decision.answer:
        return decision
    if decision.answer_score < skip.refuse_below:
        decision.reason = f"answer score without reading {decision.answer_score:.2f} < {skip.refuse_below:.2f}"
        return decision
    return None


def with_reading(evidence: Evidence, logprobs: dict[int, float], refusal_margin: float) -> Evidence:
    """The evidence measured before reading, with the reader's log-probabilities and refusal margin."""
    for candidate in evidence.candidates:
        candidate.logprob = logprobs.get(candidate.number, UNOFFERED_LOGPROB) if candidate.number else UNOFFERED_LOGPROB
    evidence.refusal_margin = refusal_margin
    return evidence
