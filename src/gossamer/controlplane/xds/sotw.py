"""State-of-the-world ADS (`StreamAggregatedResources`): one stream's protocol state, sans-IO.

Rules (envoy docs, "xDS REST and gRPC protocol"):
- A request answers our latest response of its type when its `response_nonce` is that
  response's nonce: an ACK, or a NACK if it carries `error_detail`. Any other non-empty
  nonce is stale: it is neither ACK nor NACK, but its `resource_names` are still taken
  (each SotW request carries the full list, so the newest one is the truth).
- Until the client has explicitly named resources of a wildcard type (LDS/CDS), an empty
  list means "*"; afterwards an empty list means "nothing".
- LDS/CDS responses carry every subscribed resource; RDS/EDS/SDS responses carry only
  resources that are new to the client or changed (the client keeps the others). Newly
  subscribed names are always sent, even if the client had them.
- A version is the content hash of exactly what the subscription covers. When that
  changes with nothing to send (an RDS/EDS resource removed or unsubscribed; LDS/CDS
  unsubscribed entirely), an empty response carries the new version: a no-op for the
  client, but its version_info then never claims resources it does not hold.
- Therefore a stream's first request carrying a `version_info` equal to what we would
  send (a client reconnecting to us, or to our restarted self) needs no answer. That
  holds for the subscription of that first request only; a later change voids it.
  (One window remains, inherent to SotW: a client that reconnects between dropping
  resources and receiving the empty response above presents a version that claims them.)
- After a NACK the rejected content is remembered as delivered, so it is not sent again;
  the next different content (a fix, or a rollback) is.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
    chosen_xor,
    desired,
    share_names,
)
from gossamer.controlplane.xds.resources import Resource, ResourceSet, Snapshot, version_string


@dataclass(slots=True)
class SotwTypeState(TypeState):
    """SotW extras: the legacy-wildcard flag and the version a reconnecting client had."""

    explicit: bool = False  # some request named resources: "" no longer means "*"
    client_version: str = ""  # version_info of the first request on this stream
    delivered_version: str | None = None  # the version last sent (or adopted)
    # RDS/EDS/SDS: after each answer the client holds exactly the subscribed part of the
    # set answered from, so `delivered` stays None ("derived") instead of a per-name map
    # per stream; it is materialised only when a subscription change must edit it.
    derived: bool = False

    @property
    def answered(self) -> bool:
        """Something was sent (or adopted) on this stream."""
        return self.derived or self.delivered is not None

    def materialize(self) -> dict[str, str]:
        if self.derived:
            assert self.checked is not None
            base = desired(self.checked[0], self.wildcard, self.names)
            self.delivered = {n: r.hash for n, r in base.items()}
            self.derived = False
        assert self.delivered is not None
        return self.delivered

    def derive(self) -> None:
        self.delivered = None
        self.derived = True


class SotwState(StreamStateBase[SotwTypeState]):
    """The protocol state of one `StreamAggregatedResources` stream."""

    def __init__(
        self,
        *,
        wildcard_types: frozenset[str] = types.WILDCARD_TYPES,
        full_state_types: frozenset[str] = types.FULL_STATE_TYPES,
        clock: Clock = time.time,
        control_plane: bytes = b"",
    ) -> None:
        super().__init__(
            SotwTypeState, wildcard_types=wildcard_types, clock=clock, control_plane=control_plane
        )
        self._full_state_types = full_state_types

    # -- requests ---------------------------------------------------------------------

    def receive(self, request: discovery_pb2.DiscoveryRequest) -> list[Event]:
        state = self._type(request.type_url)
        events: list[Event] = []
        nonce = request.response_nonce
        if state.sent_nonce is not None and nonce != state.sent_nonce:
            events.append(StaleRequest(state.type_url, nonce))
        else:
            if state.requests == 0 and request.version_info:
                # A reconnecting client tells which version it runs; it applied it.
                state.client_version = request.version_info
                state.acked_version = request.version_info
                state.acked_at = self._clock()
            if state.pending and nonce == state.sent_nonce:
                error = None
                if request.HasField("error_detail"):
                    error = (request.error_detail.code, request.error_detail.message)
                events.append(self._take_ack(state, nonce, error, request.version_info))
        state.requests += 1
        if self._subscribe(state, request.resource_names) or state.requests == 1:
            # The first request always counts as a change, even an empty one, so the
            # owner learns that the client wants this type at all.
            events.append(SubscriptionChanged(state.type_url, state.wildcard, state.names))
        return events

    def _subscribe(self, state: SotwTypeState, requested: Iterable[str]) -> bool:
        names = set(requested)
        if names:
            state.explicit = True
            wildcard = types.WILDCARD in names
            names.discard(types.WILDCARD)
        else:
            wildcard = not state.explicit and state.type_url in self._wildcard_types
        if wildcard == state.wildcard and names == state.names:
            return False
        if state.requests > 1:
            # The version the stream began with vouches for that first subscription
            # only: the client may have dropped resources since.
            state.client_version = ""
        if state.type_url in self._full_state_types:
            # The client may have dropped what it stopped asking for, possibly between
            # two of our answers: the next answer is sent whatever its version.
            state.delivered_version = None
        elif state.answered:
            delivered = state.materialize()  # (with the subscription being replaced)
            # Newly wanted resources must be sent even if the client had them already
            # (it may have dropped them); forgetting is always safe in SotW, where these
            # types cannot be deleted anyway: at worst a resource is sent twice.
            if wildcard and not state.wildcard:
                delivered.clear()
            else:
                for name in names - state.names:
                    delivered.pop(name, None)
                if not wildcard:
                    for name in [n for n in delivered if n not in names]:
                        del delivered[name]
        state.wildcard = wildcard
        state.names = share_names(names)
        state.generation += 1
        return True

    # -- responses --------------------------------------------------------------------

    def responses(self, snapshot: Snapshot) -> list[Response]:
        """What to send now, in make-before-break order; marks it as sent."""
        out: list[Response] = []
        for state in self._in_push_order():
            if state.pending or state.requests == 0:
                continue
            resources = snapshot.get(state.type_url)
            if state.up_to_date(resources):
                continue
            full_state = state.type_url in self._full_state_types
            previous = state.previous()
            if previous is not None and state.answered:
                response = self._follow(state, previous, resources, full_state)
            elif full_state:
                response = self._full_state(state, resources)
            else:
                response = self._incremental(state, resources)
            state.checked = (resources, state.generation)
            if response is not None:
                out.append(response)
        return out

    def _follow(
        self, state: SotwTypeState, previous: ResourceSet, resources: ResourceSet, full_state: bool
    ) -> Response | None:
        """The fast path: the client holds the subscribed part of `previous`; apply the
        (shared) diff to it in O(changes)."""
        diff = DIFFS.get(previous, resources)
        covered = state.covered
        changed: list[Resource] = []
        for resource in diff.added:
            if state.wants(resource.name):
                covered ^= resource.token
                changed.append(resource)
        for before, resource in diff.modified:
            if state.wants(resource.name):
                covered ^= before.token ^ resource.token
                changed.append(resource)
        for before in diff.removed:
            if state.wants(before.name):
                covered ^= before.token
        if covered == state.covered:
            return None
        state.covered = covered
        version = version_string(covered)
        if full_state:
            # Every subscribed resource goes out again; absence means deletion.
            return self._send_full(state, desired(resources, state.wildcard, state.names), version)
        # Only what changed; possibly nothing, when resources were removed: the new
        # version still goes out (see `_incremental`). The client then holds the
        # subscribed part of the new set (removed ones are forgotten, to be sent again
        # if they come back): `delivered` stays derived.
        state.derive()
        state.delivered_version = version
        return self._send(state, version, changed)

    def _full_state(self, state: SotwTypeState, resources: ResourceSet) -> Response | None:
        chosen = desired(resources, state.wildcard, state.names)
        state.covered = chosen_xor(resources, chosen)
        version = version_string(state.covered)
        if state.delivered is None and state.client_version == version:
            state.delivered = {}  # (full-state types need the version only)
            state.delivered_version = version
            return None
        if state.delivered_version == version:
            return None
        # Also when the client unsubscribed everything: the empty answer moves its
        # version off resources it no longer holds (see `_incremental`).
        return self._send_full(state, chosen, version)

    def _incremental(self, state: SotwTypeState, resources: ResourceSet) -> Response | None:
        chosen = desired(resources, state.wildcard, state.names)
        state.covered = chosen_xor(resources, chosen)
        version = version_string(state.covered)
        if not state.answered:
            if state.client_version and state.client_version == version:
                state.derive()  # a reconnecting client holds this very content
                state.delivered_version = version
                return None
            if not chosen:
                # Nothing asked for exists yet: nothing to say.
                state.derive()
                state.delivered_version = state.client_version or version
                return None
            state.delivered = {}
        delivered = state.materialize()
        changed = [r for n, r in chosen.items() if delivered.get(n) != r.hash]
        # Whatever disappeared is forgotten (derive() below), so that it is sent again if
        # it comes back. (SotW cannot delete these types: their parents stop referring
        # to them.)
        state.derive()
        if not changed and version == state.delivered_version:
            return None
        # When nothing changed but the version did (a resource was removed or
        # unsubscribed), an empty response still carries the new version. It is a no-op
        # for the client, but keeps its version_info describing only resources it
        # holds, which is what makes skipping the resend on reconnect safe.
        state.delivered_version = version
        return self._send(state, version, changed)

    def _send_full(
        self, state: SotwTypeState, chosen: Mapping[str, Resource], version: str
    ) -> Response:
        # Full-state answers are compared by version alone: no per-name bookkeeping.
        state.delivered = {}
        state.delivered_version = version
        if isinstance(chosen, ResourceSet):
            # A wildcard answer is the whole set, whose body every stream shares.
            return self._respond(state, version, [chosen.sotw_body], tuple(chosen))
        return self._send(state, version, chosen.values())

    def _send(self, state: TypeState, version: str, chosen: Iterable[Resource]) -> Response:
        chosen = list(chosen)
        return self._respond(
            state, version, [r.sotw_chunk for r in chosen], tuple(r.name for r in chosen)
        )

    def _respond(
        self, state: TypeState, version: str, chunks: list[bytes], names: tuple[str, ...]
    ) -> Response:
        nonce = self._next_nonce()
        payload = wire.sotw_response(version, state.type_url, nonce, chunks, self._control_plane)
        self._mark_sent(state, version, nonce)
        return Response(state.type_url, version, nonce, payload, names)
