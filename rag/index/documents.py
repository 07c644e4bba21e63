"""Reading articles: decoding, HTML extraction, metadata, and page-furniture removal.

A document keeps its full text (the text all offsets point into) and the list of content spans
that survive furniture removal; nothing is rewritten, so every quote can be checked verbatim.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from rag.errors import DocumentError
from rag.safe_text import strip_controls
from rag.text import Span

logger = logging.getLogger(__name__)
PARSER_VERSION = 3  # bump when parsing, furniture stripping or sentence splitting changes (3: control sequences removed)


SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class SourceDocument:
    source_id: str
    path: Path
    text: str
    content_hash: str
    title: str
    date: str | None = None
    outlet: str | None = None
    authors: list[str] = field(default_factory=list)
    blocks: list[Span] = field(default_factory=list)

    @property
    def date_ord(self) -> int:
        return date_ordinal(self.date)


def date_ordinal(date: str | None) -> int:
    """YYYYMMDD as an int for range filters (missing month/day count as 00); 0 when unknown."""
    if not date:
        return 0
    parts = [int(p) for p in date.split("-")] + [0, 0]
    return parts[0] * 10000 + parts[1] * 100 + parts[2]


# ---- furniture ---------------------------------------------------------------------------------

_FURNITURE_LINE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"^\s*©",  # image credits: © IMAGO/...
        r"^\s*(Rubriklistenbild|Bildquelle|Foto|Bild|Fotos?|Quelle Bild)\s*:.*©",
        r"^\s*(Rubriklistenbild|Bildquelle)\s*:",
        r"^\s*-?\s*(showPaywall|isSubscriber|isPaid|paywall|isPremium)\s*:?.*$",
        r"^\s*-?\s*(true|false|null)\s*$",
        r"^\s*-\s*schließen\s*$",
        r"^\s*(Klicken Sie hier|Besuchen Sie uns auf|Folgen Sie uns|Mehr zum Thema|Zur Startseite)\b",
        r"^\s*(Stand|Aktualisiert|Veröffentlicht)\s*:\s*[\d.:, ]*(Uhr)?\s*$",
        r"<\s*/?\s*[a-z]+[^>]*>",  # leftover HTML tags
        r"^[^\t\n]{1,40}\t[^\n]*$",  # info-box rows such as "Ort<TAB>Washington, USA"
        r"^\s*(Teilen|Kommentare|Artikel teilen|Drucken|Anzeige|Werbung)\s*$",
    )
]
_LINK_LIST_HEAD = re.compile(r"^\s*(Lesen Sie auch|Auch interessant|Mehr dazu|Das könnte Sie auch interessieren|Weitere Artikel)\b.*:?\s*$", re.I)
_LIST_ITEM = re.compile(r"^\s*[-•*]\s+\S")
_OUTLET = re.compile(r"Besuchen Sie uns auf:?\s*(?P<outlet>[\w.-]+\.[a-z]{2,})", re.I)
_HEADER_DATE = re.compile(r"^\s*date\s+(?P<date>\d{4}-\d{2}(?:-\d{2})?)\s*", re.I)
_DATES = (
    re.compile(r"\b(?P<y>20\d{2})-(?P<m>\d{2})(?:-(?P<d>\d{2}))?\b"),
    re.compile(r"\b(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>20\d{2})\b"),
    re.compile(
        r"\b(?P<d>\d{1,2})\.\s*(?P<mn>Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember)\s+(?P<y>20\d{2})\b"
    ),
)
_MONTHS = {m: i for i, m in enumerate(
    "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split(), start=1)}
_NAME_LINE = re.compile(r"^\s*[A-ZÄÖÜ][a-zäöüß]+(?:[ -][A-ZÄÖÜ][a-zäöüß]+){1,2}\s*$")


def read_document(path: Path, source_id: str | None = None) -> SourceDocument:
    """Read one article file; raises DocumentError with a per-file, actionable message."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{path}: unsupported file type {suffix!r} (use .txt, .md or .html)")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DocumentError(f"{path}: file is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MiB limit; split it into articles")
        raw = path.read_bytes()
    except PermissionError:
        raise DocumentError(f"{path}: permission denied; make the file readable (chmod +r) and ingest again") from None
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise DocumentError(f"{path}: file is empty; nothing to ingest")
    text = _decode_bom(raw, path)  # UTF-16/32 with a byte-order mark: NUL bytes, yet text
    if text is None and b"\x00" in raw[:8192]:
        raise DocumentError(f"{path}: looks like a binary file, not text; only .txt, .md and .html articles are ingested")
    text = text if text is not None else _decode(raw, path)
    # The parser version is hashed in, so an upgrade that splits text differently re-chunks every article.
    content_hash = hashlib.sha256(f"newsbot-parser-{PARSER_VERSION}\0".encode() + raw).hexdigest()
    extracted: dict[str, str | None] = {}
    if suffix in (".html", ".htm"):
        text, extracted = _extract_html(text, path)
    doc = parse_text(text, source_id or path.stem, path, content_hash, markdown=suffix in (".md", ".markdown"))
    doc.title = strip_controls(extracted.get("title") or "") or doc.title
    doc.date = extracted.get("date") or doc.date
    doc.outlet = strip_controls(extracted.get("outlet") or "") or doc.outlet
    if not doc.blocks:
        raise DocumentError(f"{path}: no article text left after removing page furniture")
    return doc


