"""Translation: (mesh snapshot, proxy) → the proxy's xDS resources. Pure functions.

`MeshTranslator(snapshot)` computes what all proxies share once (routing, clusters,
endpoints, route tables per caller namespace); `for_proxy(node)` adds what is the
proxy's own (its listeners and inbound clusters). Nothing here does I/O or keeps state
between snapshots, so the same inputs always give the same output (golden-tested).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf.message import Message

from gossamer.api.kinds.mesh import AccessLogs, Service
from gossamer.api.kinds.policies import (
    FaultInjectionConf,
    FaultInjectionPolicy,
    LoadBalancerPolicy,
    Policy,
    RateLimitConf,
    RateLimitPolicy,
    TimeoutConf,
    TimeoutPolicy,
)
from gossamer.controlplane.policies import faultinjectionpolicy, ratelimitpolicy, timeoutpolicy
from gossamer.controlplane.policies.externalservice import BLACKHOLE_CLUSTER, Egress
from gossamer.controlplane.policies.targeting import (
    INBOUND_KINDS,
    OUTBOUND_KINDS,
    PolicySet,
    policy_sets,
    selects,
    variant,
    with_variant,
)
from gossamer.controlplane.policies.trafficpermission import AuthzTranslator, Destination
from gossamer.controlplane.registry.model import ServiceInfo
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.gateway import translate_gateway
from gossamer.controlplane.translate.mtls import ALPN_HTTP, ALPN_TCP, Mtls, secure_inbound
from gossamer.controlplane.translate.node import InboundPort, OutboundPort, ProxyNode
from gossamer.controlplane.translate.outbound import (
    L4_PROTOCOLS,
    ClusterConfs,
    cluster_for,
    cluster_key,
    endpoints_for,
    endpoints_key,
    outbound_route_table,
    service_domains,
    virtual_host,
)
from gossamer.controlplane.translate.routing import Routing, compute_routing
from gossamer.controlplane.translate.snapshot import MeshSnapshot
from gossamer.controlplane.translate.telemetry import Telemetry
from gossamer.core.spiffe import spiffe_id

Resources = dict[str, dict[str, Message]]  # type URL → name → message

OUTBOUND_HTTP = "outbound:http"
OUTBOUND_TLS = "outbound:tls"
HTTP_PROTOCOLS = frozenset({"http"})
GRPC_PROTOCOLS = frozenset({"grpc", "http2", "http"})


def inbound_cluster_name(port: int) -> str:
    return f"inbound:{port}"


@dataclass
class MessageCache:
    """Messages kept from one translation to the next while their inputs are unchanged:
    the xDS layer then recognises them by identity and serialises nothing again, so a
    route change costs the route, not the mesh's 1,000 clusters and their endpoints."""

    clusters: dict[Hashable, Message] = field(default_factory=dict)
    endpoints: dict[Hashable, Message] = field(default_factory=dict)
    # A sidecar's inbound side and HTTP proxy listener depend on the node alone.
    node_parts: dict[Hashable, Resources] = field(default_factory=dict)
    node_parts_used: dict[Hashable, Resources] = field(default_factory=dict)

    def rotate(self) -> None:
        """Keep what the last translation used; forget the rest (bounded memory)."""
        self.node_parts, self.node_parts_used = self.node_parts_used, {}


