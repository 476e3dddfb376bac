"""The sidecar's ADS state machine, fed real xDS messages, for both ADS variants."""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2, route_pb2

from gossamer.controlplane.translate import envoy
from gossamer.proxy.config.compile import CLUSTER, ENDPOINT, LISTENER, ROUTE
from gossamer.proxy.config.state import AdsState, Request


def outbound(name: str = "out", port: int = 15001, rds: str = "routes") -> Any:
    hcm = envoy.http_connection_manager(name, rds=rds)
    return envoy.http_listener(name, "127.0.0.1", port, 2, hcm)


def routes(name: str, cluster: str) -> Any:
    action = route_components_pb2.RouteAction(cluster=cluster)
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix="/"), route=action
    )
    vh = route_components_pb2.VirtualHost(name="vh", domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[vh])


def endpoints(cluster: str, *ports: int) -> Any:
    return envoy.load_assignment(cluster, [("", [("127.0.0.1", p, True, None) for p in ports])])


def subscriptions(requests: list[Request]) -> dict[str, tuple[str, ...]]:
    return {r.type_url: r.names for r in requests if r.subscription_only}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sotw_first_config_waits_for_routes_and_endpoints() -> None:
    state = AdsState()
    out, config = state.on_response(CLUSTER, "c1", "n1", [("a", envoy.eds_cluster("a"))])
    assert config is None
    assert subscriptions(out) == {ENDPOINT: ("a",)}
    _, config = state.on_response(ENDPOINT, "e1", "n2", [("a", endpoints("a", 8080))])
    assert config is None  # no listeners yet: not ready
    out, config = state.on_response(LISTENER, "l1", "n3", [("out", outbound())])
    assert config is None  # its route table is missing: the first config is published whole
    assert subscriptions(out) == {ROUTE: ("routes",)}
    out, config = state.on_response(ROUTE, "r1", "n4", [("routes", routes("routes", "a"))])
    assert config is not None
    assert set(config.listeners) == {"out"}
    assert [e.port for e in config.clusters["a"].endpoints] == [8080]
    assert [(r.type_url, r.nonce, r.error) for r in out] == [(ROUTE, "n4", None)]


def test_delta_adds_replaces_and_removes_on_top_of_what_is_held() -> None:
    state = AdsState()
    state.on_delta_response(CLUSTER, "c1", "n1", [("a", "h1", envoy.eds_cluster("a"))], [])
    state.on_delta_response(ENDPOINT, "e1", "n2", [("a", "h2", endpoints("a", 8080))], [])
    state.on_delta_response(LISTENER, "l1", "n3", [("out", "h3", outbound())], [])
    _, config = state.on_delta_response(
        ROUTE, "r1", "n4", [("routes", "h4", routes("routes", "a"))], []
    )
    assert config is not None
    # A second cluster arrives alone: the first one stays (no state of the world here).
    out, config = state.on_delta_response(
        CLUSTER, "c2", "n5", [("b", "h5", envoy.eds_cluster("b"))], []
    )
    assert subscriptions(out) == {ENDPOINT: ("a", "b")}
    assert config is not None and set(config.clusters) == {"a", "b"}
    # Only b's assignment comes: a's endpoints are kept.
    _, config = state.on_delta_response(
        ENDPOINT, "e2", "n6", [("b", "h6", endpoints("b", 9090))], []
    )
    assert config is not None
    assert [e.port for e in config.clusters["a"].endpoints] == [8080]
    assert [e.port for e in config.clusters["b"].endpoints] == [9090]
    # Removing cluster a, still routed to: it drains (stays) until the route moves away.
    out, config = state.on_delta_response(CLUSTER, "c3", "n7", [], ["a"])
    assert subscriptions(out) == {ENDPOINT: ("b",)}
    assert config is not None and "a" in config.clusters
    _, config = state.on_delta_response(
        ROUTE, "r2", "n8", [("routes", "h7", routes("routes", "b"))], []
    )
    assert config is not None and set(config.clusters) == {"b"}
    assert state.resource_versions[CLUSTER] == {"b": "h5"}
    assert state.resource_versions[ROUTE] == {"routes": "h7"}


def test_delta_nack_keeps_the_previous_config_and_versions() -> None:
    state = AdsState()
    state.on_delta_response(
        CLUSTER, "c1", "n1", [("a", "h1", envoy.static_cluster("a", [("127.0.0.1", 1)]))], []
    )
    bad = envoy.static_cluster("b", [("127.0.0.1", 2)])
    bad.lb_policy = 7  # CLUSTER_PROVIDED: not something the sidecar does
    out, config = state.on_delta_response(CLUSTER, "c2", "n2", [("b", "h2", bad)], [])
    assert config is None
    assert len(out) == 1 and out[0].error and out[0].nonce == "n2"
    assert "lb_policy" in out[0].error or "lbPolicy" in out[0].error
    assert state.resource_versions[CLUSTER] == {"a": "h1"}
    assert set(state.accepted[CLUSTER]) == {"a"}


def test_a_newer_listener_update_supersedes_a_warming_one() -> None:
    clock = Clock()
    state = AdsState(clock=clock, warm_timeout=5.0)
    state.on_response(CLUSTER, "c1", "n1", [("a", envoy.static_cluster("a", [("127.0.0.1", 1)]))])
    state.on_response(LISTENER, "l1", "n2", [("out", outbound(rds="routes"))])
    state.on_response(ROUTE, "r1", "n3", [("routes", routes("routes", "a"))])
    # Version 2 needs cluster x, which never comes; version 3 does not.
    state.on_response(ROUTE, "r2", "n4", [("routes", routes("routes", "x"))])
    assert state.held
    _, config = state.on_response(ROUTE, "r3", "n5", [("routes", routes("routes", "a"))])
    assert config is not None and state.versions[ROUTE] == "r3"
    clock.now = 10.0
    requests, config = state.tick()
    assert requests == [] and config is None  # the stale warming update is gone
    assert state.versions[ROUTE] == "r3"


def test_reconnect_resubscribes_to_what_it_holds() -> None:
    state = AdsState()
    state.on_delta_response(CLUSTER, "c1", "n1", [("a", "h1", envoy.eds_cluster("a"))], [])
    first = state.initial_requests()
    assert {(r.type_url, r.names) for r in first} == {
        (CLUSTER, ()),
        (LISTENER, ()),
        (ENDPOINT, ("a",)),
    }