def _decode_bom(raw: bytes, path: Path) -> str | None:
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if raw.startswith(bom):
            try:
                return raw.decode(codec)
            except UnicodeDecodeError:
                raise DocumentError(f"{path}: starts like {codec.upper()} text but is not; save it as UTF-8") from None
    return None


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        logger.warning("%s is not UTF-8; reading it as Windows-1252/Latin-1", path)
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def _extract_html(html: str, path: Path) -> tuple[str, dict[str, str | None]]:
    import trafilatura

    from rag.index.html_clean import strip_hidden

    html = strip_hidden(html)  # text a reader never sees (hidden, sr-only, white on white)
    text = trafilatura.extract(html, include_comments=False, include_tables=False, favor_precision=True)
    if not text:
        raise DocumentError(f"{path}: no article text found in the HTML")
    meta = trafilatura.extract_metadata(html)
    info: dict[str, str | None] = {}
    if meta is not None:
        info = {"title": meta.title, "date": meta.date, "outlet": meta.sitename}
    return text, info


def parse_text(text: str, source_id: str, path: Path, content_hash: str, *, markdown: bool = False) -> SourceDocument:
    """Split text into content blocks (furniture removed) and read title, date and outlet.
    Terminal control sequences go first (issue 17.4): the stored text, which every offset points
    into, never carries them."""
    text = strip_controls(text)
    date: str | None = None
    outlet: str | None = None
    lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]*", text) if m.end() > m.start() or False]
    kept: list[Span] = []
    in_link_list = False
    for start, end in lines:
        line = text[start:end]
        if not line.strip():
            in_link_list = False
            continue
        if match := _OUTLET.search(line):
            outlet = outlet or match.group("outlet")
        if _LINK_LIST_HEAD.match(line):
            in_link_list = True
            continue
        if in_link_list and _LIST_ITEM.match(line):
            continue
        in_link_list = False
        if any(p.search(line) for p in _FURNITURE_LINE):
            date = date or _find_date(line)
            continue
        if header := _HEADER_DATE.match(line):
            date = date or header.group("date")
            start += header.end()
        if markdown:
            stripped = line.lstrip()
            if stripped.startswith("#"):
                start += len(line) - len(stripped) + len(stripped) - len(stripped.lstrip("#").lstrip())
        if start < end:
            kept.append(Span(start, end))
    kept, authors = _drop_bylines(text, kept)
    title = _pick_title(text, kept)
    if date is None:
        for span in kept[:6]:
            line = text[span.start:span.end]
            if len(line) < 80 and (found := _find_date(line)):
                date = found
                break
    blocks = _merge_adjacent(text, kept)
    return SourceDocument(source_id, path, text, content_hash, title, date, outlet, authors, blocks)


def _find_date(line: str) -> str | None:
    for pattern in _DATES:
        if m := pattern.search(line):
            groups = m.groupdict()
            month = _MONTHS.get(groups.get("mn") or "", None) or int(groups.get("m") or 0)
            day = int(groups["d"]) if groups.get("d") else 0
            if not 1 <= month <= 12:
                continue
            return f"{groups['y']}-{month:02d}" + (f"-{day:02d}" if day else "")
    return None


def _drop_bylines(text: str, kept: list[Span]) -> tuple[list[Span], list[str]]:
    """Author lines ("Paula Völkner") near the top are metadata, not article content."""
    authors: list[str] = []
    out: list[Span] = []
    for index, span in enumerate(kept):
        line = text[span.start:span.end]
        if index < 8 and _NAME_LINE.match(line) and not line.rstrip().endswith((".", ":")):
            authors.append(line.strip())
            continue
        out.append(span)
    if len(authors) == 1:  # a single short line is more likely a kicker or subheading than a byline
        return kept, []
    return out, authors


def _pick_title(text: str, kept: list[Span]) -> str:
    for span in kept[:4]:
        line = text[span.start:span.end].strip()
        if 25 <= len(line) <= 200 and not line.endswith((".", ":")):
            return line
    if kept:
        first = text[kept[0].start:kept[0].end].strip()
        sentence = re.split(r"(?<=[.!?“])\s", first, maxsplit=1)[0]
        return sentence if len(sentence) <= 100 else sentence[:97].rsplit(" ", 1)[0] + " …"
    return ""


def _merge_adjacent(text: str, kept: list[Span]) -> list[Span]:
    """Join content lines separated only by whitespace into blocks; furniture breaks blocks."""
    blocks: list[Span] = []
    for span in kept:
        if blocks and not text[blocks[-1].end:span.start].strip():
            blocks[-1] = Span(blocks[-1].start, span.end)
        else:
            blocks.append(span)
    return blocks


def discover(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Files to ingest under the given paths, sorted, plus messages for paths that do not exist."""
    found: list[Path] = []
    problems: list[str] = []
    for root in paths:
        if root.is_file():
            found.append(root)
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.suffix.lower() not in SUPPORTED_SUFFIXES or p.is_dir():
                    continue
                if p.is_file():
                    found.append(p)
                else:  # never opened: reading a FIFO without a writer would block forever
                    problems.append(f"{p}: {_NOT_REGULAR}")
        elif root.is_symlink() or root.exists():
            problems.append(f"{root}: {_NOT_REGULAR}")
        else:
            problems.append(f"{root}: no such file or directory")
    return found, problems


_NOT_REGULAR = "not a regular file (a FIFO, socket, device or broken link); skipped"
