"""Ingress gateways: a `Gateway`'s listeners, with the HTTPRoutes, TCPRoutes and Ingresses
attached to it, become the gateway proxy's listeners and routes.

A gateway is a mesh member: its routes point at the same clusters as sidecars' routes,
with the same splits and policies applied. Which Ingresses a gateway serves: those of
class `gossamer` (or without a class), on every HTTP listener of every gateway.
Path stripping as in Kong: `gossamer.io/strip-path: "true"` (or `konghq.com/strip-path`)
removes the matched Prefix path before the request goes to the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from gossamer.api.kinds.gateway import Gateway, HTTPRoute, Listener, ParentReference, TCPRoute
from gossamer.api.kinds.ingress import HTTPIngressPath, Ingress, IngressBackend
from gossamer.controlplane.policies.httproute import backends, http_rule
from gossamer.controlplane.policies.targeting import PolicySet
from gossamer.controlplane.registry.model import RegistrySnapshot
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.outbound import Destination, virtual_host_of
from gossamer.controlplane.translate.routing import Backend, HttpMatch, HttpRule, Routing
from gossamer.controlplane.translate.snapshot import MeshSnapshot

STRIP_PATH_ANNOTATIONS = ("gossamer.io/strip-path", "konghq.com/strip-path")
INGRESS_CLASS = "gossamer"


@dataclass
class _HttpListener:
    listener: Listener
    # domain → (match, rule) pairs, merged across routes
    hosts: dict[str, list[tuple[HttpMatch, HttpRule]]] = field(default_factory=dict)


@dataclass
class GatewayConfig:
    listeners: dict[str, Message] = field(default_factory=dict)
    routes: dict[str, route_pb2.RouteConfiguration] = field(default_factory=dict)
    backends: set[Backend] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _attached(parent: ParentReference, route_ns: str, gw: Gateway, lst: Listener) -> bool:
    if not parent.is_gateway or parent.name != gw.name:
        return False
    if (parent.namespace or route_ns) != gw.namespace:
        return False
    if parent.section_name and parent.section_name != lst.name:
        return False
    if parent.port and parent.port != lst.port:
        return False
    allowed = lst.allowed_routes.namespaces
    return not (allowed is not None and allowed.from_ == "Same" and route_ns != gw.namespace)


def _domains(route_hosts: Iterable[str], lst: Listener) -> list[str]:
    hosts = list(route_hosts)
    if lst.hostname:
        hosts = [h for h in hosts if _host_matches(h, lst.hostname)] if hosts else [lst.hostname]
    return hosts or ["*"]


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) or host == pattern
    return host == pattern


def _with_ports(domains: Iterable[str], port: int) -> list[str]:
    # Clients send `Host: name:port` for a non-default port; match both forms.
    out: list[str] = []
    for d in domains:
        out.append(d)
        if d != "*" and not d.startswith("*"):
            out.append(f"{d}:{port}")
    return list(dict.fromkeys(out))


def _ingress_backend(
    backend: IngressBackend, namespace: str, registry: RegistrySnapshot
) -> Backend | None:
    svc_ref = backend.service
    if svc_ref is None:
        return None
    port = svc_ref.port.number
    if port is None:
        svc = registry.service(namespace, svc_ref.name)
        named = [p for p in svc.ports if p.name == svc_ref.port.name] if svc else []
        if not named:
            return None
        port = named[0].port
    return Backend(namespace, svc_ref.name, port)


def _ingress_rule(
    ing: Ingress, index: int, path: HTTPIngressPath, backend: Backend | None, strip: bool
) -> HttpRule:
    value = path.effective_path
    exact = path.match_type == "Exact"
    match = HttpMatch(
        path_kind="exact" if exact else "prefix",
        path=value if exact else (value.rstrip("/") or "/"),
    )
    return HttpRule(
        source=f"Ingress {ing.namespace}/{ing.name}",
        name=f"paths[{index}]",
        matches=(match,),
        backends=(backend,) if backend else (),
        prefix_rewrite="/" if strip and not exact and match.path != "/" else None,
        order=(5, ing.metadata.creation_timestamp or "", f"{ing.namespace}/{ing.name}", index),
    )


def translate_gateway(
    snapshot: MeshSnapshot,
    routing: Routing,
    namespace: str,
    name: str,
    address: str,
    policies: PolicySet | None = None,
    observe: Callable[[hcm_pb2.HttpConnectionManager], None] | None = None,
) -> GatewayConfig:
    """`observe`: adds tracing and access logs to each HTTP listener's manager."""
    out = GatewayConfig()
    gateway = next(
        (g for g in snapshot.of(Gateway) if (g.namespace, g.name) == (namespace, name)), None
    )
    if gateway is None:
        out.problems.append(f"Gateway {namespace}/{name} not found")
        return out
    registry = snapshot.registry
    http: dict[str, _HttpListener] = {}
    tcp: dict[str, list[Backend]] = {}
    for lst in gateway.spec.listeners:
        if lst.protocol == "HTTP":
            http[lst.name] = _HttpListener(lst)
        elif lst.protocol == "TCP":
            tcp[lst.name] = []
        else:
            out.problems.append(
                f"Gateway {namespace}/{name}: listener {lst.name} ({lst.protocol}) not served yet"
            )

    for route in snapshot.of(HTTPRoute):
        ref = f"HTTPRoute {route.namespace}/{route.name}"
        created = route.metadata.creation_timestamp or ""
        rules = [
            http_rule(
                route.namespace, ref, i, r, (0, created, f"{route.namespace}/{route.name}", i)
            )
            for i, r in enumerate(route.spec.rules)
        ]
        for parent in route.spec.parent_refs:
            for h in http.values():
                if not _attached(parent, route.namespace, gateway, h.listener):
                    continue
                for domain in _domains(route.spec.hostnames, h.listener):
                    pairs = h.hosts.setdefault(domain, [])
                    pairs.extend((m, r) for r in rules for m in r.matches)

    for ing in snapshot.of(Ingress):
        if ing.spec.ingress_class_name not in (None, INGRESS_CLASS):
            continue
        strip = any(
            ing.metadata.annotations.get(a, "").lower() == "true" for a in STRIP_PATH_ANNOTATIONS
        )
        index = 0
        for rule in ing.spec.rules:
            if rule.http is None:
                continue
            for path in rule.http.paths:
                backend = _ingress_backend(path.backend, ing.namespace, registry)
                hrule = _ingress_rule(ing, index, path, backend, strip)
                index += 1
                for h in http.values():
                    domain = rule.host or h.listener.hostname or "*"
                    h.hosts.setdefault(domain, []).extend((m, hrule) for m in hrule.matches)
        if ing.spec.default_backend is not None:
            backend = _ingress_backend(ing.spec.default_backend, ing.namespace, registry)
            dflt = HttpRule(
                source=f"Ingress {ing.namespace}/{ing.name}",
                name="defaultBackend",
                backends=(backend,) if backend else (),
                order=(6, "", f"{ing.namespace}/{ing.name}", 0),
            )
            for h in http.values():
                h.hosts.setdefault("*", []).extend((m, dflt) for m in dflt.matches)

    for tcp_route in snapshot.of(TCPRoute):
        refs = tcp_route.spec.rules[0].backend_refs
        for parent in tcp_route.spec.parent_refs:
            for lst in gateway.spec.listeners:
                if lst.name in tcp and _attached(parent, tcp_route.namespace, gateway, lst):
                    tcp[lst.name].extend(backends(tcp_route.namespace, refs))

    for h in http.values():
        lst = h.listener
        name_ = f"gateway:{lst.name}:{lst.port}"
        rc = route_pb2.RouteConfiguration(name=name_)
        rc.validate_clusters.value = False
        for domain in sorted(h.hosts, key=lambda d: (d == "*", d)):
            pairs = sorted(h.hosts[domain], key=lambda mr: (mr[0].precedence(), mr[1].order))
            pairs = [(m, _fill(r, routing)) for m, r in pairs]
            for _, r in pairs:
                out.backends.update(Backend(b.namespace, b.name, b.port) for b in r.backends)
            # Client-side policies per rule, toward the rule's backend (see Destination).
            dest = Destination("", "", 0, policies) if policies is not None else None
            rc.virtual_hosts.append(
                virtual_host_of(domain, _with_ports([domain], lst.port), pairs, dest)
            )
        out.routes[name_] = rc
        hcm = e.http_connection_manager(name_, rds=name_)
        if observe is not None:
            observe(hcm)
        out.listeners[name_] = e.http_listener(name_, address, lst.port, e.INBOUND, hcm)
    for lst in gateway.spec.listeners:
        if lst.name not in tcp:
            continue
        name_ = f"gateway:{lst.name}:{lst.port}"
        targets = tcp[lst.name]
        if not targets:
            out.problems.append(f"Gateway {namespace}/{name}: TCP listener {lst.name} has no route")
            continue
        targets = list(_resolve(targets, routing))
        out.backends.update(Backend(b.namespace, b.name, b.port) for b in targets)
        out.listeners[name_] = e.listener(
            name_,
            address,
            lst.port,
            e.INBOUND,
            e.tcp_proxy(name_, [(b.cluster, b.weight) for b in targets]),
            "envoy.filters.network.tcp_proxy",
        )
    return out


