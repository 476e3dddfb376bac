"""Outbound config shared by many proxies: clusters, endpoints, and route tables.

Cut from the mesh-wide Routing once per snapshot and reused by every proxy it fits (the
outbound route table differs only by the caller's namespace, for short names).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.type.matcher.v3 import regex_pb2

from gossamer.api.kinds.policies import (
    CircuitBreakerConf,
    CircuitBreakerPolicy,
    HealthCheckConf,
    HealthCheckPolicy,
    LoadBalancerConf,
    LoadBalancerPolicy,
    RetryConf,
    RetryPolicy,
    TimeoutConf,
    TimeoutPolicy,
)
from gossamer.controlplane.policies import (
    circuitbreakerpolicy,
    healthcheckpolicy,
    loadbalancerpolicy,
    retrypolicy,
    timeoutpolicy,
)
from gossamer.controlplane.policies.targeting import PolicySet
from gossamer.controlplane.registry.model import EndpointInfo, RegistrySnapshot, ServiceInfo
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.mtls import (
    ALPN_HTTP,
    ALPN_TCP,
    SOCKET_MATCH,
    Mtls,
    secure_cluster,
    workload_identity,
)
from gossamer.controlplane.translate.routing import (
    EVERYTHING,
    Backend,
    HttpMatch,
    HttpRule,
    PortRoutes,
    Redirect,
    Routing,
)

MISSING_CLUSTER_PREFIX = "missing:"
L4_PROTOCOLS = frozenset({"tcp"})


def service_domains(svc: ServiceInfo, port: int, caller_namespace: str) -> list[str]:
    """Every name an app may use for the service's port, with and without the port."""
    names = [f"{svc.name}.{svc.namespace}", f"{svc.name}.{svc.namespace}.svc", svc.fqdn]
    if svc.namespace == caller_namespace:
        names.insert(0, svc.name)
    out = [f"{n}:{port}" for n in names]
    # Without a port, a name means the service's port 80, or its only port.
    if port == 80 or len(svc.ports) == 1:
        out += names
    return out


# --- clusters and endpoints ----------------------------------------------------------------


def _protocol(backend: Backend, registry: RegistrySnapshot) -> str:
    svc = registry.service(backend.namespace, backend.name)
    if svc is not None and (sport := svc.port(backend.port)) is not None:
        return sport.protocol
    return "http"


NO_POLICIES = PolicySet()


@dataclass(frozen=True)
class ClusterConfs:
    """The client-side policy confs that shape one destination's cluster."""

    breaker: CircuitBreakerConf | None = None
    health: HealthCheckConf | None = None
    lb: LoadBalancerConf | None = None
    timeout: TimeoutConf | None = None
    zone: str | None = None  # the caller's, for locality-aware balancing

    @classmethod
    def of(cls, backend: Backend, policies: PolicySet) -> ClusterConfs:
        if not policies.policies:
            return NO_CONFS
        dest = (backend.namespace, backend.name, backend.port)
        return cls(
            policies.to_conf(CircuitBreakerPolicy, CircuitBreakerConf, *dest),
            policies.to_conf(HealthCheckPolicy, HealthCheckConf, *dest),
            policies.to_conf(LoadBalancerPolicy, LoadBalancerConf, *dest),
            policies.to_conf(TimeoutPolicy, TimeoutConf, *dest),
            policies.zone,
        )

    def fingerprint(self) -> tuple[str, ...]:
        confs = tuple(
            c.model_dump_json() if c is not None else ""
            for c in (self.breaker, self.health, self.lb, self.timeout)
        )
        zone = self.zone if self.lb is not None and self.zone is not None else "*"
        return (*confs, zone)


NO_CONFS = ClusterConfs()


def identities(backend: Backend, registry: RegistrySnapshot, mtls: Mtls | None) -> tuple[str, ...]:
    """The SPIFFE IDs a caller accepts from the backend's sidecar-backed endpoints."""
    if mtls is None or not mtls.enabled:
        return ()
    svc = registry.service(backend.namespace, backend.name)
    eps = registry.endpoints(svc, backend.port) if svc else ()
    return tuple(
        sorted(
            {
                workload_identity(mtls.trust_domain, ep.namespace, ep.service_account)
                for ep in eps
                if ep.meshed
            }
        )
    )


def cluster_key(
    backend: Backend,
    registry: RegistrySnapshot,
    mtls: Mtls | None = None,
    confs: ClusterConfs = NO_CONFS,
) -> tuple[object, ...]:
    """Everything cluster_for() depends on."""
    return (
        backend.cluster,
        _protocol(backend, registry),
        mtls.enabled if mtls else False,
        identities(backend, registry, mtls),
        *confs.fingerprint(),
    )


