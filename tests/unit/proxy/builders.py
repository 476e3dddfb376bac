"""Small constructors for the proxy's own config model, for tests that need no protobufs."""

from __future__ import annotations

import re
from collections.abc import Sequence

from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import route_table


def forward(*clusters: tuple[str, int] | str, **action: object) -> m.RouteAction:
    pairs = [(c, 1) if isinstance(c, str) else c for c in clusters]
    weighted = tuple(m.WeightedCluster(name, weight) for name, weight in pairs)
    cumulative, total = [], 0
    for _, weight in pairs:
        total += weight
        cumulative.append(total)
    return m.RouteAction(weighted, total, cumulative=tuple(cumulative), **action)  # type: ignore[arg-type]


def route(
    name: str,
    action: m.RouteAction | m.DirectResponse | m.Redirect,
    path: str = "/",
    kind: m.PathMatchKind = "prefix",
    headers: Sequence[m.HeaderMatch] = (),
    query: Sequence[m.QueryMatch] = (),
    case_sensitive: bool = True,
    grpc: bool = False,
    request_headers: m.HeaderMutation = m.HeaderMutation(),
    response_headers: m.HeaderMutation = m.HeaderMutation(),
) -> m.Route:
    regex = re.compile(path) if kind == "regex" else None
    match = m.RouteMatch(kind, path, regex, case_sensitive, tuple(headers), tuple(query), grpc)
    return m.Route(name, match, action, request_headers, response_headers)


def table(name: str, *hosts: tuple[str, Sequence[str], Sequence[m.Route]]) -> m.RouteTable:
    return route_table(
        name, [m.VirtualHost(vh, tuple(domains), tuple(routes)) for vh, domains, routes in hosts]
    )


def cluster(name: str, *ports: int, **fields: object) -> m.Cluster:
    eps = tuple(m.Endpoint("127.0.0.1", p) for p in ports)
    return m.Cluster(name, "static", eps, **fields)  # type: ignore[arg-type]


def http_listener(
    name: str, port: int, rt: m.RouteTable | None = None, rds: str | None = None
) -> m.Listener:
    hcm = m.HttpConnectionManager(name, route_config_name=rds, route_table=rt)
    return m.Listener(name, "127.0.0.1", port, "outbound", hcm)


def tcp_listener(name: str, port: int, *clusters: tuple[str, int]) -> m.Listener:
    weighted = tuple(m.WeightedCluster(n, w) for n, w in clusters)
    total = sum(w for _, w in clusters)
    cumulative, acc = [], 0
    for _, w in clusters:
        acc += w
        cumulative.append(acc)
    proxy = m.TcpProxy(name, weighted, total, cumulative=tuple(cumulative))
    return m.Listener(name, "127.0.0.1", port, "outbound", proxy)


def config(
    listeners: Sequence[m.Listener],
    clusters: Sequence[m.Cluster],
    routes: Sequence[m.RouteTable] = (),
) -> m.ProxyConfig:
    return m.ProxyConfig(
        listeners={x.name: x for x in listeners},
        routes={r.name: r for r in routes},
        clusters={c.name: c for c in clusters},
    )
