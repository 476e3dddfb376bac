"""Mesh routing, before it becomes Envoy config: per service port, ordered rules.

Route sources (HTTPRoute, GRPCRoute, TCPRoute, TrafficSplit — one folder each under
controlplane/policies/) contribute rules for a service's port; this module merges them in
Gateway API precedence order and adds the default rule (the service itself). The result
is mesh-wide: every proxy's outbound routes are cut from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from gossamer.controlplane.registry.model import ServiceInfo, ServicePortInfo
from gossamer.controlplane.translate.snapshot import MeshSnapshot

MatchKind = Literal["exact", "prefix", "regex", "present"]
PathKind = Literal["exact", "prefix", "regex"]


def cluster_name(namespace: str, name: str, port: int) -> str:
    return f"{name}.{namespace}:{port}"


@dataclass(frozen=True)
class Backend:
    namespace: str
    name: str
    port: int
    weight: int = 1

    @property
    def cluster(self) -> str:
        return cluster_name(self.namespace, self.name, self.port)


@dataclass(frozen=True)
class HeaderOps:
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpMatch:
    path_kind: PathKind = "prefix"
    path: str = "/"
    headers: tuple[tuple[str, MatchKind, str], ...] = ()
    query: tuple[tuple[str, MatchKind, str], ...] = ()
    method: str | None = None
    grpc: bool = False

    def precedence(self) -> tuple[int, int, int, int, int]:
        """Gateway API: exact path, then longest prefix, then method, headers, query."""
        kind = {"exact": 0, "regex": 1, "prefix": 2}[self.path_kind]
        return (
            kind,
            -len(self.path),
            0 if self.method else 1,
            -len(self.headers),
            -len(self.query),
        )


EVERYTHING = HttpMatch()


@dataclass(frozen=True)
class Redirect:
    status: int = 302
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    full_path: str | None = None
    prefix: str | None = None


@dataclass(frozen=True)
class HttpRule:
    source: str  # the resource, e.g. "HTTPRoute default/canary"
    name: str  # the rule, e.g. "rules[0]" or its name
    matches: tuple[HttpMatch, ...] = (EVERYTHING,)
    backends: tuple[Backend, ...] = ()
    request_headers: HeaderOps = HeaderOps()
    response_headers: HeaderOps = HeaderOps()
    prefix_rewrite: str | None = None  # replaces the matched PathPrefix
    full_path_rewrite: str | None = None
    host_rewrite: str | None = None
    redirect: Redirect | None = None
    timeout: float | None = None
    # Tie-break among equal precedence: source kind, age, namespace/name, rule index.
    order: tuple[int, str, str, int] = (9, "", "", 0)

    @property
    def catch_all(self) -> bool:
        return any(m == EVERYTHING for m in self.matches)


@dataclass(frozen=True)
class Contribution:
    """Rules one resource adds to one service port (or to all its ports: port None)."""

    namespace: str
    service: str
    port: int | None
    http: tuple[HttpRule, ...] = ()
    tcp: tuple[Backend, ...] | None = None  # L4 split for the port
    tcp_order: tuple[int, str, str, int] = (9, "", "", 0)
    source: str = ""


@dataclass(frozen=True)
class PortRoutes:
    service: ServiceInfo
    port: ServicePortInfo
    # Expanded (match, rule) pairs in the order they must be tried; the default is last.
    routes: tuple[tuple[HttpMatch, HttpRule], ...]
    tcp: tuple[Backend, ...]
    sources: tuple[str, ...] = ()

    @property
    def backends(self) -> set[Backend]:
        out = {b for _, rule in self.routes for b in rule.backends}
        return out | set(self.tcp)


@dataclass(frozen=True)
class Routing:
    ports: Mapping[tuple[str, str, int], PortRoutes]
    problems: tuple[str, ...] = field(default_factory=tuple)

    def for_service(self, namespace: str, name: str) -> list[PortRoutes]:
        return [pr for (ns, n, _), pr in self.ports.items() if (ns, n) == (namespace, name)]

    @property
    def clusters(self) -> set[Backend]:
        """Every (service, port) some route sends to, at weight 1: one cluster each."""
        out: set[Backend] = set()
        for pr in self.ports.values():
            out |= {Backend(b.namespace, b.name, b.port) for b in pr.backends}
        return out


def compute_routing(snapshot: MeshSnapshot) -> Routing:
    from gossamer.controlplane.policies import ROUTE_SOURCES

    problems: list[str] = []
    by_port: dict[tuple[str, str, int], list[Contribution]] = {}
    for source in ROUTE_SOURCES:
        for contribution in source.contributions(snapshot, problems):
            svc = snapshot.registry.service(contribution.namespace, contribution.service)
            if svc is None:
                problems.append(
                    f"{contribution.source}: parent Service "
                    f"{contribution.namespace}/{contribution.service} not found"
                )
                continue
            ports = [p.port for p in svc.ports]
            if contribution.port is not None:
                if contribution.port not in ports:
                    problems.append(
                        f"{contribution.source}: Service {svc.namespace}/{svc.name} has no port "
                        f"{contribution.port}"
                    )
                    continue
                ports = [contribution.port]
            for port in ports:
                by_port.setdefault((svc.namespace, svc.name, port), []).append(contribution)

    result: dict[tuple[str, str, int], PortRoutes] = {}
    for svc in snapshot.registry.services.values():
        for sport in svc.ports:
            key = (svc.namespace, svc.name, sport.port)
            result[key] = _port_routes(svc, sport, by_port.get(key, []))
    return Routing(result, tuple(problems))


def _port_routes(
    svc: ServiceInfo, sport: ServicePortInfo, contributions: Iterable[Contribution]
) -> PortRoutes:
    default = HttpRule(
        source=f"Service {svc.namespace}/{svc.name}",
        name="default",
        backends=(Backend(svc.namespace, svc.name, sport.port),),
        order=(99, "", "", 0),
    )
    rules: list[HttpRule] = [default]
    tcp: tuple[Backend, ...] = default.backends
    tcp_order: tuple[int, str, str, int] = default.order
    sources: list[str] = []
    for c in contributions:
        rules.extend(_with_port(r, sport.port) for r in c.http)
        if c.tcp is not None and c.tcp_order < tcp_order:
            tcp, tcp_order = tuple(_fill_port(b, sport.port) for b in c.tcp), c.tcp_order
        if c.source and c.source not in sources:
            sources.append(c.source)
    pairs = [(match, rule) for rule in rules for match in rule.matches]
    pairs.sort(key=lambda mr: (mr[0].precedence(), mr[1].order))
    if tcp_order == default.order:
        # No L4 route: a catch-all HTTP rule (an SMI split, or a match-everything rule)
        # decides where connections go when the port is carried as TCP.
        for match, rule in pairs:
            if match == EVERYTHING and rule.backends:
                tcp = rule.backends
                break
    return PortRoutes(svc, sport, tuple(pairs), tcp, tuple(sources))


def _fill_port(backend: Backend, port: int) -> Backend:
    return (
        backend if backend.port else Backend(backend.namespace, backend.name, port, backend.weight)
    )


def _with_port(rule: HttpRule, port: int) -> HttpRule:
    if all(b.port for b in rule.backends):
        return rule
    from dataclasses import replace

    return replace(rule, backends=tuple(_fill_port(b, port) for b in rule.backends))
