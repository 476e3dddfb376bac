"""Who this sidecar is, as the control plane must read it: the xDS node's metadata.

The shape matches gossamer.controlplane.translate.node.ProxyNode.from_metadata (key
"gossamer"); the command-line forms of ports are parsed here so they can be tested
without a process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("http", "tcp", "grpc", "http2")


class OptionError(ValueError):
    pass


@dataclass(frozen=True)
class Inbound:
    port: int  # the service port, as the mesh names it
    target_port: int  # where the app listens
    listen_port: int  # the sidecar's inbound listener
    protocol: str = "http"


@dataclass(frozen=True)
class Outbound:
    service: str
    port: int
    listen_port: int


def _port(text: str, what: str, allow_zero: bool = False) -> int:
    if not text.isdigit() or not (0 if allow_zero else 1) <= int(text) <= 65535:
        raise OptionError(f"{what}: {text!r} is not a port number")
    return int(text)


def parse_inbound(text: str) -> Inbound:
    """SVCPORT:APPPORT:LISTENPORT[:PROTOCOL]"""
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise OptionError(
            f"--inbound {text!r}: expected SVCPORT:APPPORT:LISTENPORT[:PROTOCOL], "
            "e.g. 5000:8080:15006"
        )
    protocol = parts[3].lower() if len(parts) == 4 else "http"
    if protocol not in PROTOCOLS:
        raise OptionError(f"--inbound {text!r}: protocol must be one of {', '.join(PROTOCOLS)}")
    return Inbound(
        _port(parts[0], "--inbound service port"),
        _port(parts[1], "--inbound app port"),
        _port(parts[2], "--inbound listen port"),
        protocol,
    )


_SERVICE = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def parse_outbound(text: str) -> Outbound:
    """SVC:SVCPORT=LISTENPORT"""
    left, sep, listen = text.partition("=")
    service, sep2, port = left.rpartition(":")
    if not sep or not sep2 or not service:
        raise OptionError(
            f"--outbound {text!r}: expected SVC:SVCPORT=LISTENPORT, e.g. benigno:5000=15000"
        )
    if not _SERVICE.fullmatch(service):
        raise OptionError(f"--outbound {text!r}: {service!r} is not a service name")
    return Outbound(
        service, _port(port, "--outbound service port"), _port(listen, "--outbound listen port")
    )


def parse_label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise OptionError(f"--label {text!r}: expected KEY=VALUE")
    return key, value


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    workload: str
    namespace: str = "default"
    service: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"
    inbound: tuple[Inbound, ...] = ()
    http_proxy_port: int | None = None
    outbound_tls_port: int | None = None
    outbound: tuple[Outbound, ...] = ()
    # Set: an ingress gateway serving the Gateway resource of this name.
    gateway: str = ""
    zone: str = ""  # the workload's zone (locality-aware balancing, Workload.spec.zone)
    # The admin listener's port, once bound: where the control plane scrapes metrics and taps.
    admin_port: int | None = None

    def metadata(self) -> dict[str, Any]:
        g: dict[str, Any] = {
            "kind": "gateway" if self.gateway else "sidecar",
            "workload": self.workload,
            "namespace": self.namespace,
            "service": self.service,
            "labels": dict(self.labels),
            "address": self.address,
            "serviceAccount": self.service,
            "inbound": [
                {
                    "port": p.port,
                    "targetPort": p.target_port,
                    "inboundPort": p.listen_port,
                    "protocol": p.protocol,
                }
                for p in self.inbound
            ],
            "outbound": [
                {"service": o.service, "port": o.port, "listenPort": o.listen_port}
                for o in self.outbound
            ],
        }
        if self.http_proxy_port:
            g["outboundHttpPort"] = self.http_proxy_port
        if self.outbound_tls_port:
            g["outboundTlsPort"] = self.outbound_tls_port
        if self.gateway:
            g["gateway"] = self.gateway
        if self.zone:
            g["zone"] = self.zone
        if self.admin_port:
            g["adminPort"] = self.admin_port
        return {"gossamer": g}
