"""SQLite store: the embedded default. One file, WAL mode, fsync on commit.

Every apply is one SQL transaction, committed before the API answers, so an acknowledged
write survives a crash of the process (and, with synchronous=FULL, of the machine).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gossamer.controlplane.store.base import BaseStore, Event, EventType, ObjectKey

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    grp TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    revision INTEGER NOT NULL, document TEXT NOT NULL,
    PRIMARY KEY (grp, kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS events (
    revision INTEGER NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL,
    grp TEXT NOT NULL, kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (revision, seq)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SqliteStore(BaseStore):
    def __init__(self, path: str | Path, retain_events: int = 10_000) -> None:
        super().__init__(retain_events)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection guarded by the store lock; writers are rare and short.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._revision = self._meta("revision")
        self._compacted = self._meta("compacted")

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _read(self, key: ObjectKey) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT document FROM objects WHERE grp=? AND kind=? AND namespace=? AND name=?",
            tuple(key),
        ).fetchone()
        return json.loads(row[0]) if row else None

    def _scan(
        self, group: str | None, kind: str | None, namespace: str | None
    ) -> Iterable[dict[str, Any]]:
        clauses, args = [], []
        for column, value in (("grp", group), ("kind", kind), ("namespace", namespace)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(f"SELECT document FROM objects{where}", args).fetchall()
        return [json.loads(row[0]) for row in rows]

    def _current_revision(self) -> int:
        return self._revision

    def _compacted_revision(self) -> int:
        return self._compacted

    def _events_after(self, revision: int) -> list[Event]:
        rows = self._db.execute(
            "SELECT revision, type, grp, kind, namespace, name, document FROM events "
            "WHERE revision > ? ORDER BY revision, seq",
            (revision,),
        ).fetchall()
        return [
            Event(_event_type(r[1]), r[0], ObjectKey(r[2], r[3], r[4], r[5]), json.loads(r[6]))
            for r in rows
        ]

    def _commit(self, events: list[Event], revision: int) -> None:
        db = self._db
        compacted = self._compacted
        db.execute("BEGIN IMMEDIATE")
        try:
            for seq, event in enumerate(events):
                text = json.dumps(event.document, separators=(",", ":"))
                if event.type == "DELETED":
                    db.execute(
                        "DELETE FROM objects WHERE grp=? AND kind=? AND namespace=? AND name=?",
                        tuple(event.key),
                    )
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?, ?)",
                        (*event.key, event.revision, text),
                    )
                db.execute(
                    "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (event.revision, seq, event.type, *event.key, text),
                )
            if revision - compacted > self._retain:
                compacted = revision - self._retain
                db.execute("DELETE FROM events WHERE revision <= ?", (compacted,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('revision', ?)", (revision,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('compacted', ?)", (compacted,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._revision = revision
        self._compacted = compacted

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _event_type(text: str) -> EventType:
    if text not in ("ADDED", "MODIFIED", "DELETED"):
        raise ValueError(f"corrupt event type {text!r}")
    return text  # type: ignore[return-value]
