"""Gossamer's own inventory kinds: Mesh, Service, Workload, ExternalService."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from gossamer.api.model import DnsSubdomain, Duration, Model, Percent, Port, Resource
from gossamer.api.registry import register

GROUP = "gossamer.io"
VERSIONS = ("v1alpha1",)

AppProtocol = Literal["http", "http2", "grpc", "tcp"]


# --- Mesh --------------------------------------------------------------------------------


class MeshMtls(Model):
    # STRICT: only mTLS between sidecars. PERMISSIVE: inbound also takes plaintext (migration).
    mode: Literal["STRICT", "PERMISSIVE", "DISABLED"] = "STRICT"
    trust_domain: DnsSubdomain = "gossamer.local"
    cert_lifetime: Duration = "24h"
    # Old and new roots are both trusted for this long after a root rotation.
    root_overlap: Duration = "24h"


class MeshEgress(Model):
    # REGISTRY_ONLY: only mesh services and ExternalServices are reachable.
    mode: Literal["REGISTRY_ONLY", "ALLOW_ANY"] = "REGISTRY_ONLY"


class TracingBackend(Model):
    kind: Literal["builtin", "zipkin", "otlp"] = "builtin"
    url: str | None = None


class MeshTracing(Model):
    sampling: Percent = 1.0
    backend: TracingBackend | None = None


class MeshAccessLog(Model):
    enabled: bool = False
    path: str | None = None  # default: the sidecar's stderr


class MeshSpec(Model):
    # Absent blocks mean every default, so the runtime reads `spec.mtls.mode` directly.
    mtls: MeshMtls = Field(default_factory=MeshMtls)
    # What happens to a request no TrafficPermission speaks about.
    default_access: Literal["allow", "deny"] = "allow"
    egress: MeshEgress = Field(default_factory=MeshEgress)
    tracing: MeshTracing = Field(default_factory=MeshTracing)
    access_log: MeshAccessLog = Field(default_factory=MeshAccessLog)


@register
class Mesh(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "Mesh"
    VERSIONS: ClassVar[tuple[str, ...]] = VERSIONS
    PLURAL: ClassVar[str] = "meshes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("mesh",)
    NAMESPACED: ClassVar[bool] = False

    spec: MeshSpec = Field(default_factory=MeshSpec)

    def validate_semantics(self) -> list[tuple[str, str]]:
        from gossamer.api.model import parse_duration

        problems = []
        if parse_duration(self.spec.mtls.cert_lifetime) < 60:
            problems.append(
                (
                    "spec.mtls.certLifetime",
                    f"must be at least 1m, got {self.spec.mtls.cert_lifetime!r}",
                )
            )
        return problems


# --- Service -----------------------------------------------------------------------------


class ServicePort(Model):
    name: str | None = None
    port: Port
    # The port the workloads' apps listen on, when it differs from the service port.
    target_port: Port | None = None
    protocol: AppProtocol = "http"


class ServiceSpec(Model):
    # Workloads whose labels include all of these belong to the service (as on Kubernetes).
    selector: dict[str, str] = Field(default_factory=dict)
    ports: list[ServicePort] = Field(default_factory=list)


@register
class Service(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "Service"
    VERSIONS: ClassVar[tuple[str, ...]] = VERSIONS
    PLURAL: ClassVar[str] = "services"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("svc",)

    spec: ServiceSpec = Field(default_factory=ServiceSpec)

    def validate_semantics(self) -> list[tuple[str, str]]:
        problems = []
        seen: set[int] = set()
        names: set[str] = set()
        for i, port in enumerate(self.spec.ports):
            if port.port in seen:
                problems.append((f"spec.ports[{i}].port", f"port {port.port} is listed twice"))
            seen.add(port.port)
            if port.name:
                if port.name in names:
                    problems.append((f"spec.ports[{i}].name", f"name {port.name!r} is used twice"))
                names.add(port.name)
        return problems


# --- Workload ----------------------------------------------------------------------------


class WorkloadPort(Model):
    name: str | None = None
    # The service port this workload serves (what callers dial: benigno:5000).
    port: Port
    # Where the app itself listens on `address` (or on loopback behind its sidecar).
    target_port: Port
    # Where the workload's sidecar accepts mesh traffic; absent for an unmeshed workload.
    inbound_port: Port | None = None
    protocol: AppProtocol = "http"


class WorkloadSpec(Model):
    address: str = "127.0.0.1"
    service_account: DnsSubdomain | None = None
    ports: list[WorkloadPort] = Field(min_length=1)
    zone: str | None = None


@register
class Workload(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "Workload"
    VERSIONS: ClassVar[tuple[str, ...]] = VERSIONS
    PLURAL: ClassVar[str] = "workloads"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("wl",)

    spec: WorkloadSpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        import ipaddress

        problems = []
        try:
            ipaddress.ip_address(self.spec.address)
        except ValueError:
            problems.append(("spec.address", f"must be an IP address, got {self.spec.address!r}"))
        seen: set[int] = set()
        for i, port in enumerate(self.spec.ports):
            if port.port in seen:
                problems.append((f"spec.ports[{i}].port", f"port {port.port} is listed twice"))
            seen.add(port.port)
        return problems


# --- ExternalService ---------------------------------------------------------------------


class ExternalTls(Model):
    # Originate TLS from the sidecar: the app speaks plaintext HTTP to an HTTPS host.
    originate: bool = False
    sni: str | None = None
    # PEM bundle to verify the external host; default: the system's trust store.
    ca_cert: str | None = None
    verify: bool = True


class ExternalServiceSpec(Model):
    host: str = Field(min_length=1)
    port: Port
    protocol: Literal["http", "tls", "tcp"] = "http"
    # Resolve to these instead of DNS (e.g. a test server on loopback).
    addresses: list[str] | None = None
    tls: ExternalTls | None = None


@register
class ExternalService(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "ExternalService"
    VERSIONS: ClassVar[tuple[str, ...]] = VERSIONS
    PLURAL: ClassVar[str] = "externalservices"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("es", "ext")

    spec: ExternalServiceSpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        tls = self.spec.tls
        if tls and tls.originate and self.spec.protocol != "http":
            return [("spec.tls.originate", "only possible when protocol is http")]
        return []