@dataclass
class MeshTranslator:
    snapshot: MeshSnapshot
    cache: MessageCache = field(default_factory=MessageCache)
    _route_tables: dict[tuple[str, str, tuple[str, ...]], route_pb2.RouteConfiguration] = field(
        default_factory=dict
    )
    _variant_clusters: dict[tuple[tuple[str, ...], bool], dict[str, Message]] = field(
        default_factory=dict
    )
    # The built-in trace collector's address (the REST API), once the control plane knows it.
    collector: tuple[str, int] | None = None

    @cached_property
    def routing(self) -> Routing:
        return compute_routing(self.snapshot)

    @cached_property
    def _outbound_policies(self) -> tuple[PolicySet, tuple[Policy, ...]]:
        """Client-side policies: the mesh-wide set, and those selecting fewer proxies."""
        return policy_sets(self.snapshot, OUTBOUND_KINDS)

    def _policies(self, names: tuple[str, ...]) -> PolicySet:
        mesh, others = self._outbound_policies
        return with_variant(mesh, others, names)

    @cached_property
    def egress(self) -> Egress:
        return Egress(self.snapshot)

    @cached_property
    def egress_clusters(self) -> Mapping[str, Message]:
        return self.egress.clusters()

    @property
    def problems(self) -> list[str]:
        return list(dict.fromkeys([*self.routing.problems, *self.egress.problems]))

    @cached_property
    def telemetry(self) -> Telemetry:
        return Telemetry(self.snapshot.mesh.tracing, self.collector)

    @cached_property
    def _service_logs(self) -> dict[tuple[str, str], AccessLogs]:
        return {
            (s.namespace, s.name): s.spec.access_logs
            for s in self.snapshot.of(Service)
            if s.spec.access_logs is not None
        }

    def _logs(self, node: ProxyNode) -> AccessLogs:
        """The Service's access logs setting for its workloads, else the Mesh's."""
        own = self._service_logs.get((node.namespace, node.service))
        return own if own is not None else self.snapshot.mesh.access_logs

    def _observe(self, node: ProxyNode, hcm: hcm_pb2.HttpConnectionManager, direction: str) -> None:
        """Tracing and access logs on one of the node's HTTP connection managers."""
        account = node.service_account or node.service or node.gateway or node.workload
        identity = spiffe_id(self.snapshot.mesh.mtls.trust_domain, node.namespace, account)
        version = node.labels.get("version")
        tags = {"gossamer.version": version} if version else {}
        self.telemetry.apply(hcm, self._logs(node), tags, direction, identity)

    @cached_property
    def authz(self) -> AuthzTranslator:
        return AuthzTranslator(self.snapshot)

    def _destination(self, node: ProxyNode, port: InboundPort) -> Destination:
        return Destination(
            namespace=node.namespace,
            service=node.service,
            service_account=node.service_account,
            labels=tuple(sorted(node.labels.items())),
            port=port.port,
            target_port=port.target_port,
            tcp=port.protocol != "http",
        )

    def _authz_key(self, node: ProxyNode) -> tuple[bytes, ...]:
        # What the inbound side's RBAC filters are, so cached node parts are reused only
        # while they are unchanged.
        if not self.authz.active:
            return ()
        return tuple(
            f.SerializeToString(deterministic=True)  # type: ignore[attr-defined]
            for port in node.inbound
            for f in self.authz.filters(self._destination(node, port))
        )

    @cached_property
    def mtls(self) -> Mtls:
        spec = self.snapshot.mesh.mtls
        return Mtls(spec.mode, spec.trust_domain)

    @cached_property
    def clusters(self) -> Mapping[str, Message]:
        """The mesh's clusters, originating mTLS to sidecar-backed endpoints."""
        registry = self.snapshot.registry
        policies = self._policies(())
        mtls = self.mtls
        old = self.cache.clusters
        new: dict[Hashable, Message] = {}
        out: dict[str, Message] = {}
        for b in sorted(self.routing.clusters, key=_k):
            confs = ClusterConfs.of(b, policies)
            key = cluster_key(b, registry, mtls, confs)
            msg = old.get(key) or cluster_for(b, registry, mtls, confs)
            new[key] = out[b.cluster] = msg
        self.cache.clusters = new
        # ExternalServices and the egress passthrough: few, built each time.
        out.update(self.egress_clusters)
        return out

    def variant_clusters(self, names: tuple[str, ...], plain: bool = False) -> dict[str, Message]:
        """The clusters that differ from the mesh-wide ones for proxies selected by the
        named policies too (e.g. a CircuitBreakerPolicy with targetRef Service); `plain`:
        for proxyless clients (no mesh certificate)."""
        found = self._variant_clusters.get((names, plain))
        if found is not None:
            return found
        registry = self.snapshot.registry
        policies, mesh = self._policies(names), self._policies(())
        mtls = None if plain else self.mtls
        found = {}
        for b in sorted(self.routing.clusters, key=_k):
            confs = ClusterConfs.of(b, policies)
            if confs.fingerprint() != ClusterConfs.of(b, mesh).fingerprint():
                found[b.cluster] = cluster_for(b, registry, mtls, confs)
        self._variant_clusters[(names, plain)] = found
        return found

    @cached_property
    def plain_clusters(self) -> Mapping[str, Message]:
        """The clusters for proxyless gRPC clients: they hold no mesh certificate."""
        if not self.mtls.enabled:
            return self.clusters
        registry = self.snapshot.registry
        policies = self._policies(())
        return {
            b.cluster: cluster_for(b, registry, None, ClusterConfs.of(b, policies))
            for b in sorted(self.routing.clusters, key=_k)
        }

    @cached_property
    def endpoints(self) -> Mapping[str, Message]:
        registry = self.snapshot.registry
        mtls = self.mtls
        old = self.cache.endpoints
        new: dict[Hashable, Message] = {}
        out: dict[str, Message] = {}
        for b in sorted(self.routing.clusters, key=_k):
            key = endpoints_key(b, registry, mtls)
            msg = old.get(key) or endpoints_for(b, registry, mtls)
            new[key] = out[b.cluster] = msg
        self.cache.endpoints = new
        return out

    def route_table(
        self, kind: str, namespace: str, names: tuple[str, ...] = ()
    ) -> route_pb2.RouteConfiguration:
        key = (kind, namespace, names)
        if key not in self._route_tables:
            protocols = HTTP_PROTOCOLS if kind == OUTBOUND_HTTP else GRPC_PROTOCOLS
            rc = outbound_route_table(
                kind, self.routing, namespace, protocols, self._policies(names)
            )
            if kind == OUTBOUND_HTTP:
                # ExternalServices, then every other host: blocked or passed through.
                taken = {d.lower() for vh in rc.virtual_hosts for d in vh.domains}
                rc.virtual_hosts.extend(self.egress.virtual_hosts(taken))
            self._route_tables[key] = rc
        return self._route_tables[key]

    def _variant(self, node: ProxyNode) -> tuple[str, ...]:
        return variant(node, self._outbound_policies[1], self._zoned)

    @cached_property
    def _zoned(self) -> bool:
        """Outbound clusters depend on the caller's zone (locality-aware balancing)."""
        return bool(self.snapshot.of(LoadBalancerPolicy))

    # --- per proxy --------------------------------------------------------------------------

    def for_proxy(self, node: ProxyNode) -> Resources:
        """Everything the proxy gets: the mesh's clusters and endpoints, and its own."""
        own = self.proxy_specific(node)
        clusters = self.plain_clusters if node.kind == "proxyless" else self.clusters
        own[e.CLUSTER] = {**clusters, **own[e.CLUSTER]}
        own[e.ENDPOINT] = {**self.endpoints, **own[e.ENDPOINT]}
        return own

    def proxy_specific(self, node: ProxyNode) -> Resources:
        """Only what is the proxy's own (listeners, routes, inbound clusters...): the
        mesh-wide clusters and endpoints are shared by reference (see `clusters`)."""
        out: Resources = {t: {} for t in e.TYPE_URLS}
        names = self._variant(node)
        if names:
            out[e.CLUSTER].update(self.variant_clusters(names, node.kind == "proxyless"))
        if node.kind == "proxyless":
            self._proxyless(node, out)
            return out
        if node.kind == "gateway":
            self._gateway(node, out)
        else:
            self._sidecar(node, out)
        out[e.CLUSTER].update(self.telemetry.clusters())
        return out

    def _gateway(self, node: ProxyNode, out: Resources) -> None:
        gw = translate_gateway(
            self.snapshot,
            self.routing,
            node.namespace,
            node.gateway,
            node.address,
            self._policies(self._variant(node)),
            lambda hcm: self._observe(node, hcm, "inbound"),
        )
        out[e.LISTENER].update(gw.listeners)
        out[e.ROUTE].update(gw.routes)
        registry = self.snapshot.registry
        for b in gw.backends:
            # A gateway may send to a service port no mesh route uses (an Ingress backend).
            if b.cluster not in self.clusters:
                out[e.CLUSTER][b.cluster] = cluster_for(b, registry, self.mtls)
                out[e.ENDPOINT][b.cluster] = endpoints_for(b, registry, self.mtls)
        self._sidecar(node, out)

    def __post_init__(self) -> None:
        self.cache.rotate()

    def _sidecar(self, node: ProxyNode, out: Resources) -> None:
        key = (
            node.id,
            node.namespace,
            node.service,
            node.address,
            node.inbound,
            node.outbound_http_port,
            *self._inbound_confs(node).fingerprint(),
            node.service_account,
            tuple(sorted(node.labels.items())),
            self._authz_key(node),
            self.mtls,
            self.telemetry.fingerprint(),
            self._logs(node).model_dump_json(),
            self.snapshot.mesh.mtls.trust_domain,
        )
        parts = self.cache.node_parts.get(key) or self.cache.node_parts_used.get(key)
        if parts is None:
            parts = {t: {} for t in e.TYPE_URLS}
            self._node_parts(node, parts)
        self.cache.node_parts_used[key] = parts
        for type_url, items in parts.items():
            out[type_url].update(items)
        if node.outbound_http_port:
            out[e.ROUTE].setdefault(
                OUTBOUND_HTTP, self.route_table(OUTBOUND_HTTP, node.namespace, self._variant(node))
            )
        if node.outbound_tls_port:
            out[e.LISTENER][OUTBOUND_TLS] = self.egress.tls_listener(
                OUTBOUND_TLS, node.outbound_tls_port
            )
            out[e.CLUSTER][BLACKHOLE_CLUSTER] = self.egress.blackhole()
        for outbound in node.outbound:
            self._explicit_outbound(node, outbound, out)

    def _node_parts(self, node: ProxyNode, out: Resources) -> None:
        for port in node.inbound:
            self._inbound(node, port, out)
        if node.outbound_http_port:
            hcm = e.http_connection_manager(OUTBOUND_HTTP, rds=OUTBOUND_HTTP, forward_proxy=True)
            self._observe(node, hcm, "outbound")
            out[e.LISTENER][OUTBOUND_HTTP] = e.http_listener(
                OUTBOUND_HTTP, "127.0.0.1", node.outbound_http_port, e.OUTBOUND, hcm
            )

    @cached_property
    def _inbound_policies(self) -> tuple[PolicySet, tuple[Policy, ...]]:
        return policy_sets(self.snapshot, INBOUND_KINDS)

    def _inbound_confs(self, node: ProxyNode) -> InboundConfs:
        mesh, others = self._inbound_policies
        policies = PolicySet((*mesh.policies, *(p for p in others if selects(p, node))))
        if not policies.policies:
            return NO_INBOUND
        return InboundConfs(
            policies.from_conf(FaultInjectionPolicy, FaultInjectionConf),
            policies.from_conf(RateLimitPolicy, RateLimitConf),
            policies.from_conf(TimeoutPolicy, TimeoutConf),
        )

    def _inbound(self, node: ProxyNode, port: InboundPort, out: Resources) -> None:
        name = f"inbound:{port.inbound_port}"
        cluster = inbound_cluster_name(port.port)
        meta = {"service": node.service, "namespace": node.namespace, "port": str(port.port)}
        if port.protocol != "http":
            meta["protocol"] = "tcp"
        cluster_msg = e.static_cluster(
            cluster, [("127.0.0.1", port.target_port)], metadata=e.metadata(meta)
        )
        out[e.CLUSTER][cluster] = cluster_msg
        rbac = self.authz.filters(self._destination(node, port))
        if port.protocol == "http":
            confs = self._inbound_confs(node)
            rc = route_pb2.RouteConfiguration(name=name)
            vh = rc.virtual_hosts.add(name="inbound", domains=["*"])
            route = route_components_pb2.Route(
                name="inbound",
                match=route_components_pb2.RouteMatch(prefix="/"),
                route=route_components_pb2.RouteAction(cluster=cluster),
            )
            # Plugin order of the inbound HTTP filters: authorization, rate limit, faults.
            filters = list(rbac)
            rl = confs.rate_limit.local.http if confs.rate_limit is not None else None
            if rl is not None and (f := ratelimitpolicy.http_filter(name, rl)) is not None:
                filters.append(f)
            if confs.fault is not None:
                filters.append(faultinjectionpolicy.http_filter(confs.fault))
            hcm = e.http_connection_manager(name, route_config=rc, filters=filters)
            self._observe(node, hcm, "inbound")
            if confs.timeout is not None:
                timeoutpolicy.apply_inbound(hcm, route, cluster_msg, confs.timeout)
            vh.routes.append(route)
            hcm.route_config.CopyFrom(rc)
            listener = e.http_listener(name, node.address, port.inbound_port, e.INBOUND, hcm)
            secure_inbound(listener, self.mtls, ALPN_HTTP)
        else:
            # gRPC and HTTP/2 are carried at L4 until the sidecar speaks HTTP/2.
            confs = self._inbound_confs(node)
            proxy = e.tcp_proxy(name, [(cluster, 1)])
            if confs.timeout is not None:
                timeoutpolicy.apply_tcp(proxy, confs.timeout)
            listener = e.listener(
                name,
                node.address,
                port.inbound_port,
                e.INBOUND,
                proxy,
                "envoy.filters.network.tcp_proxy",
            )
            # Network RBAC, then the connection rate limit, run before the TCP proxy.
            before = list(rbac)
            tcp = confs.rate_limit.local.tcp if confs.rate_limit is not None else None
            if port.protocol == "tcp" and tcp is not None:
                limit = ratelimitpolicy.network_filter(name, tcp)
                if limit is not None:
                    before.append(limit)
            if before:
                chain = listener.filter_chains[0]
                terminal = list(chain.filters)
                del chain.filters[:]
                chain.filters.extend([*before, *terminal])
            secure_inbound(listener, self.mtls, ALPN_TCP)
        out[e.LISTENER][name] = listener

    def _explicit_outbound(self, node: ProxyNode, port: OutboundPort, out: Resources) -> None:
        name = f"outbound:{port.service}:{port.port}"
        svc = self.snapshot.registry.resolve(port.service, node.namespace)
        pr = self.routing.ports.get((svc.namespace, svc.name, port.port)) if svc else None
        if pr is not None and pr.port.protocol in L4_PROTOCOLS | {"grpc", "http2"}:
            proxy = e.tcp_proxy(name, [(b.cluster, b.weight) for b in pr.tcp])
            policies = self._policies(self._variant(node))
            if policies.policies:
                dest = (pr.service.namespace, pr.service.name, pr.port.port)
                timeout = policies.to_conf(TimeoutPolicy, TimeoutConf, *dest)
                if timeout is not None:
                    timeoutpolicy.apply_tcp(proxy, timeout)
            out[e.LISTENER][name] = e.listener(
                name,
                "127.0.0.1",
                port.listen_port,
                e.OUTBOUND,
                proxy,
                "envoy.filters.network.tcp_proxy",
            )
            return
        external = self.egress.tcp_cluster(port.service, port.port) if svc is None else None
        if external is not None:
            # A tcp or tls ExternalService: bytes relayed as they are (TLS not terminated).
            out[e.LISTENER][name] = e.listener(
                name,
                "127.0.0.1",
                port.listen_port,
                e.OUTBOUND,
                e.tcp_proxy(name, [(external, 1)]),
                "envoy.filters.network.tcp_proxy",
            )
            return
        rc = route_pb2.RouteConfiguration(name=name)
        if pr is not None:
            rc.virtual_hosts.append(virtual_host(pr, ["*"], self._policies(self._variant(node))))
        else:
            vh = rc.virtual_hosts.add(name="unknown", domains=["*"])
            route = vh.routes.add(name="unknown", match=route_components_pb2.RouteMatch(prefix="/"))
            route.direct_response.status = 503
            route.direct_response.body.inline_string = (
                f"no service {port.service!r} with port {port.port} in namespace {node.namespace}\n"
            )
        out[e.ROUTE][name] = rc
        hcm = e.http_connection_manager(name, rds=name)
        self._observe(node, hcm, "outbound")
        out[e.LISTENER][name] = e.http_listener(
            name, "127.0.0.1", port.listen_port, e.OUTBOUND, hcm
        )

    def _proxyless(self, node: ProxyNode, out: Resources) -> None:
        """gRPC clients ask for a listener named after their target (`xds:///greeter`)."""
        for requested in sorted(node.requested_listeners):
            host, _, port_text = requested.partition(":")
            svc = self.snapshot.registry.resolve(host, node.namespace)
            if svc is None:
                continue
            port = _grpc_port(svc, int(port_text) if port_text.isdigit() else None)
            pr = self.routing.ports.get((svc.namespace, svc.name, port)) if port else None
            if pr is None:
                continue
            route_name = f"grpc:{requested}"
            rc = route_pb2.RouteConfiguration(name=route_name)
            domains = [requested, *service_domains(svc, pr.port.port, node.namespace)]
            policies = self._policies(self._variant(node))
            rc.virtual_hosts.append(virtual_host(pr, list(dict.fromkeys(domains)), policies))
            out[e.ROUTE][route_name] = rc
            hcm = e.http_connection_manager(route_name, rds=route_name)
            out[e.LISTENER][requested] = e.api_listener(requested, hcm)


@dataclass(frozen=True)
class InboundConfs:
    """The server-side policy confs of one proxy (callers: the whole mesh)."""

    fault: FaultInjectionConf | None = None
    rate_limit: RateLimitConf | None = None
    timeout: TimeoutConf | None = None

    def fingerprint(self) -> tuple[str, ...]:
        return tuple(
            c.model_dump_json() if c is not None else ""
            for c in (self.fault, self.rate_limit, self.timeout)
        )


NO_INBOUND = InboundConfs()


def _grpc_port(svc: ServiceInfo, wanted: int | None) -> int | None:
    if wanted is not None:
        return wanted if svc.port(wanted) else None
    for p in svc.ports:
        if p.protocol in ("grpc", "http2"):
            return p.port
    return svc.ports[0].port if len(svc.ports) == 1 else None


def _k(b: object) -> str:
    return str(getattr(b, "cluster", ""))


__all__ = ["MeshTranslator", "ProxyNode", "Resources"]
