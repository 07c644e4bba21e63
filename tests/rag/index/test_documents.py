
import pytest
from conftest import SEEDS

from rag.index.documents import DocumentError, read_document


def _doc(stem):
    return read_document(SEEDS / f"{stem}.txt")


def _content(doc):
    return "\n".join(doc.text[b.start:b.end] for b in doc.blocks)


def test_titles_dates_outlets_from_the_seeds():
    assert _doc("000_24974ad38bb207f4").title.startswith("Trump schließt sofortige Waffenruhe nun aus")
    assert _doc("001_d0d0cfa9444d8be7").date == "2025-02"
    assert _doc("003_abdad34a08e92d8c").outlet == "n-ag.de"
    doc4 = _doc("004_141f0a1c237ad6c8")
    assert doc4.title.startswith("Selenskyj übers Trump-Telefonat")
    assert "Paula Völkner" in doc4.authors


@pytest.mark.parametrize("stem, furniture", [
    ("000_24974ad38bb207f4", "showPaywall"),
    ("000_24974ad38bb207f4", "© IMAGO"),
    ("000_24974ad38bb207f4", "© Imago/UPI"),
    ("002_140f15234ae05953", "Lesen Sie auch"),
    ("002_140f15234ae05953", "Russische Öllieferungen nach Ungarn"),
    ("002_140f15234ae05953", "Klicken Sie hier"),
    ("003_abdad34a08e92d8c", "Besuchen Sie uns auf"),
    ("003_abdad34a08e92d8c", "list-style-type"),
    ("004_141f0a1c237ad6c8", "Rubriklistenbild"),
    ("004_141f0a1c237ad6c8", "- schließen"),
    ("001_d0d0cfa9444d8be7", "date 2025-02"),
])
def test_furniture_is_stripped(stem, furniture):
    doc = _doc(stem)
    assert furniture in doc.text  # the source keeps everything (offsets point into it)...
    assert furniture not in _content(doc)  # ...but the content the store indexes does not


def test_article_text_is_kept():
    content = _content(_doc("000_24974ad38bb207f4"))
    assert "zehn von zehn Punkten" in content
    assert "Artikel-fünf-Garantie außerhalb der Nato" in content


def test_bad_files_get_clear_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DocumentError, match="empty"):
        read_document(empty)
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(DocumentError, match="binary"):
        read_document(binary)
    with pytest.raises(DocumentError, match="unsupported"):
        read_document(tmp_path / "x.pdf")


def test_latin1_file_is_read(tmp_path):
    path = tmp_path / "alt.txt"
    path.write_bytes("Überschrift für einen älteren Artikel\nDer Außenminister sagte etwas Wichtiges.".encode("latin-1"))
    doc = read_document(path)
    assert "Außenminister" in doc.text


def test_html_is_extracted(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Gipfel in Genf endet ohne Einigung</title><meta property='og:site_name' content='Testzeitung'>"
        "<meta name='date' content='2025-03-04'></head><body><nav>Startseite Politik</nav><article><h1>Gipfel in Genf endet ohne Einigung</h1>"
        + "".join(f"<p>Der Gipfel in Genf dauerte lange, sagte die Sprecherin im Absatz {i}. Es gab keine Einigung über die Waffenruhe.</p>" for i in range(6))
        + "</article><footer>Impressum</footer></body></html>", encoding="utf-8")
    doc = read_document(path)
    assert doc.title == "Gipfel in Genf endet ohne Einigung"
    assert doc.date == "2025-03-04"
    assert "Impressum" not in "\n".join(doc.text[b.start:b.end] for b in doc.blocks)
