"""The ResourceStore contract and the semantics every backend shares.

A store holds validated resource documents keyed by (group, kind, namespace, name), and a
global revision counter like etcd's: every committed change gets the next revision, which
becomes the object's `metadata.resourceVersion`. Changes are kept as an ordered event log
(bounded; older revisions are compacted) so a client can list at revision R and then watch
from R without missing or repeating anything.

Backends implement a handful of primitives that run under the store's lock; apply/delete
semantics (optimistic concurrency, generation, no-op detection) live here once.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

from gossamer.api.loader import to_document
from gossamer.api.model import Resource
from gossamer.core.selectors import Selector

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Document = dict[str, Any]
# Aliases: inside the store classes `list` names the method, not the builtin.
Documents = list[Document]
Events = list["Event"]
Results = list["ApplyResult"]
Action = Literal["created", "configured", "unchanged"]


class ObjectKey(NamedTuple):
    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, resource: Resource) -> ObjectKey:
        return cls(resource.GROUP, resource.KIND, resource.namespace, resource.name)

    @property
    def ref(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )


@dataclass(frozen=True)
class Event:
    type: EventType
    revision: int
    key: ObjectKey
    document: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "revision": self.revision, "object": self.document}


@dataclass(frozen=True)
class ApplyResult:
    key: ObjectKey
    action: Action
    document: dict[str, Any]


class StoreError(Exception):
    status = 500


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    """The caller's resourceVersion is not the stored one: someone else wrote first."""

    status = 409


class Compacted(StoreError):
    """The requested revision is older than the retained event log: list again."""

    status = 410


class ResourceStore(Protocol):
    def get(self, key: ObjectKey) -> dict[str, Any] | None: ...

    def list(
        self,
        group: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        selector: Selector | None = None,
    ) -> tuple[Documents, int]: ...

    def apply(self, resources: Sequence[Resource], dry_run: bool = False) -> Results: ...

    def delete(self, key: ObjectKey, resource_version: str | None = None) -> dict[str, Any]: ...

    def revision(self) -> int: ...

    def events_since(self, revision: int) -> Events: ...

    def subscribe(
        self, callback: Callable[[Events], None], from_revision: int | None = None
    ) -> Callable[[], None]: ...

    def watch(self, from_revision: int, max_backlog: int = ...) -> Watch: ...

    def close(self) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _content(doc: dict[str, Any]) -> tuple[Any, ...]:
    meta = doc.get("metadata", {})
    return (doc.get("apiVersion"), doc.get("spec"), meta.get("labels"), meta.get("annotations"))


@dataclass
class _Subscriber:
    callback: Callable[[Events], None]


