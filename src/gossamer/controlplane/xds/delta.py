"""Incremental ADS (`DeltaAggregatedResources`): one stream's protocol state, sans-IO.

Rules (envoy docs, "Incremental xDS"):
- Subscriptions change by `resource_names_subscribe` / `_unsubscribe`, and are honoured
  even on a request whose nonce is stale; the nonce only pairs an ACK/NACK (presence of
  `error_detail`) with our response.
- "*" subscribes to the wildcard; for LDS/CDS a first request that names nothing at all
  does too (legacy), and later explicit names add to it.
- Per-resource versions are the resources' content hashes. The first request's
  `initial_resource_versions` says what a reconnecting client holds: equal hashes are
  not resent, names that no longer exist are sent as removed.
- Subscribing to a name resends it even if the client should have it; a subscribed name
  that does not exist is reported once in `removed_resources`; unsubscribing a name
  while also holding the wildcard answers with the resource or its removal (so the
  client knows whether to keep it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2

from gossamer.controlplane.xds import types, wire
from gossamer.controlplane.xds.protocol import (
    DIFFS,
    Clock,
    Event,
    Response,
    StaleRequest,
    StreamStateBase,
    SubscriptionChanged,
    TypeState,
    share_names,
)
from gossamer.controlplane.xds.resources import Resource, ResourceSet, Snapshot


@dataclass(slots=True)
class DeltaTypeState(TypeState):
    # Explicit names that do not exist and were already reported as removed.
    missing_reported: set[str] = field(default_factory=set)
    # Names the next response must mention (resource or removal) whatever was delivered.
    force: set[str] = field(default_factory=set)
    # The wildcard was (re)subscribed: send every resource again.
    resend_all: bool = False


class DeltaState(StreamStateBase[DeltaTypeState]):
    """The protocol state of one `DeltaAggregatedResources` stream."""

    def __init__(
        self,
        *,
        wildcard_types: frozenset[str] = types.WILDCARD_TYPES,
        clock: Clock = time.time,
        control_plane: bytes = b"",
    ) -> None:
        super().__init__(
            DeltaTypeState, wildcard_types=wildcard_types, clock=clock, control_plane=control_plane
        )

    # -- requests ---------------------------------------------------------------------

    def receive(self, request: discovery_pb2.DeltaDiscoveryRequest) -> list[Event]:
        state = self._type(request.type_url)
        events: list[Event] = []
        nonce = request.response_nonce
        if nonce:
            if state.pending and nonce == state.sent_nonce:
                error = None
                if request.HasField("error_detail"):
                    error = (request.error_detail.code, request.error_detail.message)
                events.append(self._take_ack(state, nonce, error, ""))
            elif nonce != state.sent_nonce:
                events.append(StaleRequest(state.type_url, nonce))
        before = (state.wildcard, state.names)
        names = set(state.names)
        first = state.requests == 0
        state.requests += 1
        subscribe = list(request.resource_names_subscribe)
        unsubscribe = list(request.resource_names_unsubscribe)
        if first:
            state.delivered = dict(request.initial_resource_versions)
            if not subscribe and not unsubscribe and state.type_url in self._wildcard_types:
                state.wildcard = True
        delivered = state.delivered
        assert delivered is not None
        for name in subscribe:
            if name == types.WILDCARD:
                # The client may have dropped what the wildcard covered: resend it all.
                state.resend_all = state.resend_all or (not first and not state.wildcard)
                state.wildcard = True
                continue
            names.add(name)
            state.missing_reported.discard(name)
            if not first:
                # The client may have dropped it while still subscribed: resend.
                delivered.pop(name, None)
        for name in unsubscribe:
            if name == types.WILDCARD:
                # What it covered stays in `delivered`: a response in flight may still
                # bring it back to the client, whose removal must then follow.
                state.wildcard = False
                continue
            # Kept in `delivered` (see "*" above); if the wildcard still covers it the
            # client cannot tell whether to keep it, so it is told again.
            names.discard(name)
            state.missing_reported.discard(name)
            if state.wildcard:
                state.force.add(name)
        if subscribe or unsubscribe or first:
            state.names = share_names(names)
            state.generation += 1
        after = (state.wildcard, state.names)
        if first or after != before:
            events.append(SubscriptionChanged(state.type_url, *after))
        return events

    # -- responses --------------------------------------------------------------------

    def responses(self, snapshot: Snapshot) -> list[Response]:
        """What to send now, in make-before-break order; marks it as sent."""
        out: list[Response] = []
        for state in self._in_push_order():
            if state.pending or state.requests == 0:
                continue
            resources = snapshot.get(state.type_url)
            full = bool(state.force) or state.resend_all
            if state.up_to_date(resources) and not full:
                continue
            previous = state.previous()
            if previous is not None and not full:
                changed, removed = self._follow(state, previous, resources)
            else:
                changed, removed = self._diff(state, resources)
            state.checked = (resources, state.generation)
            if changed or removed:
                out.append(self._send(state, resources, changed, removed))
        return out

    def _follow(
        self, state: DeltaTypeState, previous: ResourceSet, resources: ResourceSet
    ) -> tuple[list[Resource], list[str]]:
        """The fast path: apply the (shared) diff between the set last answered from and
        the new one, in O(changes)."""
        diff = DIFFS.get(previous, resources)
        changed = [r for r in diff.added if state.wants(r.name)]
        changed.extend(r for _, r in diff.modified if state.wants(r.name))
        removed = [r.name for r in diff.removed if state.wants(r.name)]
        return changed, removed

    def _diff(
        self, state: DeltaTypeState, resources: ResourceSet
    ) -> tuple[list[Resource], list[str]]:
        """The full comparison of what the client holds with what it should."""
        delivered = state.delivered
        assert delivered is not None
        changed: list[Resource] = []
        removed: list[str] = []
        if state.wildcard:
            resend = state.resend_all
            # (Explicitly subscribed names were kept by the client: no need to resend.)
            changed.extend(
                r
                for n, r in resources.items()
                if (resend and n not in state.names) or delivered.get(n) != r.hash
            )
        state.resend_all = False
        for name in state.names:
            found = resources.get(name)
            if found is None:
                if name not in delivered and name not in state.missing_reported:
                    removed.append(name)  # "does not exist", said once
            elif not state.wildcard and delivered.get(name) != found.hash:
                changed.append(found)
        for name in [n for n in delivered if n not in resources]:
            if state.wants(name):
                removed.append(name)
            else:
                del delivered[name]  # neither wanted nor existing: nothing to tell
        for name in state.force:
            found = resources.get(name)
            if found is None:
                if name not in removed:
                    removed.append(name)
            elif state.wants(name) and found not in changed:
                changed.append(found)
        state.force.clear()
        return changed, removed

    def _send(
        self,
        state: DeltaTypeState,
        resources: ResourceSet,
        changed: list[Resource],
        removed: list[str],
    ) -> Response:
        delivered = state.delivered
        assert delivered is not None
        for resource in changed:
            delivered[resource.name] = resource.hash
            state.missing_reported.discard(resource.name)
        for name in removed:
            delivered.pop(name, None)
            if name in state.names:
                state.missing_reported.add(name)
        nonce = self._next_nonce()
        version = resources.version
        payload = wire.delta_response(
            version,
            state.type_url,
            nonce,
            (r.delta_chunk for r in changed),
            removed,
            self._control_plane,
        )
        self._mark_sent(state, version, nonce)
        return Response(
            state.type_url, version, nonce, payload, tuple(r.name for r in changed), tuple(removed)
        )
