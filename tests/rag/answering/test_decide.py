"""The fitted answer decisions as pure functions: crafted evidence, crafted models, both sides."""

from __future__ import annotations

import pytest

from rag.answering.decide import (
    Candidate,
    Evidence,
    asks_two_things,
    decide,
    decide_unread,
    join_signals,
    sentence_signals,
    with_reading,
)
from rag.answering.fitted import DEFAULT_PATH, DecisionModels, LogisticModel, ReadingSkip
from rag.errors import DecisionModelError


def model(name, weights: dict[str, float], bias=0.0, threshold=0.5) -> LogisticModel:
    names = list(weights)
    return LogisticModel(name, names, [weights[n] for n in names], bias, [0.0] * len(names), [1.0] * len(names), threshold)


def candidate(number, index, text, *, lexical=0.0, coverage=0.0, dense=0.0, logprob=-3.0, source="a") -> Candidate:
    return Candidate(number, source, index, index * 100, index * 100 + len(text), text, lexical, coverage, dense, logprob)


def evidence(candidates, margin=-2.0, unknown=0.0, question="Was sagte er?") -> Evidence:
    return Evidence(question, "de", margin, candidates, 0.5, 0.6, unknown, {"sag": 1.0, "treff": 1.0})


MODELS = DecisionModels(
    pick=model("pick", {"logprob_gap": 1.0, "dense_gap": 10.0}),
    join=model("join", {"adds": 20.0, "after": 1.0}, bias=-5.0),
    answer=model("answer", {"refusal_margin": -1.0, "unknown_share": -10.0}, bias=1.0),
)


def test_the_pick_weighs_model_preference_against_dense_evidence():
    first = candidate(1, 3, "Er sagte nichts.", logprob=-0.5, dense=0.70)
    second = candidate(2, 8, "Er sagte, man treffe sich.", logprob=-1.0, dense=0.85)
    decision = decide(MODELS, evidence([first, second]))
    assert decision.answer and decision.sentences == [second]  # 0.15 x 10 outweighs 0.5 nats
    close = candidate(2, 8, "Er sagte, man treffe sich.", logprob=-1.0, dense=0.72)
    assert decide(MODELS, evidence([first, close])).sentences[0] == first  # the other may join: it adds "treffen"


def test_refuses_when_the_model_prefers_its_refusal_or_the_question_is_unknown():
    sentences = [candidate(1, 0, "Er sagte etwas.", logprob=-0.2)]
    assert decide(MODELS, evidence(sentences, margin=-3.0)).answer
    assert not decide(MODELS, evidence(sentences, margin=3.0)).answer
    refused = decide(MODELS, evidence(sentences, margin=-3.0, unknown=0.8))
    assert not refused.answer and "answer score" in refused.reason
    assert not decide(MODELS, evidence([])).answer


def test_a_neighbour_joins_when_it_adds_what_the_question_asks():
    pick = candidate(1, 4, "Er sagte etwas.", logprob=-0.1, dense=0.9)
    after = candidate(0, 5, "Man treffe sich am Montag.")  # unseen by the model, adds "treff"
    unrelated = candidate(0, 3, "Das Wetter war gut.")
    decision = decide(MODELS, evidence([pick, after, unrelated]))
    assert [c.index for c in decision.sentences] == [4, 5]  # reading order, the pick first
    assert decision.pick is pick  # the answered fact (a joined sentence's disagreement elsewhere does not replace it)
    far = candidate(0, 9, "Man treffe sich am Montag.")  # not adjacent and not offered: never joins
    assert decide(MODELS, evidence([pick, far])).sentences == [pick]


def test_signals_are_relative_to_the_best_offered_sentence():
    a = candidate(1, 0, "Eins.", lexical=0.2, logprob=-0.5, dense=0.6)
    b = candidate(2, 1, "Zwei.", lexical=0.5, logprob=-2.0, dense=0.8)
    ev = evidence([a, b])
    signals = sentence_signals(ev, a)
    assert signals["logprob_gap"] == 0.0 and signals["lexical_gap"] == pytest.approx(-0.3)
    assert signals["dense_gap"] == pytest.approx(-0.2) and signals["first"] == 1.0
    joined = join_signals(ev, a, b, 0.3)
    assert joined["after"] == 1.0 and joined["before"] == 0.0 and joined["pick_score"] == 0.3


def test_another_articles_sentence_joins_a_two_part_question_more_readily_than_a_one_part_one():
    pick = candidate(1, 4, "Er sagte etwas.", dense=0.9)
    same = candidate(2, 9, "Man treffe sich am Montag.", dense=0.8)
    other = candidate(3, 9, "Man treffe sich am Montag.", dense=0.8, source="b")
    one = evidence([pick, same, other])
    two = evidence([pick, same, other], question="Was sagte er, und wann trifft man sich?")
    assert join_signals(one, pick, same, 0.3)["other_source"] == 0.0
    assert (join_signals(one, pick, other, 0.3)["other_source"], join_signals(one, pick, other, 0.3)["other_source_two"]) == (1.0, 0.0)
    assert join_signals(two, pick, other, 0.3)["other_source_two"] == 1.0
    # the shipped join models (read and unread) learned the difference from the tune questions
    shipped = DecisionModels.load(DEFAULT_PATH)
    for join in (shipped.join, shipped.skip.join):
        assert join.score(join_signals(one, pick, other, 0.3)) < join.score(join_signals(one, pick, same, 0.3))
        assert join.score(join_signals(one, pick, other, 0.3)) < join.score(join_signals(two, pick, other, 0.3))