class BaseStore:
    """Shared semantics. Subclasses implement the `_primitive` methods (called under lock)."""

    def __init__(self, retain_events: int = 10_000) -> None:
        self._lock = threading.RLock()
        self._subscribers: list[_Subscriber] = []
        self._retain = retain_events

    # --- backend primitives --------------------------------------------------------------

    def _read(self, key: ObjectKey) -> dict[str, Any] | None:
        raise NotImplementedError

    def _scan(
        self, group: str | None, kind: str | None, namespace: str | None
    ) -> Iterable[dict[str, Any]]:
        raise NotImplementedError

    def _current_revision(self) -> int:
        raise NotImplementedError

    def _compacted_revision(self) -> int:
        raise NotImplementedError

    def _events_after(self, revision: int) -> Events:
        raise NotImplementedError

    def _commit(self, events: Events, revision: int) -> None:
        """Atomically: write or delete each event's object, append the events, set revision."""
        raise NotImplementedError

    # --- contract -------------------------------------------------------------------------

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        with self._lock:
            return self._read(key)

    def list(
        self,
        group: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        selector: Selector | None = None,
    ) -> tuple[Documents, int]:
        with self._lock:
            docs = list(self._scan(group, kind, namespace))
            revision = self._current_revision()
        if selector is not None:
            docs = [d for d in docs if selector.matches(d["metadata"].get("labels") or {})]
        docs.sort(
            key=lambda d: (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        )
        return docs, revision

    def revision(self) -> int:
        with self._lock:
            return self._current_revision()

    def apply(self, resources: Sequence[Resource], dry_run: bool = False) -> Results:
        """Create or update all resources in one transaction; all or nothing."""
        with self._lock:
            revision = self._current_revision()
            events: Events = []
            results: list[ApplyResult] = []
            seen: set[ObjectKey] = set()
            now = _now()
            for resource in resources:
                key = ObjectKey.of(resource)
                if key in seen:
                    raise Conflict(f"{key.ref}: appears twice in one apply")
                seen.add(key)
                incoming = to_document(resource)
                current = self._read(key)
                wanted_version = resource.metadata.resource_version
                if wanted_version is not None:
                    if current is None:
                        raise Conflict(
                            f"{key.ref}: resourceVersion {wanted_version} given but the object "
                            "does not exist"
                        )
                    have = current["metadata"]["resourceVersion"]
                    if have != wanted_version:
                        raise Conflict(
                            f"{key.ref}: resourceVersion {wanted_version} is stale, the stored "
                            f"object is at {have}; get it again and reapply your change"
                        )
                if current is not None and _content(current) == _content(incoming):
                    results.append(ApplyResult(key, "unchanged", current))
                    continue
                revision += 1
                meta = incoming["metadata"]
                for stale in ("uid", "generation", "resourceVersion", "creationTimestamp"):
                    meta.pop(stale, None)
                if current is None:
                    meta["uid"] = str(uuid.uuid4())
                    meta["generation"] = 1
                    meta["creationTimestamp"] = now
                    action: Action = "created"
                else:
                    old = current["metadata"]
                    meta["uid"] = old["uid"]
                    same_spec = current.get("spec") == incoming.get("spec")
                    meta["generation"] = old["generation"] + (0 if same_spec else 1)
                    meta["creationTimestamp"] = old["creationTimestamp"]
                    action = "configured"
                meta["resourceVersion"] = str(revision)
                events.append(
                    Event("ADDED" if current is None else "MODIFIED", revision, key, incoming)
                )
                results.append(ApplyResult(key, action, incoming))
            if events and not dry_run:
                self._commit(events, revision)
                self._notify(events)
            return results

    def delete(self, key: ObjectKey, resource_version: str | None = None) -> dict[str, Any]:
        with self._lock:
            current = self._read(key)
            if current is None:
                raise NotFound(f"{key.ref} not found")
            have = current["metadata"]["resourceVersion"]
            if resource_version is not None and resource_version != have:
                raise Conflict(f"{key.ref}: resourceVersion {resource_version} is stale ({have})")
            revision = self._current_revision() + 1
            events = [Event("DELETED", revision, key, current)]
            self._commit(events, revision)
            self._notify(events)
            return current

    def events_since(self, revision: int) -> Events:
        with self._lock:
            self._check_not_compacted(revision)
            return self._events_after(revision)

    def _check_not_compacted(self, revision: int) -> None:
        compacted = self._compacted_revision()
        if revision < compacted:
            raise Compacted(
                f"revision {revision} has been compacted (oldest kept: {compacted}); list again"
            )
        if revision > self._current_revision():
            raise Compacted(f"revision {revision} is in the future; list again")

    def subscribe(
        self, callback: Callable[[Events], None], from_revision: int | None = None
    ) -> Callable[[], None]:
        """Call `callback(events)` after every commit, in revision order, under the store's
        lock (so it must be quick). With `from_revision`, first deliver the backlog after it,
        atomically with subscribing so nothing is missed or repeated."""
        sub = _Subscriber(callback)
        with self._lock:
            if from_revision is not None:
                self._check_not_compacted(from_revision)
                backlog = self._events_after(from_revision)
                if backlog:
                    callback(backlog)
            self._subscribers.append(sub)

        def cancel() -> None:
            with self._lock:
                if sub in self._subscribers:
                    self._subscribers.remove(sub)

        return cancel

    def watch(self, from_revision: int, max_backlog: int = 10_000) -> Watch:
        return Watch(self, from_revision, max_backlog)

    def _notify(self, events: Events) -> None:
        for sub in list(self._subscribers):
            sub.callback(events)

    def close(self) -> None:
        pass


@dataclass
class Watch:
    """An async iterator of events after `from_revision`, for use on one event loop.

    A consumer that falls more than `max_backlog` events behind is cut off with Compacted
    (the Kubernetes answer to a slow watcher: list again)."""

    store: BaseStore
    from_revision: int
    max_backlog: int = 10_000
    _queue: asyncio.Queue[Event | BaseException | None] = field(init=False)
    _cancel: Callable[[], None] = field(init=False)
    _loop: asyncio.AbstractEventLoop = field(init=False)
    _pending: int = field(init=False, default=0)
    _closed: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._cancel = self.store.subscribe(self._on_events, self.from_revision)

    def _on_events(self, events: Events) -> None:
        # Runs on the writer's thread, under the store lock: hand over to our loop, in order.
        self._loop.call_soon_threadsafe(self._deliver, events)

    def _deliver(self, events: Events) -> None:
        if self._closed:
            return
        if self._queue.qsize() + len(events) > self.max_backlog:
            self._queue.put_nowait(Compacted("watcher fell too far behind; list again"))
            self.close()
            return
        for event in events:
            self._queue.put_nowait(event)

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None after `timeout` seconds with nothing new."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._cancel()
            self._queue.put_nowait(None)  # wake a consumer blocked in __anext__
