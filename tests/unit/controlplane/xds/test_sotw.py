"""State-of-the-world protocol state, driven request by request without sockets."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from gossamer.controlplane.xds import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, Snapshot
from gossamer.controlplane.xds.protocol import (
    Acked,
    Nacked,
    Response,
    StaleRequest,
    SubscriptionChanged,
)
from gossamer.controlplane.xds.resources import content_version
from gossamer.controlplane.xds.sotw import SotwState
from tests.unit.controlplane.xds import envoy_resources as er


def snapshot(
    route_cluster: str = "a", b_port: int = 2, extra_clusters: Iterable[str] = ()
) -> Snapshot:
    names = ["a", "b", *extra_clusters]
    return Snapshot(
        listeners=[er.listener("greeter", "r")],
        routes=[er.route("r", "greeter", route_cluster)],
        clusters=[er.cluster(n) for n in names],
        endpoints=[er.endpoints("a", 1), er.endpoints("b", b_port)]
        + [er.endpoints(n, 9) for n in extra_clusters],
        secrets=[er.secret("s")],
    )


def req(
    type_url: str,
    names: Iterable[str] = (),
    version: str = "",
    nonce: str = "",
    error: str | None = None,
) -> discovery_pb2.DiscoveryRequest:
    out = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=list(names), version_info=version, response_nonce=nonce
    )
    if error is not None:
        out.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return out


def ack(response: Response, names: Iterable[str] = ()) -> discovery_pb2.DiscoveryRequest:
    return req(response.type_url, names, response.version, response.nonce)


def parse(response: Response) -> discovery_pb2.DiscoveryResponse:
    return discovery_pb2.DiscoveryResponse.FromString(response.payload)


def by_type(responses: list[Response]) -> dict[str, Response]:
    return {r.type_url: r for r in responses}


def envoy_like(state: SotwState, snap: Snapshot) -> dict[str, Response]:
    """Subscribe like Envoy (LDS/CDS wildcard, named RDS/EDS/SDS) and ACK everything."""
    for request in (
        req(LISTENER),
        req(CLUSTER),
        req(ENDPOINT, ["a", "b"]),
        req(ROUTE, ["r"]),
        req(SECRET, ["s"]),
    ):
        state.receive(request)
    sent = by_type(state.responses(snap))
    names = {ENDPOINT: ["a", "b"], ROUTE: ["r"], SECRET: ["s"]}
    for response in sent.values():
        events = state.receive(ack(response, names.get(response.type_url, ())))
        assert Acked(response.type_url, response.version, response.nonce) in events
    return sent


def test_first_answer_in_make_before_break_order() -> None:
    state = SotwState()
    snap = snapshot()
    for request in (
        req(LISTENER),
        req(ROUTE, ["r"]),
        req(SECRET, ["s"]),
        req(ENDPOINT, ["a", "b"]),
        req(CLUSTER),
    ):
        state.receive(request)
    sent = state.responses(snap)
    assert [r.type_url for r in sent] == [CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET]
    clusters = parse(sent[0])
    assert clusters.version_info == snap.version(CLUSTER)
    assert len(clusters.resources) == 2
    assert sent[0].resources == ("a", "b")
    assert len({r.nonce for r in sent}) == 5


def test_first_request_reports_subscription() -> None:
    state = SotwState()
    assert state.receive(req(LISTENER)) == [SubscriptionChanged(LISTENER, True, frozenset())]
    assert state.receive(req(ENDPOINT, ["a"])) == [
        SubscriptionChanged(ENDPOINT, False, frozenset({"a"}))
    ]
    # A non-wildcard type asked with no names is still reported (it wants the type).
    assert state.receive(req(ROUTE)) == [SubscriptionChanged(ROUTE, False, frozenset())]


def test_acked_config_is_not_resent() -> None:
    state = SotwState()
    snap = snapshot()
    envoy_like(state, snap)
    assert state.responses(snap) == []
    # Equal content in new objects is not a change either.
    assert state.responses(snapshot()) == []
    status = state.status()[CLUSTER]
    assert status.acked_version == snap.version(CLUSTER)
    assert not status.pending


def test_change_pushes_only_what_changed() -> None:
    state = SotwState()
    envoy_like(state, snapshot())
    sent = state.responses(snapshot(route_cluster="b"))
    assert [r.type_url for r in sent] == [ROUTE]
    state.receive(ack(sent[0], ["r"]))
    # One endpoint group changed: EDS carries only it; CDS is untouched.
    sent = state.responses(snapshot(route_cluster="b", b_port=3))
    assert [(r.type_url, r.resources) for r in sent] == [(ENDPOINT, ("b",))]


def test_full_state_types_carry_everything() -> None:
    state = SotwState()
    envoy_like(state, snapshot())
    # EDS is subscribed to a and b only, so only CDS answers, with all three clusters.
    (sent,) = state.responses(snapshot(extra_clusters=["c"]))
    assert sent.type_url == CLUSTER
    assert sent.resources == ("a", "b", "c")


def test_one_unacknowledged_response_per_type() -> None:
    state = SotwState()
    state.receive(req(CLUSTER))
    (first,) = state.responses(snapshot())
    assert state.responses(snapshot(extra_clusters=["c"])) == []  # waits for the ACK
    state.receive(ack(first))
    (second,) = state.responses(snapshot(extra_clusters=["c"]))
    assert second.resources == ("a", "b", "c")


def test_nack_is_recorded_and_not_resent() -> None:
    state = SotwState(clock=lambda: 1234.0)
    good = snapshot()
    sent = envoy_like(state, good)
    bad = snapshot(route_cluster="nowhere")
    (update,) = state.responses(bad)
    events = state.receive(
        req(ROUTE, ["r"], sent[ROUTE].version, update.nonce, error="route: unknown cluster")
    )
    assert [type(e) for e in events] == [Nacked]
    status = state.status()[ROUTE]
    assert status.acked_version == sent[ROUTE].version  # the last good one
    assert status.last_nack is not None
    assert status.last_nack.message == "route: unknown cluster"
    assert status.last_nack.rejected_version == update.version
    assert status.last_nack.nonce == update.nonce
    assert status.last_nack.client_version == sent[ROUTE].version
    assert status.last_nack.at == 1234.0
    # The rejected content is not pushed again, even on an unrelated new snapshot.
    assert state.responses(bad) == []
    assert state.responses(snapshot(route_cluster="nowhere")) == []
    # A fix (here: a rollback to the good content) is.
    (fix,) = state.responses(good)
    assert fix.version == sent[ROUTE].version
    state.receive(ack(fix, ["r"]))
    assert state.status()[ROUTE].acked_version == sent[ROUTE].version


def test_stale_nonce_is_neither_ack_nor_nack_but_updates_subscription() -> None:
    state = SotwState()
    snap = snapshot(extra_clusters=["c"])
    state.receive(req(ENDPOINT, ["a"]))
    (first,) = state.responses(snap)
    state.receive(ack(first, ["a"]))
    (second,) = state.responses(
        snapshot(b_port=3, extra_clusters=["c"]).replace(
            ENDPOINT, [er.endpoints("a", 5), er.endpoints("c", 9)]
        )
    )
    assert second.resources == ("a",)
    # The client had not seen `second` yet: its request carries the first nonce.
    events = state.receive(req(ENDPOINT, ["a", "c"], first.version, first.nonce, error="late"))
    assert events == [
        StaleRequest(ENDPOINT, first.nonce),
        SubscriptionChanged(ENDPOINT, False, frozenset({"a", "c"})),
    ]
    status = state.status()[ENDPOINT]
    assert status.last_nack is None
    assert status.pending
    assert state.responses(snap) == []  # still waiting for the answer to `second`
    state.receive(ack(second, ["a", "c"]))
    (third,) = state.responses(snap)
    # "c" is newly wanted; "a" went back to port 1 in `snap`.
    assert set(third.resources) == {"a", "c"}


def test_reconnect_with_current_version_is_not_answered() -> None:
    first = SotwState()
    sent = envoy_like(first, snapshot())
    again = SotwState()
    again.receive(req(CLUSTER, version=sent[CLUSTER].version))
    again.receive(req(ENDPOINT, ["a", "b"], version=sent[ENDPOINT].version))
    again.receive(req(LISTENER, version="an-old-version"))
    assert [r.type_url for r in again.responses(snapshot())] == [LISTENER]
    assert again.status()[CLUSTER].acked_version == sent[CLUSTER].version
    # Named subscription to a subset: its version is the subset's content hash.
    third = SotwState()
    third.receive(req(ENDPOINT, ["a"], version=sent[ENDPOINT].version))
    (full,) = third.responses(snapshot())
    assert full.resources == ("a",)


def test_legacy_wildcard_rules() -> None:
    """The four steps of the spec's example ("How the client specifies what to return")."""
    state = SotwState()
    snap = Snapshot(listeners=[er.listener("A", "r"), er.listener("B", "r")])
    state.receive(req(LISTENER))
    (one,) = state.responses(snap)
    assert one.resources == ("A", "B")
    state.receive(ack(one, ["*", "A"]))
    assert state.subscription(LISTENER) == (True, frozenset({"A"}))
    # "A" is newly requested: resent, although the client got it through the wildcard.
    (again,) = state.responses(snap)
    assert again.resources == ("A", "B")
    state.receive(ack(again, ["A"]))
    assert state.subscription(LISTENER) == (False, frozenset({"A"}))
    (two,) = state.responses(snap)
    assert two.resources == ("A",)  # B is deleted on the client
    state.receive(ack(two))
    assert state.subscription(LISTENER) == (False, frozenset())  # not a wildcard any more
    # Answered empty, so that the client's version stops claiming "A".
    (three,) = state.responses(snap)
    assert three.resources == ()
    state.receive(ack(three))
    assert state.responses(snap) == []


