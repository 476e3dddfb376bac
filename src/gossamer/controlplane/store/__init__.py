"""Resource stores: memory (tests, throwaway), sqlite (the embedded default)."""

from __future__ import annotations

from pathlib import Path

from gossamer.controlplane.store.base import (
    ApplyResult,
    BaseStore,
    Compacted,
    Conflict,
    Event,
    NotFound,
    ObjectKey,
    ResourceStore,
    StoreError,
    Watch,
)
from gossamer.controlplane.store.memory import MemoryStore
from gossamer.controlplane.store.sqlite import SqliteStore


def open_store(url: str, state_dir: Path) -> BaseStore:
    """`memory://`, `sqlite://` (state dir default), `sqlite:///abs/path.db`, `sqlite://rel.db`."""
    if url.startswith("memory://"):
        return MemoryStore()
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://") :]
        path = Path(rest) if rest else state_dir / "gossamer.db"
        if not path.is_absolute():
            path = state_dir / path
        return SqliteStore(path)
    scheme = url.split("://", 1)[0]
    if scheme in ("etcd", "kubernetes"):
        raise ValueError(f"store {scheme!r} is not available in this build yet; use sqlite://")
    raise ValueError(f"unknown store URL {url!r}; expected memory:// or sqlite://[PATH]")


__all__ = [
    "ApplyResult",
    "BaseStore",
    "Compacted",
    "Conflict",
    "Event",
    "MemoryStore",
    "NotFound",
    "ObjectKey",
    "ResourceStore",
    "SqliteStore",
    "StoreError",
    "Watch",
    "open_store",
]
