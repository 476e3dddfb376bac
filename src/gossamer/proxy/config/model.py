"""The sidecar's own configuration: immutable, protobuf-free, ready for the hot path.

`proxy/config/compile.py` is the only place xDS protobufs become these objects. The data
path reads nothing else, so everything expensive (regex compilation, domain tables,
weight tables, header name lowering) happens here, once per config change, never per
request. A whole `ProxyConfig` is swapped atomically: a request keeps the objects it
started with. Mappings are plain dicts (so a config pickles to worker processes) and are
never mutated after compilation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

# --- matching ----------------------------------------------------------------------------

StringMatchKind = Literal["exact", "prefix", "suffix", "contains", "regex", "present"]


@dataclass(frozen=True, slots=True)
class StringMatch:
    kind: StringMatchKind
    value: str = ""
    ignore_case: bool = False
    regex: re.Pattern[str] | None = None  # compiled at config time when kind == "regex"
    invert: bool = False

    def matches(self, candidate: str | None) -> bool:
        if candidate is None:
            return self.invert
        if self.kind == "present":
            return not self.invert
        value, text = self.value, candidate
        if self.ignore_case:
            value, text = value.lower(), text.lower()
        if self.kind == "exact":
            result = text == value
        elif self.kind == "prefix":
            result = text.startswith(value)
        elif self.kind == "suffix":
            result = text.endswith(value)
        elif self.kind == "contains":
            result = value in text
        else:
            assert self.regex is not None
            result = self.regex.fullmatch(candidate) is not None
        return result != self.invert


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    name: str  # lower-case; ":method" and ":authority" are pseudo-headers as in Envoy
    match: StringMatch


@dataclass(frozen=True, slots=True)
class QueryMatch:
    name: str
    match: StringMatch


PathMatchKind = Literal["prefix", "exact", "regex", "path_separated_prefix"]


@dataclass(frozen=True, slots=True)
class RouteMatch:
    path_kind: PathMatchKind = "prefix"
    path: str = "/"
    regex: re.Pattern[str] | None = None
    case_sensitive: bool = True
    headers: tuple[HeaderMatch, ...] = ()
    query: tuple[QueryMatch, ...] = ()
    grpc_only: bool = False


# --- route actions -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderMutation:
    """Applied in order: remove, then set (replace), then add (append)."""

    remove: tuple[str, ...] = ()  # lower-case names
    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.remove or self.set or self.add)


@dataclass(frozen=True, slots=True)
class WeightedCluster:
    name: str
    weight: int
    request_headers: HeaderMutation = HeaderMutation()
    response_headers: HeaderMutation = HeaderMutation()


RetryOn = Literal[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "refused-stream",
    "retriable-4xx",
    "retriable-status-codes",
    "cancelled",
    "deadline-exceeded",
    "resource-exhausted",
    "unavailable",
    "internal",
]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retry_on: frozenset[str]
    num_retries: int = 1
    per_try_timeout: float | None = None
    retriable_status_codes: frozenset[int] = frozenset()
    base_interval: float = 0.025
    max_interval: float = 0.25
    retry_non_idempotent: bool = False
    max_body_bytes: int = 65536
    # Retry budget (Linkerd-style): over the last budget_window seconds, retries may add
    # budget_percent of the requests, plus min_retries_per_second. On by default.
    budget: bool = True
    budget_percent: float = 20.0
    min_retries_per_second: float = 10.0
    budget_window: float = 10.0
    # Only these methods are retried (None: any), from retriable_request_headers.
    methods: re.Pattern[str] | None = None


HashKind = Literal["header", "cookie", "source_ip", "query"]


@dataclass(frozen=True, slots=True)
class HashPolicy:
    kind: HashKind
    name: str = ""
    terminal: bool = False


@dataclass(frozen=True, slots=True)
class RouteAction:
    clusters: tuple[WeightedCluster, ...]
    total_weight: int
    prefix_rewrite: str | None = None
    regex_rewrite: tuple[re.Pattern[str], str] | None = None
    host_rewrite: str | None = None
    timeout: float | None = None  # whole exchange; None = no limit
    idle_timeout: float | None = None
    retry: RetryPolicy | None = None
    hash_policies: tuple[HashPolicy, ...] = ()
    # Cumulative weights for one random draw: ((upper bound, index), ...).
    cumulative: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DirectResponse:
    status: int
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Redirect:
    status: int = 302
    scheme: str | None = None
    host: str | None = None
    port: int | None = None
    path: str | None = None
    prefix_rewrite: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    match: RouteMatch
    action: RouteAction | DirectResponse | Redirect
    request_headers: HeaderMutation = HeaderMutation()
    response_headers: HeaderMutation = HeaderMutation()
    # Filled by the translation so metrics and `explain` can say which policy matched.
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VirtualHost:
    name: str
    domains: tuple[str, ...]
    routes: tuple[Route, ...]
    request_headers: HeaderMutation = HeaderMutation()
    response_headers: HeaderMutation = HeaderMutation()


@dataclass(frozen=True, slots=True)
class RouteTable:
    """A RouteConfiguration with its domain lookup precomputed (Envoy's matching order:
    exact, then longest suffix wildcard `*.x`, then longest prefix wildcard `x.*`, then `*`)."""

    name: str
    virtual_hosts: tuple[VirtualHost, ...]
    exact: Mapping[str, VirtualHost]
    suffixes: tuple[tuple[str, VirtualHost], ...]  # ("-suffix", vh), longest first
    prefixes: tuple[tuple[str, VirtualHost], ...]
    default: VirtualHost | None
    request_headers_to_remove: tuple[str, ...] = ()

    def virtual_host(self, authority: str) -> VirtualHost | None:
        host = authority.lower()
        vh = self.exact.get(host)
        if vh is not None:
            return vh
        for suffix, candidate in self.suffixes:
            if host.endswith(suffix):
                return candidate
        for prefix, candidate in self.prefixes:
            if host.startswith(prefix):
                return candidate
        return self.default


# --- clusters ----------------------------------------------------------------------------

LbPolicy = Literal["round_robin", "random", "least_request", "peak_ewma", "ring_hash", "maglev"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    port: int
    weight: int = 1
    zone: str = ""
    priority: int = 0
    healthy: bool = True
    # Labels of the workload behind it (version, …), and its identity, for metrics.
    labels: Mapping[str, str] = field(default_factory=dict)
    workload: str = ""
    # filter_metadata["envoy.transport_socket_match"]: which of the cluster's
    # transport_socket_matches applies (e.g. {"mtls": "true"} for a sidecar-backed one).
    socket_match: Mapping[str, str] = field(default_factory=dict)


UNLIMITED = 1 << 31


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Limits per cluster and sidecar process; a request beyond one is refused at once
    (503, flag UO, x-gossamer-overloaded: true): Gossamer never queues.
    max_pending_requests counts requests waiting for the upstream's response head."""

    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024
    max_retries: int = UNLIMITED  # concurrent retries (the retry budget bounds them too)


