"""What `ingest --rebuild` deletes (only its own collections) and the errors of a store that
cannot be written (a read-only data dir is no corrupt store)."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from rag.errors import StoreError
from rag.settings import Settings

logger = logging.getLogger(__name__)

_ACCESS_WORDS = ("readonly database", "read-only", "permission denied", "os error 13", "os error 30", "unable to open database file")


def access_problem(exc: BaseException) -> bool:
    """A store that cannot be written or opened for lack of rights, not a corrupt one."""
    if isinstance(exc, (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)):
        return True
    if isinstance(exc, OSError) and exc.errno in (13, 30):  # EACCES, EROFS
        return True
    return any(word in str(exc).lower() for word in _ACCESS_WORDS)


def not_writable(settings: Settings, exc: BaseException) -> StoreError:
    return StoreError(
        f"The store at {settings.store_dir} is not writable or cannot be opened ({type(exc).__name__}: {str(exc)[:120]}); "
        f"check that NEWSBOT_DATA_DIR is a folder this user may write; rebuilding would not help"
    )


def collection_names(settings: Settings) -> tuple[str, str]:
    return f"{settings.collection}_chunks", f"{settings.collection}_sources"


def delete_collections(client: Any, settings: Settings, tolerant: bool) -> None:
    """Delete this collection pair. A missing collection is what we want anyway; another failure
    is a StoreError when `tolerant` is off, unless this pair is all the store holds (then the
    embedded store is removed as a whole, e.g. a collection in a format this Chroma cannot read)."""
    own = collection_names(settings)
    for name in own:
        try:
            client.delete_collection(name)
        except Exception as exc:  # chromadb raises NotFoundError, ValueError or InternalError here
            if tolerant or "does not exist" in str(exc).lower() or type(exc).__name__ == "NotFoundError":
                continue
            others = _other_collections(client, own)
            if others is not None and not others:
                logger.warning("Collection %s cannot be deleted (%s); removing the store at %s", name, exc, settings.store_dir)
                remove_store(settings)
                return
            raise StoreError(
                f"Cannot delete collection {name} from {settings.store_dir} ({type(exc).__name__}: {str(exc)[:120]}); "
                f"the other collections there ({', '.join(others or ['unknown'])}) were kept"
            ) from None


def remove_store(settings: Settings) -> None:
    """Remove an embedded store as a whole, and Chroma's per-path client cache that still holds it."""
    from chromadb.api.client import SharedSystemClient

    shutil.rmtree(settings.store_dir, ignore_errors=True)
    SharedSystemClient.clear_system_cache()


def _other_collections(client: Any, own: tuple[str, ...]) -> list[str] | None:
    try:
        listed = client.list_collections()
    except Exception:  # an unreadable collection list
        return None
    names = [getattr(c, "name", c) for c in listed]
    return [str(n) for n in names if n not in own]
