"""What the sans-IO stream states (`sotw.SotwState`, `delta.DeltaState`) emit.

A state is fed every request of its stream (`receive`, returning `Event`s) and asked for
what to send given the node's current snapshot (`responses`, returning `Response`s with
their bytes ready for the wire). Neither does any I/O nor knows about asyncio or gRPC.

Both keep at most one unacknowledged response per type: a new one is computed when the
previous was ACKed or NACKed. That gives natural back-pressure, keeps nonces meaningful,
and makes "do not resend what was NACKed" fall out of the content comparison.

Cost of a push: a type whose `ResourceSet` is the very object last answered from costs
O(1). Otherwise, if the subscription has not changed since, the stream applies the diff
between the two sets, computed once for every stream making the same move (`DIFFS`), in
O(changes); only after a subscription change does it compare everything it covers.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from gossamer.controlplane.xds import types
from gossamer.controlplane.xds.resources import Resource, ResourceSet, xor_tokens
from gossamer.controlplane.xds.status import NackInfo, TypeStatus

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class SubscriptionChanged:
    """The client changed what it wants of a type (its first request included)."""

    type_url: str
    wildcard: bool
    names: frozenset[str]


@dataclass(frozen=True, slots=True)
class Acked:
    type_url: str
    version: str
    nonce: str


@dataclass(frozen=True, slots=True)
class Nacked:
    nack: NackInfo


@dataclass(frozen=True, slots=True)
class StaleRequest:
    """A request answering an older response than the latest: no ACK/NACK taken from it."""

    type_url: str
    nonce: str


Event = SubscriptionChanged | Acked | Nacked | StaleRequest


@dataclass(frozen=True, slots=True)
class Response:
    """One response, serialised (`payload`), with what it carries for logs and tests."""

    type_url: str
    version: str
    nonce: str
    payload: bytes
    resources: tuple[str, ...]
    removed: tuple[str, ...] = ()


@dataclass(slots=True)
class TypeState:
    """Bookkeeping common to both protocol variants, for one type on one stream."""

    type_url: str
    wildcard: bool = False
    names: frozenset[str] = frozenset()  # shared between streams: see `share_names`
    requests: int = 0
    # Bumped whenever the subscription (or what we believe the client holds) changes
    # other than by our own responses; with `checked` it lets an unchanged type be
    # skipped in O(1) on a push.
    generation: int = 0
    checked: tuple[ResourceSet, int] | None = None
    # XOR of the tokens of the subscribed resources of the `checked` set: the version of
    # what the subscription covers, kept up to date in O(changes).
    covered: int = 0
    # name -> hash of the resource we believe the client holds (sent or declared).
    delivered: dict[str, str] | None = None
    pending: bool = False
    sent_version: str | None = None
    sent_nonce: str | None = None
    sent_at: float | None = None
    acked_version: str | None = None
    acked_at: float | None = None
    last_nack: NackInfo | None = None

    def up_to_date(self, resources: ResourceSet) -> bool:
        return (
            self.checked is not None
            and self.checked[0] is resources
            and self.checked[1] == self.generation
        )

    def previous(self) -> ResourceSet | None:
        """The set last answered from, if the subscription has not changed since: then
        what the client holds is exactly the subscribed part of it, and the next answer
        follows from the diff between that set and the new one."""
        if self.checked is not None and self.checked[1] == self.generation:
            return self.checked[0]
        return None

    def wants(self, name: str) -> bool:
        return self.wildcard or name in self.names

    def status(self) -> TypeStatus:
        return TypeStatus(
            type_url=self.type_url,
            wildcard=self.wildcard,
            names=tuple(sorted(self.names)),
            sent_version=self.sent_version,
            sent_nonce=self.sent_nonce,
            sent_at=self.sent_at,
            acked_version=self.acked_version,
            acked_at=self.acked_at,
            last_nack=self.last_nack,
            pending=self.pending,
        )


S = TypeVar("S", bound=TypeState)


class StreamStateBase(Generic[S]):
    """Per-type records, nonces and the push order."""

    def __init__(
        self,
        make_type_state: Callable[[str], S],
        *,
        wildcard_types: frozenset[str] = types.WILDCARD_TYPES,
        clock: Clock = time.time,
        control_plane: bytes = b"",
    ) -> None:
        self._types: dict[str, S] = {}
        self._make_type_state = make_type_state
        self._wildcard_types = wildcard_types
        self._clock = clock
        self._control_plane = control_plane
        self._last_nonce = 0

    def _type(self, type_url: str) -> S:
        found = self._types.get(type_url)
        if found is None:
            found = self._types[type_url] = self._make_type_state(type_url)
        return found

    def _next_nonce(self) -> str:
        # Unique within the stream, which is all the protocol asks of a nonce.
        self._last_nonce += 1
        return str(self._last_nonce)

    def _in_push_order(self) -> Iterator[S]:
        for type_url in types.PUSH_ORDER:
            found = self._types.get(type_url)
            if found is not None:
                yield found
        for type_url, found in self._types.items():
            if type_url not in types.PUSH_ORDER:
                yield found

    def _mark_sent(self, state: TypeState, version: str, nonce: str) -> None:
        state.pending = True
        state.sent_version = version
        state.sent_nonce = nonce
        state.sent_at = self._clock()

    def _take_ack(
        self, state: TypeState, nonce: str, error: tuple[int, str] | None, client_version: str
    ) -> Event:
        """The answer to our latest response: ACK, or NACK when `error` is given."""
        state.pending = False
        now = self._clock()
        version = state.sent_version or ""
        if error is None:
            state.acked_version = version
            state.acked_at = now
            return Acked(state.type_url, version, nonce)
        code, message = error
        state.last_nack = NackInfo(
            type_url=state.type_url,
            nonce=nonce,
            rejected_version=version,
            client_version=client_version,
            code=code,
            message=message,
            at=now,
        )
        return Nacked(state.last_nack)

    @property
    def type_urls(self) -> tuple[str, ...]:
        """Types the client has asked for, in the order it asked."""
        return tuple(self._types)

    def subscription(self, type_url: str) -> tuple[bool, frozenset[str]] | None:
        """(wildcard, explicit names) for a type, or None if never asked for."""
        found = self._types.get(type_url)
        if found is None:
            return None
        return found.wildcard, found.names

    def status(self) -> dict[str, TypeStatus]:
        return {type_url: state.status() for type_url, state in self._types.items()}


_SHARED_NAMES: OrderedDict[frozenset[str], frozenset[str]] = OrderedDict()


def share_names(names: Iterable[str]) -> frozenset[str]:
    """One frozenset (of interned strings) for equal subscriptions across streams: 1,000
    proxies asking EDS for the same 1,000 clusters hold one copy, not 1,000."""
    key = frozenset(names)
    found = _SHARED_NAMES.get(key)
    if found is not None:
        _SHARED_NAMES.move_to_end(key)
        return found
    found = frozenset(sys.intern(name) for name in key)
    _SHARED_NAMES[found] = found
    if len(_SHARED_NAMES) > 1024:
        _SHARED_NAMES.popitem(last=False)
    return found


def desired(
    resources: ResourceSet, wildcard: bool, names: AbstractSet[str]
) -> Mapping[str, Resource]:
    """The resources a subscription covers that exist: all of them for a wildcard."""
    if wildcard:
        return resources
    if len(names) > len(resources):
        return {n: r for n, r in resources.items() if n in names}
    return {n: resources[n] for n in names if n in resources}


def chosen_xor(resources: ResourceSet, chosen: Mapping[str, Resource]) -> int:
    """Version accumulator of `chosen` (a subset of `resources`; cached when it is all)."""
    if chosen is resources or len(chosen) == len(resources):
        return resources.token_xor
    return xor_tokens(chosen.values())


@dataclass(frozen=True, slots=True, eq=False)
class SetDiff:
    """What changed between two sets of one type."""

    old: ResourceSet
    new: ResourceSet
    added: tuple[Resource, ...]
    modified: tuple[tuple[Resource, Resource], ...]  # (old, new)
    removed: tuple[Resource, ...]


class DiffCache:
    """Diffs between two `ResourceSet`s, computed once for all the streams making the
    same move (typically every proxy going from the previous shared set to the new one),
    so that each stream does O(changes) work, not O(resources)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._diffs: OrderedDict[tuple[int, int], SetDiff] = OrderedDict()

    def get(self, old: ResourceSet, new: ResourceSet) -> SetDiff:
        key = (id(old), id(new))
        found = self._diffs.get(key)
        # The entry holds both sets, so their ids cannot have been reused meanwhile.
        if found is not None and found.old is old and found.new is new:
            self._diffs.move_to_end(key)
            return found
        added: list[Resource] = []
        modified: list[tuple[Resource, Resource]] = []
        for name, resource in new.items():
            before = old.get(name)
            if before is None:
                added.append(resource)
            elif before is not resource and before.hash != resource.hash:
                modified.append((before, resource))
        removed = tuple(r for n, r in old.items() if n not in new)
        found = SetDiff(old, new, tuple(added), tuple(modified), removed)
        self._diffs[key] = found
        if len(self._diffs) > self._size:
            self._diffs.popitem(last=False)
        return found


DIFFS: Final = DiffCache()
