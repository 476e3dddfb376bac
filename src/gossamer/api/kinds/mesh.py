"""Gossamer's own inventory kinds: Mesh, Service, Workload, ExternalService."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Discriminator, Field, Tag

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
    # Where spans go instead of the control plane: a Zipkin v2 endpoint (Zipkin, Jaeger,
    # the OpenTelemetry collector's zipkin receiver), e.g. http://127.0.0.1:9411/api/v2/spans.
    zipkin: str | None = None
    otlp: str | None = None  # OTLP/HTTP: not served yet (refused with a reason)


class MeshTracing(Model):
    # Percent of the requests that start a trace (a caller's decision is always kept).
    sampling: Percent = 100.0
    # "builtin": the control plane's own collector (`gossamer traces`).
    backend: Annotated[
        Annotated[str, Tag("str")] | Annotated[TracingBackend, Tag("dict")],
        # One branch per input shape, so an error names the field, not the union.
        Discriminator(lambda v: "str" if isinstance(v, str) else "dict"),
    ] = "builtin"


class AccessLogs(Model):
    enabled: bool = False
    # A file on the sidecar's machine; default: the sidecar's standard output.
    path: str | None = None


class MeshSpec(Model):
    # Absent blocks mean every default, so the runtime reads `spec.mtls.mode` directly.
    mtls: MeshMtls = Field(default_factory=MeshMtls)
    # What happens to a request no TrafficPermission speaks about.
    default_access: Literal["allow", "deny"] = "allow"
    egress: MeshEgress = Field(default_factory=MeshEgress)
    # Absent: no tracing. Present (even `{}`): every sidecar and gateway traces.
    tracing: MeshTracing | None = None
    # Per Service too (Service.spec.accessLogs wins for that service's workloads).
    access_logs: AccessLogs = Field(default_factory=AccessLogs)


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
        tracing = self.spec.tracing
        if tracing is not None and isinstance(tracing.backend, TracingBackend):
            problems += tracing_backend_problems(tracing.backend)
        elif tracing is not None and tracing.backend != "builtin":
            reason = f"must be `builtin` or `{{zipkin: URL}}`, got {tracing.backend!r}"
            problems.append(("spec.tracing.backend", reason))
        problems += access_log_problems(self.spec.access_logs)
        return problems


def tracing_backend_problems(backend: TracingBackend) -> list[tuple[str, str]]:
    where = "spec.tracing.backend"
    if backend.otlp is not None:
        return [
            (
                f"{where}.otlp",
                "OTLP is not supported yet: use `zipkin` (the OpenTelemetry collector "
                "and Jaeger both take Zipkin v2 JSON) or `builtin`",
            )
        ]
    if backend.zipkin is None:
        return [(where, "needs `zipkin: URL`, or use `backend: builtin`")]
    return [(f"{where}.zipkin", r) for r in [url_problem(backend.zipkin)] if r]


def url_problem(url: str) -> str | None:
    """None when `url` is http://HOST:PORT/PATH as the sidecar's exporter can reach it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc}): {url!r}"
    if parts.scheme != "http":
        return f"must be an http:// URL (https is not supported yet), got {url!r}"
    if not parts.hostname:
        return f"needs a host, got {url!r}"
    if port is None:
        return f"needs a port (e.g. :9411), got {url!r}"
    if parts.query or parts.fragment:
        return f"must have no query or fragment, got {url!r}"
    return None


def access_log_problems(logs: AccessLogs, where: str = "spec.accessLogs") -> list[tuple[str, str]]:
    path = logs.path
    if path is not None and not path.startswith("/"):
        return [(f"{where}.path", f"must be an absolute path, got {path!r}")]
    return []


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
    # Access logs of this service's workloads (their sidecars), instead of the Mesh's.
    access_logs: AccessLogs | None = None


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
        if self.spec.access_logs is not None:
            problems += access_log_problems(self.spec.access_logs)
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