@dataclass(frozen=True, slots=True)
class OutlierDetection:
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_time: float = 300.0
    max_ejection_percent: float = 10.0
    consecutive_5xx: int | None = 5
    consecutive_gateway_errors: int | None = None
    success_rate_minimum_hosts: int | None = None
    success_rate_request_volume: int = 100
    success_rate_stdev_factor: float = 1.9


@dataclass(frozen=True, slots=True)
class HealthCheck:
    kind: Literal["http", "tcp", "grpc"]
    interval: float
    timeout: float
    healthy_threshold: int = 1
    unhealthy_threshold: int = 3
    interval_jitter: float = 0.0
    path: str = "/"
    host: str = ""
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    expected_statuses: tuple[tuple[int, int], ...] = ((200, 400),)  # [start, end)
    send: bytes = b""
    receive: bytes = b""
    grpc_service: str = ""


@dataclass(frozen=True, slots=True)
class UpstreamTls:
    """Originate TLS: mTLS to a sidecar (SPIFFE identity check) or TLS to an external host."""

    sni: str = ""
    alpn: tuple[str, ...] = ()
    certificate_secret: str | None = None  # SDS name of our certificate + key
    trust_secret: str | None = None  # SDS name of the trust bundle (None: system roots)
    verify_san_uris: tuple[str, ...] = ()  # accepted SPIFFE IDs (prefix match with "*")
    verify_hostname: str = ""


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    kind: Literal["eds", "static", "strict_dns", "logical_dns", "original_dst"]
    endpoints: tuple[Endpoint, ...] = ()
    lb_policy: LbPolicy = "round_robin"
    choice_count: int = 2
    ring_size: int = 1024
    connect_timeout: float = 5.0
    protocol: Literal["http1", "http2", "tcp"] = "http1"
    tls: UpstreamTls | None = None
    # Set: `tls` applies only to endpoints whose socket_match has these values (Envoy's
    # transport_socket_matches); the others are plaintext.
    tls_match: Mapping[str, str] | None = None
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    outlier: OutlierDetection | None = None
    health_check: HealthCheck | None = None
    idle_timeout: float = 60.0  # pooled upstream connection idle limit
    # Locality-aware balancing: zones to try in order (then all others); None: off.
    zone_order: tuple[str, ...] | None = None
    per_connection_buffer: int = 1 << 20
    # Destination labels for metrics: service, namespace, ...
    metadata: Mapping[str, str] = field(default_factory=dict)


