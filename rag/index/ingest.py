"""Incremental ingestion: content hashes decide what to add, replace or delete.

Crash safety comes from ordering: a source is first marked `pending` (with its new hash), then its
chunks are replaced under deterministic ids, then it is marked `ok`. A run killed anywhere leaves
at most pending sources, which the next run redoes from scratch, so a rerun ends in the same
state as one clean run and never duplicates.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable, Collection
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rag.index.chunking import chunk_document, to_langchain
from rag.index.documents import DocumentError, discover, read_document
from rag.index.store import SourceRecord, Store, StoreError, server_address

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (file name, done, total)


@dataclass
class IngestSummary:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    errors: list[str] = field(default_factory=list)
    merged: int = 0  # web articles stored as agency copies of another (rag/index/dedupe.py)

    def as_json(self) -> dict[str, object]:
        return {
            "added": self.added, "updated": self.updated, "removed": self.removed,
            "unchanged": self.unchanged, "chunks": self.chunks, "errors": self.errors, "merged": self.merged,
        }

    def add(self, other: IngestSummary) -> IngestSummary:
        """Local files and web sources of one `newsbot ingest`, as one summary."""
        for name in ("added", "updated", "removed", "unchanged", "merged"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.chunks = max(self.chunks, other.chunks)
        return self

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def ingest(store: Store, paths: list[Path], chunk_chars: int, progress: Progress | None = None,
           forgotten: Collection[str] = ()) -> IngestSummary:
    """`forgotten`: resolved paths removed with `newsbot forget`; a folder's files among them are
    skipped (naming the file itself ingests it again)."""
    store.check_compatible()
    summary = IngestSummary()
    manifest = store.manifest()
    stored_paths = {Path(r.path) for r in manifest.values() if not r.url and r.path}
    # A named file that is gone but stored is retracted below, not reported as missing.
    gone = {p.resolve() for p in paths if not p.exists() and not p.is_symlink() and p.resolve() in stored_paths}
    files, problems = discover([p for p in paths if p.resolve() not in gone])
    summary.errors.extend(problems)
    roots = [p.resolve() for p in paths if p.exists()] + sorted(gone)
    named = {p.resolve() for p in paths if p.is_file()}
    seen: dict[str, Path] = {}
    wrote = False

    for done, path in enumerate(files, start=1):
        if progress:
            progress(path.name, done - 1, len(files))
        source_id = path.stem
        if str(path.resolve()) in forgotten and path.resolve() not in named:
            logger.info("%s: forgotten (newsbot forget); skipped", path)
            continue
        if source_id in seen:
            summary.errors.append(f"{path}: same source id {source_id!r} as {seen[source_id]}; rename one of them")
            continue
        previous = manifest.get(source_id)
        if previous is not None and _taken(previous, path):
            summary.errors.append(
                f"{path}: source id {source_id!r} is already taken by {previous.url or previous.path}; rename the file, "
                f"or retract the stored one first (newsbot forget {source_id})")
            continue
        seen[source_id] = path
        try:
            doc = read_document(path, source_id)
        except DocumentError as exc:
            summary.errors.append(str(exc))
            continue  # whatever the store has for this source stays
        if previous and previous.status == "ok" and previous.content_hash == doc.content_hash:
            summary.unchanged += 1
            if previous.path != str(path.resolve()):  # moved: the record follows, so the old folder's sync keeps it
                full = store.source_records([source_id]).get(source_id)
                if full is not None:
                    full.path = str(path.resolve())
                    with _writing(store, source_id):
                        store.put_source(full)
                    wrote = True
            continue
        replacing = previous.replacing if previous and previous.status == "pending" else previous is not None
        record = SourceRecord(
            source_id=source_id, text=doc.text, title=doc.title, date=doc.date or "", date_ord=doc.date_ord,
            outlet=doc.outlet or "", path=str(path.resolve()), content_hash=doc.content_hash,
            status="pending", replacing=replacing, chunks=0,
        )
        chunks = chunk_document(doc, chunk_chars)
        with _writing(store, source_id):
            store.put_source(record)
            wrote = True
            store.replace_chunks(source_id, [to_langchain(doc, c) for c in chunks])
            record.status, record.chunks = "ok", len(chunks)
            store.put_source(record)
        if replacing:
            summary.updated += 1
        else:
            summary.added += 1
        logger.info("ingested %s: %d chunks", source_id, len(chunks))

    for source_id, record in manifest.items():
        if source_id in seen or record.url:  # web sources leave with their feed or `newsbot forget`
            continue
        if _under(Path(record.path), roots) and not Path(record.path).exists():
            with _writing(store, source_id):
                store.delete_source(source_id)
            wrote = True
            summary.removed += 1
    if progress:
        progress("", len(files), len(files))
    if wrote or not store.generation():
        with _writing(store, None):
            store.bump_generation()
    summary.chunks = store.chunk_count()
    return summary


@contextmanager
def _writing(store: Store, source_id: str | None):
    """A failed write (a full disk, above all) ends the run with a StoreError that says what to do.

    The ordering above keeps the store consistent: the source being written stays `pending`
    (never served), and the next run redoes it."""
    from chromadb.errors import ChromaError

    try:
        yield
    except (OSError, sqlite3.Error, ChromaError) as exc:
        where = server_address(store.settings) if store.settings.uses_chroma_server else store.settings.store_dir
        free = ""
        if not store.settings.uses_chroma_server:
            try:
                free = f"; {shutil.disk_usage(where).free / 1e6:.1f} MB free there"
            except OSError:
                pass
        what = f"writing {source_id!r}" if source_id else "finishing the ingest"
        detail = " ".join(str(exc).split())[:160]
        raise StoreError(
            f"The store at {where} failed while {what} ({type(exc).__name__}: {detail}{free}). "
            f"If the disk is full, free some space and run `newsbot ingest` again: unfinished articles are redone, "
            f"finished ones are kept"
        ) from None


def _taken(previous: SourceRecord, path: Path) -> bool:
    """The id belongs to another source: a web page, or another file that still exists (a stored
    file that is gone has moved here, and this file replaces it)."""
    if previous.url:
        return True
    other = Path(previous.path)
    return bool(previous.path) and other != path.resolve() and other.exists()


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)
