"""What the store holds, source by source: `newsbot sources` lists it, `newsbot forget` names one.

A source is named by its id (what citations and `ask --json` show), a web source also by its URL,
a local file also by its path (even after the file was deleted: that is how it is retracted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from rag.index.feed_parse import FeedError, source_id_for
from rag.index.store import SourceRecord, Store


@dataclass
class StoredSource:
    source: str
    kind: str  # "file", "web" or "copy" (an agency copy stored as a pointer to `duplicate_of`)
    title: str
    date: str
    outlet: str
    where: str  # the file's path or the page's URL
    chunks: int
    status: str  # "ok", "pending" (an unfinished ingest) or "missing" (a local file that is gone)
    duplicate_of: str = ""

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def describe(source_id: str, record: SourceRecord) -> StoredSource:
    kind = "copy" if record.duplicate_of else "web" if record.url else "file"
    status = record.status
    if kind == "file" and status == "ok" and record.path and not Path(record.path).exists():
        status = "missing"
    return StoredSource(source_id, kind, record.title, record.date, record.outlet, record.url or record.path,
                        record.chunks, status, record.duplicate_of)


def list_sources(store: Store) -> list[StoredSource]:
    """Every stored source, by id."""
    return [describe(sid, record) for sid, record in sorted(store.manifest().items())]


def find_source(manifest: dict[str, SourceRecord], name: str) -> str:
    """The id of the source called `name`: an id, a web source's URL or a local file's path."""
    if name in manifest:
        return name
    if "://" in name:
        try:
            source_id = source_id_for(name)
        except ValueError:
            source_id = ""
        if source_id in manifest:
            return source_id
    else:
        path = str(Path(name).expanduser().resolve())
        for source_id, record in manifest.items():
            if not record.url and record.path == path:
                return source_id
    raise FeedError(f"{name}: no such source in the store (see `newsbot sources`; ids are also shown in citations "
                    f"and `ask --json`)")
