"""Who a proxy is, from the xDS node it announces (`node.metadata["gossamer"]`).

Gossamer sidecars describe their workload there; proxyless gRPC clients and Envoy send
whatever their bootstrap says, and are treated as clients in the `default` namespace
unless their metadata says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gossamer.api.model import DEFAULT_NAMESPACE

NodeKind = Literal["sidecar", "gateway", "proxyless"]


@dataclass(frozen=True)
class InboundPort:
    port: int  # service port
    target_port: int  # the app
    inbound_port: int  # the sidecar's listener
    protocol: str = "http"


@dataclass(frozen=True)
class OutboundPort:
    service: str  # as the app names it: benigno, benigno.other
    port: int  # service port
    listen_port: int


@dataclass(frozen=True)
class ProxyNode:
    id: str
    kind: NodeKind = "proxyless"
    namespace: str = DEFAULT_NAMESPACE
    workload: str = ""
    service: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"
    service_account: str = ""
    inbound: tuple[InboundPort, ...] = ()
    outbound_http_port: int | None = None
    outbound_tls_port: int | None = None
    outbound: tuple[OutboundPort, ...] = ()
    gateway: str = ""
    zone: str = ""
    # The sidecar's admin port on `address` (metrics scrape, tap); None for other clients.
    admin_port: int | None = None
    # Names a proxyless gRPC client asked for in LDS (its targets: "greeter", "greeter:50051").
    requested_listeners: frozenset[str] = frozenset()

    @classmethod
    def from_metadata(
        cls, node_id: str, meta: Mapping[str, Any], user_agent: str = ""
    ) -> ProxyNode:
        g = meta.get("gossamer")
        if not isinstance(g, Mapping):
            return cls(id=node_id, kind="proxyless")
        kind = g.get("kind", "sidecar")
        if kind not in ("sidecar", "gateway", "proxyless"):
            raise ValueError(f"node {node_id}: unknown kind {kind!r}")
        return cls(
            id=node_id,
            kind=kind,
            namespace=str(g.get("namespace") or DEFAULT_NAMESPACE),
            workload=str(g.get("workload") or ""),
            service=str(g.get("service") or ""),
            labels={str(k): str(v) for k, v in (g.get("labels") or {}).items()},
            address=str(g.get("address") or "127.0.0.1"),
            service_account=str(g.get("serviceAccount") or g.get("service") or ""),
            inbound=tuple(
                InboundPort(
                    int(p["port"]),
                    int(p["targetPort"]),
                    int(p["inboundPort"]),
                    str(p.get("protocol", "http")),
                )
                for p in g.get("inbound") or []
            ),
            outbound_http_port=int(g["outboundHttpPort"]) if g.get("outboundHttpPort") else None,
            outbound_tls_port=int(g["outboundTlsPort"]) if g.get("outboundTlsPort") else None,
            outbound=tuple(
                OutboundPort(str(p["service"]), int(p["port"]), int(p["listenPort"]))
                for p in g.get("outbound") or []
            ),
            gateway=str(g.get("gateway") or ""),
            zone=str(g.get("zone") or ""),
            admin_port=int(g["adminPort"]) if g.get("adminPort") else None,
        )

    def with_requested(self, names: frozenset[str]) -> ProxyNode:
        from dataclasses import replace

        return replace(self, requested_listeners=names)
