"""Disagreement between articles as pure logic: other numbers or names, and the same-fact threshold."""

from __future__ import annotations

import numpy as np

from rag.answering.agreement import SAME_FACT_THRESHOLD, conflict, disagreements, names, numbers

FORTY = "Der Leipziger Stadtrat hat am Mittwoch den Bau von 40 Kilometern neuer Radwege beschlossen."
FIFTY_FIVE = "Der Leipziger Stadtrat hat am Mittwoch den Bau von 55 Kilometern neuer Radwege beschlossen."
RESTATED = "Leipzig bekommt 40 Kilometer neue Radwege: Der Stadtrat stimmte am Mittwoch zu."


def test_numbers_are_normalised_and_number_words_count():
    assert numbers("rund 1.500 Menschen, 2,5 Prozent, am 12. März") == {"1500", "2.5", "12"}
    assert numbers("knapp drei Stunden") == {"3"}


def test_another_figure_of_the_same_thing_is_a_conflict():
    found = conflict(FORTY, FIFTY_FIVE)
    assert found and found.numbers == (frozenset({"40"}), frozenset({"55"}))
    assert conflict("Der Gipfel dauerte knapp drei Stunden.", "Der Gipfel dauerte knapp 5 Stunden.")


def test_a_restatement_or_an_added_figure_is_no_conflict():
    assert not conflict(FORTY, RESTATED)
    assert not conflict(FORTY, FORTY)
    # one side adds a date; neither states another figure for the same thing
    assert not conflict("Die Kosten liegen bei rund 18 Millionen Euro.", "Die Kosten liegen am 12. März bei rund 18 Millionen Euro.")


def test_another_name_is_a_conflict_but_a_reworded_noun_is_not():
    assert conflict("Kreml-Sprecher Dmitri Peskow sagte, ein Telefonat sei nicht geplant.",
                    "Kreml-Berater Juri Uschakow sagte, ein Telefonat sei nicht geplant.")
    assert conflict("Neue Bürgermeisterin wird die CSU-Politikerin Eva Weber.", "Neue Bürgermeisterin wird die SPD-Politikerin Eva Weber.")
    assert not conflict("Die Inflationsrate in Deutschland lag im Juli bei 2,0 Prozent.", "Im Juli betrug die Teuerung in Deutschland 2,0 Prozent.")
    assert "pesko" in names("Kreml-Sprecher Dmitri Peskow sagte das.") and "stadt" not in names(FORTY)


def test_only_pairs_at_or_above_the_same_fact_threshold_disagree():
    def unit(angle):  # two unit vectors at this cosine
        return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)

    near = np.arccos(SAME_FACT_THRESHOLD + 0.01)
    far = np.arccos(SAME_FACT_THRESHOLD - 0.01)
    vectors = np.stack([unit(0.0), unit(near), unit(far), unit(0.0)])
    found = disagreements([FORTY], [FIFTY_FIVE, FIFTY_FIVE, RESTATED], vectors)
    assert [(i, j) for i, j, _ in found] == [(0, 0)]  # the far one is another fact, the identical one agrees
    assert found[0][2] >= SAME_FACT_THRESHOLD
    assert disagreements([FORTY], [FIFTY_FIVE], np.stack([unit(0.0), unit(far)]), threshold=SAME_FACT_THRESHOLD - 0.02)