def endpoints_key(
    backend: Backend, registry: RegistrySnapshot, mtls: Mtls | None = None
) -> tuple[object, ...]:
    """Everything endpoints_for() depends on."""
    svc = registry.service(backend.namespace, backend.name)
    eps = registry.endpoints(svc, backend.port) if svc else ()
    return (
        backend.cluster,
        mtls.enabled if mtls else False,
        *(
            (
                ep.address,
                ep.port,
                ep.healthy,
                ep.zone,
                ep.workload,
                tuple(sorted(ep.labels.items())),
                ep.meshed,
            )
            for ep in eps
        ),
    )


def cluster_for(
    backend: Backend,
    registry: RegistrySnapshot,
    mtls: Mtls | None = None,
    confs: ClusterConfs = NO_CONFS,
) -> cluster_pb2.Cluster:
    protocol = _protocol(backend, registry)
    meta = {"service": backend.name, "namespace": backend.namespace, "port": str(backend.port)}
    if protocol in L4_PROTOCOLS or protocol in ("grpc", "http2"):
        meta["protocol"] = "tcp" if protocol in L4_PROTOCOLS else protocol
    cluster = e.eds_cluster(backend.cluster, metadata=e.metadata(meta))
    if mtls is not None and mtls.enabled:
        alpn = ALPN_HTTP if protocol == "http" else ALPN_TCP
        secure_cluster(cluster, mtls, identities(backend, registry, mtls), alpn)
    # Plugin order: later ones may refine what earlier ones set.
    if confs.timeout is not None:
        timeoutpolicy.apply_cluster(cluster, confs.timeout)
    if confs.breaker is not None:
        circuitbreakerpolicy.apply(cluster, confs.breaker)
    if confs.health is not None:
        healthcheckpolicy.apply(cluster, confs.health)
    if confs.lb is not None:
        loadbalancerpolicy.apply_cluster(cluster, confs.lb, confs.zone)
    return cluster


def endpoints_for(
    backend: Backend, registry: RegistrySnapshot, mtls: Mtls | None = None
) -> endpoint_pb2.ClusterLoadAssignment:
    svc = registry.service(backend.namespace, backend.name)
    eps: tuple[EndpointInfo, ...] = registry.endpoints(svc, backend.port) if svc else ()
    zones: dict[str, list[tuple[e.EndpointSpec, bool]]] = {}
    for ep in eps:
        meta: dict[str, Any] = {"workload": ep.workload, "labels": dict(ep.labels)}
        zones.setdefault(ep.zone, []).append(((ep.address, ep.port, ep.healthy, meta), ep.meshed))
    groups = sorted(zones.items())
    cla = e.load_assignment(
        backend.cluster, [(z, [spec for spec, _ in items]) for z, items in groups]
    )
    if mtls is not None and mtls.enabled:
        # Sidecar-backed endpoints get mTLS; the others (no sidecar) stay plaintext.
        for group, (_, items) in zip(cla.endpoints, groups, strict=True):
            for lb, (_, meshed) in zip(group.lb_endpoints, items, strict=True):
                if meshed:
                    lb.metadata.filter_metadata[SOCKET_MATCH].update({"mtls": True})
    return cla


# --- routes --------------------------------------------------------------------------------


def _route_match(match: HttpMatch) -> route_components_pb2.RouteMatch:
    rm = route_components_pb2.RouteMatch()
    if match.path_kind == "exact":
        rm.path = match.path
    elif match.path_kind == "regex":
        rm.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=match.path))
    elif match.path == "/":
        rm.prefix = "/"
    else:
        rm.path_separated_prefix = match.path
    for name, kind, value in match.headers:
        rm.headers.append(e.header_matcher(name, kind, value))
    if match.method:
        rm.headers.append(e.header_matcher(":method", "exact", match.method))
    for name, kind, value in match.query:
        rm.query_parameters.append(e.query_matcher(name, kind, value))
    if match.grpc:
        rm.grpc.SetInParent()
    return rm


def _redirect(r: Redirect, match: HttpMatch) -> route_components_pb2.RedirectAction:
    codes = {301: 0, 302: 1, 303: 2, 307: 3, 308: 4}
    action = route_components_pb2.RedirectAction(response_code=codes.get(r.status, 1))
    if r.scheme:
        action.scheme_redirect = r.scheme
    if r.host:
        action.host_redirect = r.host
    if r.port:
        action.port_redirect = r.port
    if r.full_path is not None:
        action.path_redirect = r.full_path
    elif r.prefix is not None:
        action.prefix_rewrite = r.prefix
    return action


@dataclass(frozen=True)
class Destination:
    """The service port a virtual host's routes call, and the policies of the caller. An
    empty service (a gateway's virtual hosts) means: each rule's own backend, when it has
    exactly one; rules splitting over several get only Mesh and route entries."""

    namespace: str
    service: str
    port: int
    policies: PolicySet = NO_POLICIES