def test_two_part_questions_are_recognised():
    assert asks_two_things("Wer ist Michael Clarke und was meint er zur Waffenruhe?")
    assert asks_two_things("who said it and when")
    assert not asks_two_things("Was sagte Peskow?")


def test_evidence_round_trips_through_json():
    ev = evidence([candidate(1, 0, "Eins.", dense=0.5)])
    assert Evidence.from_json(ev.to_json()) == ev


def test_models_round_trip_and_a_broken_file_is_a_clear_error(tmp_path):
    path = tmp_path / "decisions.json"
    MODELS.save(path)
    loaded = DecisionModels.load(path)
    assert loaded.pick.score({"logprob_gap": -1.0, "dense_gap": 0.1}) == pytest.approx(MODELS.pick.score({"logprob_gap": -1.0, "dense_gap": 0.1}))
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DecisionModelError, match="newsbot fit"):
        DecisionModels.load(path)


def test_the_shipped_decisions_were_fitted_on_the_tune_questions_only():
    shipped = DecisionModels.load(DEFAULT_PATH)
    for fitted in (shipped.pick, shipped.join, shipped.answer, shipped.skip.pick, shipped.skip.answer):
        assert set(fitted.trained_on["files"]) == {"tune.jsonl"}
    assert not {f for f in shipped.skip.pick.features + shipped.skip.answer.features if "logprob" in f or "refusal" in f}
    assert 0.0 < shipped.skip.refuse_below <= shipped.skip.answer_at < 1.0
    assert 0.0 < shipped.answer.threshold < 1.0
    assert shipped.meta["heldout"]["questions"] > 0  # reported, never fitted on


def dated(number, source, date_ord, dense) -> Candidate:
    found = candidate(number, number, f"Der Rat plant {number} Kilometer Radwege.", dense=dense, logprob=-1.0, source=source)
    found.date_ord = date_ord
    return found


def test_a_question_for_the_latest_state_picks_the_newer_article_on_a_near_tie():
    older, newer = dated(1, "march-01", 739311, 0.80), dated(2, "march-08", 739318, 0.79)  # pick scores 0.500 / 0.475
    latest = evidence([older, newer], question="Was ist der neueste Stand bei den Radwegen?")
    latest.latest = True
    assert decide(MODELS, latest).sentences[0] is newer
    plain = evidence([older, newer], question="Wie viele Kilometer Radwege plant der Rat?")
    assert decide(MODELS, plain).sentences[0] is older  # no recency asked: the better score wins
    far = dated(2, "march-08", 739318, 0.70)  # 0.27 behind: no tie, the better sentence stays
    assert decide(MODELS, Evidence(**{**latest.__dict__, "candidates": [older, far]})).sentences[0] is older
    undated = dated(2, "march-08", 0, 0.79)
    assert decide(MODELS, Evidence(**{**latest.__dict__, "candidates": [older, undated]})).sentences[0] is older
    same_article = dated(2, "march-01", 739318, 0.79)
    assert decide(MODELS, Evidence(**{**latest.__dict__, "candidates": [older, same_article]})).sentences[0] is older


# Reader-free decisions: the dense evidence alone; sure above 0.8 (answer) and below 0.2 (refuse).
SKIPPING = DecisionModels(
    MODELS.pick, MODELS.join, MODELS.answer,
    skip=ReadingSkip(model("pick", {"dense_gap": 10.0}), MODELS.join, model("answer", {"pick_dense": 20.0}, bias=-10.0),
                     answer_at=0.8, refuse_below=0.2),
)


@pytest.mark.parametrize(("dense", "outcome"), [(0.9, "answer"), (0.3, "refuse"), (0.5, "read")])
def test_the_reader_is_skipped_only_where_the_decisions_without_it_are_sure(dense, outcome):
    found = candidate(1, 0, "Er sagte, man treffe sich.", dense=dense)
    unread = decide_unread(SKIPPING, evidence([found, candidate(2, 5, "Das Wetter war gut.", dense=0.1)]))
    if outcome == "read":
        assert unread is None  # 0.5: p = 0.5, neither sure to answer nor to refuse
    else:
        assert unread.answer == (outcome == "answer") and unread.sentences[0] == found
        assert outcome == "answer" or "without reading" in unread.reason
    assert decide_unread(MODELS, evidence([found])) is None  # decisions without a skip always read
    assert decide_unread(SKIPPING, evidence([])) is None


def test_reading_adds_the_readers_signals_to_the_measured_evidence():
    measured = evidence([candidate(1, 0, "Eins.", logprob=-30.0), candidate(0, 1, "Zwei.", logprob=-30.0)], margin=0.0)
    read = with_reading(measured, {1: -0.2, 2: -4.0}, 3.5)
    assert [c.logprob for c in read.candidates] == [-0.2, -30.0] and read.refusal_margin == 3.5


def test_a_reading_skip_round_trips(tmp_path):
    path = tmp_path / "decisions.json"
    SKIPPING.save(path)
    loaded = DecisionModels.load(path).skip
    assert (loaded.answer_at, loaded.refuse_below) == (0.8, 0.2)
    assert loaded.models.answer.threshold == 0.8  # the reader-free answer decides at its own threshold
    assert DecisionModels.load(path).answer.threshold == MODELS.answer.threshold