def _fill(rule: HttpRule, routing: Routing) -> HttpRule:
    """Resolve a gateway rule's backends as a mesh caller would: a missing port is the
    Service's only port, and a Service whose mesh traffic is split (an SMI TrafficSplit, or
    a match-everything HTTPRoute rule) is split the same way for gateway traffic."""
    from dataclasses import replace

    resolved = _resolve(rule.backends, routing)
    return rule if resolved == rule.backends else replace(rule, backends=resolved)


def _resolve(targets: Iterable[Backend], routing: Routing) -> tuple[Backend, ...]:
    out: list[Backend] = []
    for b in targets:
        if not b.port:
            ports = [p for (ns, n, p) in routing.ports if (ns, n) == (b.namespace, b.name)]
            if len(ports) != 1:
                continue
            b = Backend(b.namespace, b.name, ports[0], b.weight)
        split = _mesh_split(routing, b)
        if not split:
            out.append(b)
            continue
        total = sum(x.weight for x in split)
        for x in split:
            # Integer weights: scale so that small shares survive (Envoy sums any total).
            out.append(
                Backend(x.namespace, x.name, x.port, max(1, b.weight * x.weight * 100 // total))
            )
    return tuple(out)


def _mesh_split(routing: Routing, b: Backend) -> tuple[Backend, ...]:
    pr = routing.ports.get((b.namespace, b.name, b.port))
    if pr is None:
        return ()
    for match, rule in pr.routes:
        if (
            match.path_kind == "prefix"
            and match.path == "/"
            and not match.headers
            and not (match.query or match.method)
        ):
            if rule.name == "default" or not rule.backends:
                return ()
            return tuple(x for x in rule.backends if x.weight > 0)
    return ()
