"""Incremental protocol state, driven request by request without sockets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from gossamer.controlplane.xds import CLUSTER, ENDPOINT, LISTENER, Snapshot
from gossamer.controlplane.xds.delta import DeltaState
from gossamer.controlplane.xds.protocol import (
    Acked,
    Nacked,
    Response,
    StaleRequest,
    SubscriptionChanged,
)
from tests.unit.controlplane.xds import envoy_resources as er


def snap(clusters: Mapping[str, int]) -> Snapshot:
    """Clusters and their endpoints; the port tells versions apart."""
    return Snapshot(
        clusters=[er.cluster(n) for n in clusters],
        endpoints=[er.endpoints(n, port) for n, port in clusters.items()],
    )


def req(
    type_url: str,
    subscribe: Iterable[str] = (),
    unsubscribe: Iterable[str] = (),
    nonce: str = "",
    initial: Mapping[str, str] | None = None,
    error: str | None = None,
) -> discovery_pb2.DeltaDiscoveryRequest:
    out = discovery_pb2.DeltaDiscoveryRequest(
        type_url=type_url,
        resource_names_subscribe=list(subscribe),
        resource_names_unsubscribe=list(unsubscribe),
        response_nonce=nonce,
        initial_resource_versions=dict(initial or {}),
    )
    if error is not None:
        out.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return out


def ack(response: Response) -> discovery_pb2.DeltaDiscoveryRequest:
    return req(response.type_url, nonce=response.nonce)


def parse(response: Response) -> discovery_pb2.DeltaDiscoveryResponse:
    return discovery_pb2.DeltaDiscoveryResponse.FromString(response.payload)


def one(state: DeltaState, snapshot: Snapshot) -> Response:
    (response,) = state.responses(snapshot)
    return response


def test_legacy_wildcard_updates_and_removals() -> None:
    state = DeltaState()
    assert state.receive(req(CLUSTER)) == [SubscriptionChanged(CLUSTER, True, frozenset())]
    first = one(state, snap({"a": 1, "b": 1}))
    parsed = parse(first)
    assert {(r.name, r.version) for r in parsed.resources} == {
        (n, snap({"a": 1, "b": 1}).get(CLUSTER)[n].hash) for n in ("a", "b")
    }
    assert state.receive(ack(first)) == [Acked(CLUSTER, first.version, first.nonce)]
    assert state.responses(snap({"a": 1, "b": 1})) == []
    # Endpoints changed only: no cluster changed, nothing to send on CDS.
    assert state.responses(snap({"a": 2, "b": 1})) == []
    added = one(state, snap({"a": 1, "b": 1, "c": 1}))
    assert (added.resources, added.removed) == (("c",), ())
    state.receive(ack(added))
    removed = one(state, snap({"a": 1, "c": 1}))
    assert (removed.resources, removed.removed) == ((), ("b",))
    assert list(parse(removed).removed_resources) == ["b"]


def test_explicit_subscriptions_and_missing_names() -> None:
    state = DeltaState()
    state.receive(req(ENDPOINT, ["a", "ghost"]))
    first = one(state, snap({"a": 1, "b": 1}))
    assert (first.resources, first.removed) == (("a",), ("ghost",))  # "does not exist"
    state.receive(ack(first))
    assert state.responses(snap({"a": 1, "b": 2})) == []  # b is not wanted
    assert state.responses(snap({"a": 1, "b": 3})) == []  # ghost is not reported twice
    appeared = one(state, snap({"a": 1, "ghost": 1}))
    assert appeared.resources == ("ghost",)
    state.receive(ack(appeared))
    # Unsubscribing needs no answer, and the name is no longer followed.
    state.receive(req(ENDPOINT, unsubscribe=["a"]))
    assert state.responses(snap({"a": 9, "ghost": 1})) == []


def test_subscribing_again_resends() -> None:
    state = DeltaState()
    state.receive(req(ENDPOINT, ["a"]))
    state.receive(ack(one(state, snap({"a": 1}))))
    state.receive(req(ENDPOINT, ["a"]))
    assert one(state, snap({"a": 1})).resources == ("a",)


def test_reconnect_with_initial_resource_versions() -> None:
    current = snap({"a": 1, "b": 2, "c": 1})
    held = {
        "a": current.get(CLUSTER)["a"].hash,  # up to date
        "b": "an-old-hash",  # outdated
        "gone": "whatever",  # deleted meanwhile
    }
    state = DeltaState()
    state.receive(req(CLUSTER, ["*"], initial=held))
    response = one(state, current)
    assert sorted(response.resources) == ["b", "c"]
    assert response.removed == ("gone",)


def test_stale_nonce_still_changes_subscriptions() -> None:
    state = DeltaState()
    state.receive(req(ENDPOINT, ["a"]))
    first = one(state, snap({"a": 1, "b": 1}))
    state.receive(ack(first))
    second = one(state, snap({"a": 2, "b": 1}))
    # Sent before the client saw `second`: stale, but the new name counts.
    events = state.receive(req(ENDPOINT, ["b"], nonce=first.nonce))
    assert events == [
        StaleRequest(ENDPOINT, first.nonce),
        SubscriptionChanged(ENDPOINT, False, frozenset({"a", "b"})),
    ]
    assert state.status()[ENDPOINT].pending
    assert state.responses(snap({"a": 2, "b": 1})) == []  # waits for the ACK of `second`
    state.receive(ack(second))
    assert one(state, snap({"a": 2, "b": 1})).resources == ("b",)


def test_nack_is_recorded_and_not_resent() -> None:
    state = DeltaState(clock=lambda: 99.0)
    state.receive(req(CLUSTER))
    first = one(state, snap({"a": 1}))
    state.receive(ack(first))
    bad = snap({"a": 1, "bad": 1})
    update = one(state, bad)
    events = state.receive(req(CLUSTER, nonce=update.nonce, error="cluster bad: no endpoints"))
    assert [type(e) for e in events] == [Nacked]
    status = state.status()[CLUSTER]
    assert status.acked_version == first.version
    assert status.last_nack is not None
    assert (status.last_nack.message, status.last_nack.at) == ("cluster bad: no endpoints", 99.0)
    assert status.last_nack.rejected_version == update.version == bad.version(CLUSTER)
    assert state.responses(bad) == []
    fixed = one(state, snap({"a": 1}))
    assert fixed.removed == ("bad",)


def test_unsubscribing_a_name_also_covered_by_the_wildcard() -> None:
    state = DeltaState()
    state.receive(req(CLUSTER, ["*", "a", "ghost"]))
    first = one(state, snap({"a": 1, "b": 1}))
    assert sorted(first.resources) == ["a", "b"]
    assert first.removed == ("ghost",)
    state.receive(ack(first))
    # The client cannot tell whether "a" is still wanted through "*": say it again.
    state.receive(req(CLUSTER, unsubscribe=["a", "ghost"]))
    again = one(state, snap({"a": 1, "b": 1}))
    assert (again.resources, again.removed) == (("a",), ("ghost",))


def test_explicit_wildcard_subscribe_and_unsubscribe() -> None:
    state = DeltaState()
    assert state.receive(req(LISTENER, ["greeter"])) == [
        SubscriptionChanged(LISTENER, False, frozenset({"greeter"}))
    ]
    listeners = Snapshot(listeners=[er.listener("greeter", "r"), er.listener("other", "r")])
    first = one(state, listeners)
    assert first.resources == ("greeter",)
    state.receive(ack(first))
    state.receive(req(LISTENER, ["*"]))
    second = one(state, listeners)
    assert second.resources == ("other",)
    state.receive(ack(second))
    state.receive(req(LISTENER, unsubscribe=["*"]))
    assert state.subscription(LISTENER) == (False, frozenset({"greeter"}))
    # "other" is no longer followed: its change is not sent.
    assert state.responses(Snapshot(listeners=[er.listener("greeter", "r")])) == []