# --- authorization (RBAC) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RbacPrincipal:
    """Who: `id` matches the caller's verified SPIFFE ID (none when unauthenticated)."""

    kind: Literal["any", "id", "and", "or", "not"]
    match: StringMatch | None = None
    children: tuple[RbacPrincipal, ...] = ()


@dataclass(frozen=True, slots=True)
class RbacPermission:
    """What: `header` (incl. `:method`), `path` (without the query) on HTTP; on TCP only
    `any` and combinations of it can match."""

    kind: Literal["any", "header", "path", "and", "or", "not"]
    header: HeaderMatch | None = None
    path: StringMatch | None = None
    children: tuple[RbacPermission, ...] = ()


@dataclass(frozen=True, slots=True)
class RbacPolicy:
    name: str  # "<namespace>/<name>#<entry>": the part before "#" is reported
    permissions: tuple[RbacPermission, ...]  # any of them
    principals: tuple[RbacPrincipal, ...]  # any of them


@dataclass(frozen=True, slots=True)
class Rbac:
    action: Literal["ALLOW", "DENY"]
    policies: tuple[RbacPolicy, ...] = ()


@dataclass(frozen=True, slots=True)
class RbacFilter:
    """One RBAC filter (HTTP or network): `rules` enforced (None: nothing enforced),
    `shadow` evaluated only to count would-be denials."""

    rules: Rbac | None
    shadow: Rbac | None = None
    stat_prefix: str = ""


# --- listeners ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DownstreamTls:
    certificate_secret: str
    trust_secret: str | None = None  # set: require and verify client certificates
    verify_san_uris: tuple[str, ...] = ()
    alpn: tuple[str, ...] = ("http/1.1",)
    # PERMISSIVE mTLS: plaintext accepted too (detected by peeking at the first bytes).
    allow_plaintext: bool = False


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """envoy.filters.http.fault: fractions are in [0, 1]."""

    delay: float | None = None
    delay_fraction: float = 0.0
    abort_status: int | None = None
    abort_grpc_status: int | None = None
    abort_fraction: float = 0.0
    headers: tuple[HeaderMatch, ...] = ()