def test_named_full_state_subscription_of_a_missing_resource_is_answered_empty() -> None:
    # A gRPC client asks LDS for its target; an empty answer says "does not exist".
    state = SotwState()
    state.receive(req(LISTENER, ["unknown"]))
    (response,) = state.responses(snapshot())
    assert response.resources == ()
    assert parse(response).type_url == LISTENER


def test_named_types_wait_for_their_resources() -> None:
    state = SotwState()
    state.receive(req(ENDPOINT, ["later"]))
    assert state.responses(snapshot()) == []
    (response,) = state.responses(snapshot(extra_clusters=["later"]))
    assert response.resources == ("later",)


def test_resubscribing_resends() -> None:
    state = SotwState()
    envoy_like(state, snapshot())
    state.receive(req(ENDPOINT, ["a"], nonce=state.status()[ENDPOINT].sent_nonce or ""))
    # No resource to send, only the version of what is still subscribed.
    (bump,) = state.responses(snapshot())
    assert bump.resources == ()
    assert bump.version == content_version([snapshot().get(ENDPOINT)["a"]])
    state.receive(ack(bump, ["a"]))
    state.receive(req(ENDPOINT, ["a", "b"], bump.version, bump.nonce))
    (again,) = state.responses(snapshot())
    assert again.resources == ("b",)


def test_removed_resource_moves_the_version() -> None:
    state = SotwState()
    state.receive(req(ENDPOINT, ["a", "b"]))
    (first,) = state.responses(snapshot(extra_clusters=["c"]))
    state.receive(ack(first, ["a", "b"]))
    without_b = snapshot().replace(ENDPOINT, [er.endpoints("a", 1)])
    (bump,) = state.responses(without_b)
    assert (bump.resources, bump.version) == ((), without_b.version(ENDPOINT))
    state.receive(ack(bump, ["a", "b"]))
    # b comes back: sent again, although unchanged.
    (back,) = state.responses(snapshot())
    assert back.resources == ("b",)


def test_nonce_from_another_stream_is_a_fresh_request() -> None:
    state = SotwState()
    events = state.receive(req(CLUSTER, nonce="42"))
    assert not any(isinstance(e, StaleRequest) for e in events)
    assert len(state.responses(snapshot())) == 1
