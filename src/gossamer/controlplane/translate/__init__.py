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
from google.protobuf.message import Message

from gossamer.controlplane.policies.externalservice import BLACKHOLE_CLUSTER, Egress
from gossamer.controlplane.policies.trafficpermission import AuthzTranslator, Destination
from gossamer.controlplane.registry.model import ServiceInfo
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.gateway import translate_gateway
from gossamer.controlplane.translate.mtls import ALPN_HTTP, ALPN_TCP, Mtls, secure_inbound
from gossamer.controlplane.translate.node import InboundPort, OutboundPort, ProxyNode
from gossamer.controlplane.translate.outbound import (
    L4_PROTOCOLS,
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
    _route_tables: dict[tuple[str, str], route_pb2.RouteConfiguration] = field(default_factory=dict)

    @cached_property
    def routing(self) -> Routing:
        return compute_routing(self.snapshot)

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
        mtls = self.mtls
        old = self.cache.clusters
        new: dict[Hashable, Message] = {}
        out: dict[str, Message] = {}
        for b in sorted(self.routing.clusters, key=_k):
            key = cluster_key(b, registry, mtls)
            msg = old.get(key) or cluster_for(b, registry, mtls)
            new[key] = out[b.cluster] = msg
        self.cache.clusters = new
        # ExternalServices and the egress passthrough: few, built each time.
        out.update(self.egress_clusters)
        return out

    @cached_property
    def plain_clusters(self) -> Mapping[str, Message]:
        """The clusters for proxyless gRPC clients: they hold no mesh certificate."""
        if not self.mtls.enabled:
            return self.clusters
        registry = self.snapshot.registry
        return {b.cluster: cluster_for(b, registry) for b in sorted(self.routing.clusters, key=_k)}

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

    def route_table(self, kind: str, namespace: str) -> route_pb2.RouteConfiguration:
        key = (kind, namespace)
        if key not in self._route_tables:
            protocols = HTTP_PROTOCOLS if kind == OUTBOUND_HTTP else GRPC_PROTOCOLS
            rc = outbound_route_table(kind, self.routing, namespace, protocols)
            if kind == OUTBOUND_HTTP:
                # ExternalServices, then every other host: blocked or passed through.
                taken = {d.lower() for vh in rc.virtual_hosts for d in vh.domains}
                rc.virtual_hosts.extend(self.egress.virtual_hosts(taken))
            self._route_tables[key] = rc
        return self._route_tables[key]

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
        if node.kind == "proxyless":
            self._proxyless(node, out)
        elif node.kind == "gateway":
            self._gateway(node, out)
        else:
            self._sidecar(node, out)
        return out

    def _gateway(self, node: ProxyNode, out: Resources) -> None:
        gw = translate_gateway(
            self.snapshot, self.routing, node.namespace, node.gateway, node.address
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
            node.service_account,
            tuple(sorted(node.labels.items())),
            self._authz_key(node),
            self.mtls,
        )
        parts = self.cache.node_parts.get(key) or self.cache.node_parts_used.get(key)
        if parts is None:
            parts = {t: {} for t in e.TYPE_URLS}
            self._node_parts(node, parts)
        self.cache.node_parts_used[key] = parts
        for type_url, items in parts.items():
            out[type_url].update(items)
        if node.outbound_http_port:
            out[e.ROUTE].setdefault(OUTBOUND_HTTP, self.route_table(OUTBOUND_HTTP, node.namespace))
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
            out[e.LISTENER][OUTBOUND_HTTP] = e.http_listener(
                OUTBOUND_HTTP, "127.0.0.1", node.outbound_http_port, e.OUTBOUND, hcm
            )

    def _inbound(self, node: ProxyNode, port: InboundPort, out: Resources) -> None:
        name = f"inbound:{port.inbound_port}"
        cluster = inbound_cluster_name(port.port)
        meta = {"service": node.service, "namespace": node.namespace, "port": str(port.port)}
        if port.protocol != "http":
            meta["protocol"] = "tcp"
        out[e.CLUSTER][cluster] = e.static_cluster(
            cluster, [("127.0.0.1", port.target_port)], metadata=e.metadata(meta)
        )
        rbac = self.authz.filters(self._destination(node, port))
        if port.protocol == "http":
            rc = route_pb2.RouteConfiguration(name=name)
            vh = rc.virtual_hosts.add(name="inbound", domains=["*"])
            vh.routes.append(
                route_components_pb2.Route(
                    name="inbound",
                    match=route_components_pb2.RouteMatch(prefix="/"),
                    route=route_components_pb2.RouteAction(cluster=cluster),
                )
            )
            hcm = e.http_connection_manager(name, route_config=rc, filters=rbac)
            listener = e.http_listener(name, node.address, port.inbound_port, e.INBOUND, hcm)
            secure_inbound(listener, self.mtls, ALPN_HTTP)
        else:
            # gRPC and HTTP/2 are carried at L4 until the sidecar speaks HTTP/2.
            listener = e.listener(
                name,
                node.address,
                port.inbound_port,
                e.INBOUND,
                e.tcp_proxy(name, [(cluster, 1)]),
                "envoy.filters.network.tcp_proxy",
            )
            if rbac:  # network RBAC runs before the TCP proxy
                chain = listener.filter_chains[0]
                proxy = list(chain.filters)
                del chain.filters[:]
                chain.filters.extend([*rbac, *proxy])
            secure_inbound(listener, self.mtls, ALPN_TCP)
        out[e.LISTENER][name] = listener

    def _explicit_outbound(self, node: ProxyNode, port: OutboundPort, out: Resources) -> None:
        name = f"outbound:{port.service}:{port.port}"
        svc = self.snapshot.registry.resolve(port.service, node.namespace)
        pr = self.routing.ports.get((svc.namespace, svc.name, port.port)) if svc else None
        if pr is not None and pr.port.protocol in L4_PROTOCOLS | {"grpc", "http2"}:
            out[e.LISTENER][name] = e.listener(
                name,
                "127.0.0.1",
                port.listen_port,
                e.OUTBOUND,
                e.tcp_proxy(name, [(b.cluster, b.weight) for b in pr.tcp]),
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
            rc.virtual_hosts.append(virtual_host(pr, ["*"]))
        else:
            vh = rc.virtual_hosts.add(name="unknown", domains=["*"])
            route = vh.routes.add(name="unknown", match=route_components_pb2.RouteMatch(prefix="/"))
            route.direct_response.status = 503
            route.direct_response.body.inline_string = (
                f"no service {port.service!r} with port {port.port} in namespace {node.namespace}\n"
            )
        out[e.ROUTE][name] = rc
        hcm = e.http_connection_manager(name, rds=name)
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
            rc.virtual_hosts.append(virtual_host(pr, list(dict.fromkeys(domains))))
            out[e.ROUTE][route_name] = rc
            hcm = e.http_connection_manager(route_name, rds=route_name)
            out[e.LISTENER][requested] = e.api_listener(requested, hcm)


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