def _route_policies(route: route_components_pb2.Route, rule: HttpRule, dest: Destination) -> None:
    policies = dest.policies
    if not policies.policies:
        return
    where = (dest.namespace, dest.service, dest.port, rule.source)
    if not dest.service and len(rule.backends) == 1:
        b = rule.backends[0]
        where = (b.namespace, b.name, b.port, rule.source)
    timeout = policies.to_conf(TimeoutPolicy, TimeoutConf, *where)
    if timeout is not None:
        timeoutpolicy.apply_route(route, timeout, rule.timeout)
    retry = policies.to_conf(RetryPolicy, RetryConf, *where)
    if retry is not None:
        per_try = timeout.seconds("per_try_timeout") if timeout is not None else None
        retrypolicy.apply(route, retry, per_try)
    lb = policies.to_conf(LoadBalancerPolicy, LoadBalancerConf, *where)
    if lb is not None:
        loadbalancerpolicy.apply_route(route, lb)


def _route(
    match: HttpMatch, rule: HttpRule, name: str, dest: Destination | None = None
) -> route_components_pb2.Route:
    route = route_components_pb2.Route(name=name, match=_route_match(match))
    route.metadata.CopyFrom(e.metadata({"source": rule.source, "rule": rule.name}))
    if rule.redirect is not None:
        route.redirect.CopyFrom(_redirect(rule.redirect, match))
        return route
    if not rule.backends:
        # Gateway API: a rule without (valid) backends answers 500.
        route.direct_response.status = 500
        route.direct_response.body.inline_string = f"no backend for {rule.source} {rule.name}\n"
        return route
    action = route.route
    clusters = [(b.cluster, b.weight) for b in rule.backends]
    if len(clusters) == 1:
        action.cluster = clusters[0][0]
    else:
        for cname, weight in clusters:
            action.weighted_clusters.clusters.append(
                route_components_pb2.WeightedCluster.ClusterWeight(name=cname, weight=e.u32(weight))
            )
    if rule.prefix_rewrite is not None and match.path_kind == "prefix":
        if rule.prefix_rewrite == "/" and match.path != "/":
            # Strip the prefix and the slashes after it: /route1/hw2 → /hw2, /route1 → /.
            action.regex_rewrite.pattern.regex = "^" + re.escape(match.path) + "/*"
            action.regex_rewrite.substitution = "/"
        else:
            action.prefix_rewrite = rule.prefix_rewrite
    elif rule.full_path_rewrite is not None:
        action.regex_rewrite.pattern.regex = "^/.*$"
        action.regex_rewrite.substitution = rule.full_path_rewrite
    if rule.host_rewrite:
        action.host_rewrite_literal = rule.host_rewrite
    if rule.timeout is not None:
        action.timeout.CopyFrom(e.duration(rule.timeout))
    ops = rule.request_headers
    route.request_headers_to_add.extend(e.header_options(ops.set, append=False))
    route.request_headers_to_add.extend(e.header_options(ops.add, append=True))
    route.request_headers_to_remove.extend(ops.remove)
    ops = rule.response_headers
    route.response_headers_to_add.extend(e.header_options(ops.set, append=False))
    route.response_headers_to_add.extend(e.header_options(ops.add, append=True))
    route.response_headers_to_remove.extend(ops.remove)
    if dest is not None:
        _route_policies(route, rule, dest)
    return route


def virtual_host(
    port_routes: PortRoutes, domains: Iterable[str], policies: PolicySet = NO_POLICIES
) -> route_components_pb2.VirtualHost:
    svc, port = port_routes.service, port_routes.port.port
    dest = Destination(svc.namespace, svc.name, port, policies)
    return virtual_host_of(f"{svc.name}.{svc.namespace}:{port}", domains, port_routes.routes, dest)


def virtual_host_of(
    name: str,
    domains: Iterable[str],
    pairs: Iterable[tuple[HttpMatch, HttpRule]],
    dest: Destination | None = None,
) -> route_components_pb2.VirtualHost:
    """A virtual host from (match, rule) pairs already in precedence order."""
    vh = route_components_pb2.VirtualHost(name=name, domains=domains)
    for i, (match, rule) in enumerate(pairs):
        route_name = f"{rule.source.split(' ', 1)[-1]}:{rule.name}:{i}"
        vh.routes.append(_route(match, rule, route_name, dest))
        if match == EVERYTHING:
            break  # nothing after a catch-all can match
    return vh


def outbound_route_table(
    name: str,
    routing: Routing,
    caller_namespace: str,
    protocols: frozenset[str],
    policies: PolicySet = NO_POLICIES,
) -> route_pb2.RouteConfiguration:
    """Every service port's virtual host, named as a caller in `caller_namespace` names it."""
    rc = route_pb2.RouteConfiguration(name=name)
    rc.validate_clusters.value = False
    for key in sorted(routing.ports):
        pr = routing.ports[key]
        if pr.port.protocol not in protocols:
            continue
        rc.virtual_hosts.append(
            virtual_host(pr, service_domains(pr.service, pr.port.port, caller_namespace), policies)
        )
    return rc
