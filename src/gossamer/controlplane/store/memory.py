"""In-memory store: for tests and throwaway control planes (`--store memory://`)."""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Iterable
from typing import Any

from gossamer.controlplane.store.base import BaseStore, Event, ObjectKey


class MemoryStore(BaseStore):
    def __init__(self, retain_events: int = 10_000) -> None:
        super().__init__(retain_events)
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._events: deque[Event] = deque()
        self._revision = 0
        self._compacted = 0

    def _read(self, key: ObjectKey) -> dict[str, Any] | None:
        doc = self._objects.get(key)
        return copy.deepcopy(doc) if doc is not None else None

    def _scan(
        self, group: str | None, kind: str | None, namespace: str | None
    ) -> Iterable[dict[str, Any]]:
        for key, doc in self._objects.items():
            if group is not None and key.group != group:
                continue
            if kind is not None and key.kind != kind:
                continue
            if namespace is not None and key.namespace != namespace:
                continue
            yield copy.deepcopy(doc)

    def _current_revision(self) -> int:
        return self._revision

    def _compacted_revision(self) -> int:
        return self._compacted

    def _events_after(self, revision: int) -> list[Event]:
        return [e for e in self._events if e.revision > revision]

    def _commit(self, events: list[Event], revision: int) -> None:
        for event in events:
            if event.type == "DELETED":
                self._objects.pop(event.key, None)
            else:
                self._objects[event.key] = copy.deepcopy(event.document)
            self._events.append(event)
        self._revision = revision
        while len(self._events) > self._retain:
            self._compacted = self._events.popleft().revision