@dataclass(frozen=True, slots=True)
class LocalRateLimitConfig:
    """envoy.filters.http.local_ratelimit: one token bucket per sidecar process."""

    max_tokens: int
    tokens_per_fill: int
    fill_interval: float
    status: int = 429
    response_headers: tuple[tuple[str, str], ...] = ()
    x_ratelimit_headers: bool = False


@dataclass(frozen=True, slots=True)
class HttpFilter:
    """One stage of the HTTP pipeline; `config` is a filter-specific frozen object."""

    name: str
    config: object = None


@dataclass(frozen=True, slots=True)
class Tracing:
    """HCM `tracing`: random sampling and a Zipkin v2 (HTTP_JSON) collector."""

    sampling: float  # 0..1 of the requests that start a trace here
    collector_cluster: str
    collector_endpoint: str = "/api/v2/spans"
    # Tags on every span (custom_tags with literal values): workload, namespace...
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class AccessLog:
    """A file access logger writing one JSON object per request."""

    path: str  # a file, or /dev/stdout, /dev/stderr
    fields: tuple[tuple[str, str], ...]  # JSON key → command operator (%RESPONSE_CODE%)


@dataclass(frozen=True, slots=True)
class HttpConnectionManager:
    stat_prefix: str
    route_config_name: str | None = None  # RDS
    route_table: RouteTable | None = None  # inline
    filters: tuple[HttpFilter, ...] = ()
    # Requests in absolute form (`GET http://host/x`) are routed by their authority.
    forward_proxy: bool = False
    request_timeout: float | None = None
    stream_idle_timeout: float | None = 300.0
    idle_timeout: float | None = 3600.0
    max_request_headers_kb: int = 60
    generate_request_id: bool = True
    xff_append: bool = True
    direction: Literal["inbound", "outbound"] = "outbound"
    tracing: Tracing | None = None
    access_logs: tuple[AccessLog, ...] = ()


@dataclass(frozen=True, slots=True)
class TcpProxy:
    stat_prefix: str
    clusters: tuple[WeightedCluster, ...]
    total_weight: int
    idle_timeout: float | None = 3600.0
    cumulative: tuple[int, ...] = ()
    # Network RBAC filters before the proxy, in order.
    rbac: tuple[RbacFilter, ...] = ()
    # Routing by the TLS ClientHello's server name (filter chains with server_names):
    # SNI → clusters; `clusters` is the default chain's (empty: no default, close).
    sni_routing: bool = False
    by_sni: Mapping[str, tuple[WeightedCluster, ...]] = field(default_factory=dict)
    # The destination port a passthrough (ORIGINAL_DST) cluster dials the SNI host on.
    sni_port: int = 443


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    address: str
    port: int
    direction: Literal["inbound", "outbound"]
    handler: HttpConnectionManager | TcpProxy
    tls: DownstreamTls | None = None
    # envoy.filters.network.local_ratelimit: new connections per interval (TCP proxy).
    connection_limit: LocalRateLimitConfig | None = None


@dataclass(frozen=True, slots=True)
class Secret:
    name: str
    certificate_chain: bytes = b""  # PEM
    private_key: bytes = b""  # PEM; never logged or dumped
    trusted_ca: bytes = b""  # PEM bundle


@dataclass(frozen=True)
class ProxyConfig:
    """Everything one sidecar does, at one set of accepted xDS versions."""

    listeners: Mapping[str, Listener] = field(default_factory=dict)
    routes: Mapping[str, RouteTable] = field(default_factory=dict)
    clusters: Mapping[str, Cluster] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)  # type URL → version
    # Who this proxy is (span service names); added by the sidecar, not from xDS.
    local: LocalInfo | None = None


@dataclass(frozen=True, slots=True)
class LocalInfo:
    service: str = ""
    workload: str = ""
    namespace: str = "default"
    # The data-plane token, sent only to the built-in collector (BUILTIN_COLLECTOR).
    token: str | None = None


# The cluster of the control plane's built-in trace collector (controlplane/collector.py).
BUILTIN_COLLECTOR = "gossamer:collector"
