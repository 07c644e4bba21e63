"""Near-duplicate agency copy (rag/index/dedupe.py), and the threshold measured on the seeds."""

from __future__ import annotations

import itertools
from pathlib import Path

from conftest import SEEDS

from rag.index.dedupe import DEFAULT_THRESHOLD, DuplicateIndex, jaccard, shingles
from rag.index.documents import read_document
from rag.text import sentence_spans

REPORT = """Der Bundestag hat am Donnerstag das neue Heizungsgesetz mit knapper Mehrheit beschlossen.
Für den Entwurf stimmten 398 Abgeordnete, dagegen 275, es gab fünf Enthaltungen.
Das Gesetz schreibt vor, dass neue Heizungen ab 2026 zu mindestens 65 Prozent mit erneuerbaren Energien betrieben werden.
Bestehende Öl- und Gasheizungen dürfen weiter genutzt und auch repariert werden.
Hausbesitzer sollen beim Austausch eine staatliche Förderung von bis zu 70 Prozent der Kosten erhalten.
Die Opposition kritisierte das Verfahren als überhastet und kündigte eine Klage in Karlsruhe an.
Die Wirtschaftsministerin verteidigte das Gesetz als notwendigen Schritt für den Klimaschutz.
Der Bundesrat muss dem Gesetz im Herbst noch zustimmen, gilt aber als sicher.
Verbraucherschützer forderten eine bessere Beratung der Eigentümer vor Ort.
Die Heizungsbranche rechnet mit einer hohen Nachfrage nach Wärmepumpen im kommenden Jahr."""

# Another outlet's print of the same report: its own headline, its furniture, one sentence rewritten.
COPY = """Heizungsgesetz: Bundestag stimmt nach langem Streit zu
Der Bundestag hat am Donnerstag das neue Heizungsgesetz mit knapper Mehrheit beschlossen.
Für den Entwurf stimmten 398 Abgeordnete, dagegen 275, es gab fünf Enthaltungen.
Das Gesetz schreibt vor, dass neue Heizungen ab 2026 zu mindestens 65 Prozent mit erneuerbaren Energien betrieben werden.
Bestehende Öl- und Gasheizungen dürfen weiter genutzt und auch repariert werden.
Hausbesitzer sollen beim Austausch eine staatliche Förderung von bis zu 70 Prozent der Kosten erhalten.
CDU und CSU nannten das Vorgehen der Koalition respektlos und wollen in Karlsruhe klagen.
Die Wirtschaftsministerin verteidigte das Gesetz als notwendigen Schritt für den Klimaschutz.
Der Bundesrat muss dem Gesetz im Herbst noch zustimmen, gilt aber als sicher.
Verbraucherschützer forderten eine bessere Beratung der Eigentümer vor Ort.
Die Heizungsbranche rechnet mit einer hohen Nachfrage nach Wärmepumpen im kommenden Jahr.
Mehr Nachrichten aus Berlin lesen Sie in unserer App.
Alle Rechte vorbehalten. Vervielfältigung nur mit Genehmigung."""

# The same event, reported independently: same names and numbers, different sentences.
OTHER_REPORT = """Nach monatelangem Streit ist das Heizungsgesetz durch den Bundestag.
398 Parlamentarier votierten mit Ja, 275 mit Nein.
Ab 2026 müssen neu eingebaute Heizungen 65 Prozent erneuerbare Energie nutzen, so will es das Gesetz.
Wer eine alte Gasheizung hat, darf sie behalten und reparieren lassen.
Der Staat übernimmt beim Tausch bis zu 70 Prozent der Kosten.
Union und AfD halten das Verfahren für verfassungswidrig.
Im Herbst befasst sich noch der Bundesrat mit dem Vorhaben.
Für die Hersteller von Wärmepumpen ist das eine gute Nachricht."""


def test_copy_with_other_headline_furniture_and_one_sentence_is_found():
    index = DuplicateIndex()
    index.add("original", REPORT)
    match = index.find(COPY)
    assert match is not None and match.source_id == "original"
    assert DEFAULT_THRESHOLD <= match.similarity < 1.0


def test_an_independent_report_on_the_same_event_is_not_a_copy():
    index = DuplicateIndex()
    index.add("original", REPORT)
    assert index.find(OTHER_REPORT) is None
    assert jaccard(shingles(REPORT), shingles(OTHER_REPORT)) < 0.1


def test_a_page_is_no_copy_of_itself_and_removed_originals_are_gone():
    index = DuplicateIndex()
    index.add("original", REPORT)
    assert index.find(REPORT, exclude="original") is None
    index.remove("original")
    assert index.find(COPY) is None and len(index) == 0


def test_short_texts_are_never_merged():
    index = DuplicateIndex()
    index.add("kurz", "Trump traf Putin in Alaska.")
    assert len(index) == 0 and index.find("Trump traf Putin in Alaska.") is None


def _content(path: Path) -> str:
    doc = read_document(path)
    return "\n".join(doc.text[b.start:b.end] for b in doc.blocks)


def test_threshold_separates_copies_from_distinct_articles():
    """The measurement behind DEFAULT_THRESHOLD: distinct seed articles stay far below it, a
    10-sentence excerpt with another headline, furniture and one sentence changed stays above."""
    texts = [_content(p) for p in sorted(SEEDS.iterdir()) if p.suffix in (".txt", ".md", ".html")]
    distinct = max(jaccard(shingles(a), shingles(b)) for a, b in itertools.combinations(texts, 2))
    copies = []
    for text in texts:
        sentences = [text[s.start:s.end] for s in sentence_spans(text)][:10]
        edited = ["Eine ganz neue Überschrift der anderen Zeitung"] + sentences + [
            "Mehr Nachrichten aus der Region lesen Sie in unserer App.", "Alle Rechte vorbehalten."]
        edited[5] = "Dies ist ein völlig anderer Satz der Redaktion über etwas ganz anderes heute."
        copies.append(jaccard(shingles("\n".join(sentences)), shingles("\n".join(edited))))
    assert distinct < 0.05 < DEFAULT_THRESHOLD < 0.65 < min(copies), (distinct, copies)
