"""Egress: ExternalService resources and the Mesh's egress mode → outbound config.

- An ExternalService of protocol `http` becomes a cluster (STATIC on `addresses`, else
  STRICT_DNS on `host`) and a virtual host in the outbound HTTP proxy's route table, for
  `host:port` (and the bare `host` when the port is 80).
- `tcp` and `tls` ExternalServices become clusters an explicit outbound port can name
  (`--outbound host=PORT`); `tls` ones also a filter chain of the outbound TLS listener
  (`--outbound-tls-port`), chosen by the ClientHello's SNI without terminating TLS.
- The route table's catch-all (`*`) says what happens to every other host: with
  `spec.egress.mode: REGISTRY_ONLY` (the default) a 502 whose header names the host and
  whose body says how to allow it; with `ALLOW_ANY` a passthrough cluster that connects
  to the host:port the app asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2

from gossamer.api.kinds.mesh import ExternalService
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.snapshot import MeshSnapshot

PASSTHROUGH_CLUSTER = "egress:passthrough"
BLACKHOLE_CLUSTER = "egress:blocked"  # no endpoints: what REGISTRY_ONLY sends TLS to
BLOCKED_HEADER = "x-gossamer-egress"
BLOCKED_BODY = (
    "egress blocked: this host is neither a mesh service nor an ExternalService, and the "
    "mesh allows only registered destinations (Mesh spec.egress.mode: REGISTRY_ONLY).\n"
    "To allow it, apply an ExternalService naming the host and port, e.g.\n"
    "  apiVersion: gossamer.io/v1alpha1\n"
    "  kind: ExternalService\n"
    "  metadata: {name: example}\n"
    "  spec: {host: example.com, port: 80, protocol: http}\n"
    "or let every host through with Mesh spec.egress.mode: ALLOW_ANY.\n"
)


def cluster_name(es: ExternalService) -> str:
    return f"external:{es.namespace}/{es.name}"


def _domains(es: ExternalService) -> list[str]:
    host, port = es.spec.host.lower(), es.spec.port
    return [f"{host}:{port}", host] if port == 80 else [f"{host}:{port}"]


@dataclass
class Egress:
    """Egress config for one snapshot (mesh-wide: every sidecar gets the same)."""

    snapshot: MeshSnapshot
    problems: list[str] = field(default_factory=list)

    @property
    def allow_any(self) -> bool:
        return self.snapshot.mesh.egress.mode == "ALLOW_ANY"

    @property
    def services(self) -> tuple[ExternalService, ...]:
        return self.snapshot.of(ExternalService)

    def clusters(self) -> dict[str, cluster_pb2.Cluster]:
        out: dict[str, cluster_pb2.Cluster] = {}
        for es in self.services:
            spec = es.spec
            name = cluster_name(es)
            meta = e.metadata(
                {
                    "service": spec.host,
                    "namespace": es.namespace,
                    "port": str(spec.port),
                    "external": "true",
                    **({"protocol": "tcp"} if spec.protocol != "http" else {}),
                }
            )
            if spec.tls is not None and spec.tls.originate:
                self.problems.append(
                    f"ExternalService {es.namespace}/{es.name}: spec.tls.originate is not "
                    "supported by the sidecar yet; the app must speak TLS itself (protocol tls)"
                )
            if spec.addresses:
                cluster = e.static_cluster(
                    name, [(a, spec.port) for a in spec.addresses], metadata=meta
                )
            else:
                cluster = e.static_cluster(name, [(spec.host, spec.port)], metadata=meta)
                cluster.type = cluster_pb2.Cluster.STRICT_DNS
            out[name] = cluster
        if self.allow_any:
            passthrough = cluster_pb2.Cluster(
                name=PASSTHROUGH_CLUSTER,
                type=cluster_pb2.Cluster.ORIGINAL_DST,
                lb_policy=cluster_pb2.Cluster.CLUSTER_PROVIDED,
                connect_timeout=e.duration(5.0),
                metadata=e.metadata({"service": "passthrough", "external": "true"}),
            )
            passthrough.original_dst_lb_config.use_http_header = True
            passthrough.original_dst_lb_config.http_header_name = ":authority"
            out[PASSTHROUGH_CLUSTER] = passthrough
        return out

    def virtual_hosts(self, taken: set[str]) -> list[route_components_pb2.VirtualHost]:
        """ExternalService virtual hosts (http ones whose names no mesh service uses),
        then the catch-all for every other host."""
        out = []
        for es in self.services:
            if es.spec.protocol != "http":
                continue
            domains = [d for d in _domains(es) if d not in taken]
            if not domains:
                self.problems.append(
                    f"ExternalService {es.namespace}/{es.name}: host {es.spec.host} is already "
                    "a mesh service name; the mesh service wins"
                )
                continue
            taken.update(domains)
            vh = route_components_pb2.VirtualHost(
                name=f"external:{es.namespace}/{es.name}", domains=domains
            )
            route = vh.routes.add(
                name="external", match=route_components_pb2.RouteMatch(prefix="/")
            )
            route.route.cluster = cluster_name(es)
            out.append(vh)
        out.append(self.catch_all())
        return out

    def catch_all(self) -> route_components_pb2.VirtualHost:
        vh = route_components_pb2.VirtualHost(name="egress", domains=["*"])
        route = vh.routes.add(name="egress", match=route_components_pb2.RouteMatch(prefix="/"))
        if self.allow_any:
            route.route.cluster = PASSTHROUGH_CLUSTER
            return vh
        route.direct_response.status = 502
        route.direct_response.body.inline_string = BLOCKED_BODY
        route.response_headers_to_add.extend(
            e.header_options([(BLOCKED_HEADER, "blocked host=%REQ(:AUTHORITY)%")], append=False)
        )
        return vh

    @staticmethod
    def blackhole() -> cluster_pb2.Cluster:
        """Where the TLS listener sends unknown server names under REGISTRY_ONLY."""
        return e.static_cluster(
            BLACKHOLE_CLUSTER, [], metadata=e.metadata({"service": "blocked", "protocol": "tcp"})
        )

    def tls_listener(self, name: str, port: int) -> listener_pb2.Listener:
        """The outbound TLS listener: the ClientHello's SNI picks a `tls` ExternalService
        (its addresses and port; TLS is not terminated); any other name goes to the
        passthrough cluster (ALLOW_ANY: the SNI host, port 443) or nowhere
        (REGISTRY_ONLY: a cluster without endpoints, the connection is closed)."""
        lst = listener_pb2.Listener(
            name=name, address=e.socket_address("127.0.0.1", port), traffic_direction=e.OUTBOUND
        )
        lst.listener_filters.add(
            name="envoy.filters.listener.tls_inspector",
            typed_config=e.pack(tls_inspector_pb2.TlsInspector()),
        )
        seen: set[str] = set()
        for es in self.services:
            if es.spec.protocol != "tls":
                continue
            if es.spec.host.lower() in seen:  # SNI carries no port: one per host
                self.problems.append(
                    f"ExternalService {es.namespace}/{es.name}: another tls ExternalService "
                    f"already has host {es.spec.host}; the outbound TLS listener uses that one"
                )
                continue
            seen.add(es.spec.host.lower())
            chain = lst.filter_chains.add(name=cluster_name(es))
            chain.filter_chain_match.server_names.append(es.spec.host.lower())
            chain.filters.add(
                name="envoy.filters.network.tcp_proxy",
                typed_config=e.pack(e.tcp_proxy(name, [(cluster_name(es), 1)])),
            )
        default = lst.filter_chains.add(name="egress")
        target = PASSTHROUGH_CLUSTER if self.allow_any else BLACKHOLE_CLUSTER
        default.filters.add(
            name="envoy.filters.network.tcp_proxy",
            typed_config=e.pack(e.tcp_proxy(name, [(target, 1)])),
        )
        return lst

    def tcp_cluster(self, host: str, port: int) -> str | None:
        """The cluster of a tcp or tls ExternalService an explicit outbound port names."""
        for es in self.services:
            if es.spec.host.lower() == host.lower() and es.spec.port == port:
                return cluster_name(es)
        return None


__all__ = ["BLOCKED_HEADER", "PASSTHROUGH_CLUSTER", "Egress", "cluster_name"]
