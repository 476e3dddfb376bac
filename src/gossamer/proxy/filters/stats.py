"""Counters and latency histograms for the admin endpoints (/stats, /stats/prometheus).

Kept cheap: the hot path increments slots of a RequestStats it looked up once per
connection and route (no locks: each process is single-threaded). A request series is
keyed by (cluster, route, peer identity, destination workload, destination version): the
rest of the golden labels (direction, this workload's own identity, the destination
service) is constant per listener or cluster and is filled in when rendering (`Labels`).
Every key part comes from the config or from a verified mTLS identity, never from a
request; a hard cap folds anything beyond MAX_SERIES into "other", and a series with no
traffic for IDLE_EXPIRY seconds is dropped (`expire`).

Worker processes send `snapshot()` (plain data) to the main process, which `merge`s them
with its own before rendering.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from gossamer.core.spiffe import SpiffeId

# Seconds; the last bucket is +Inf.
BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
CLASSES: Final = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")
MAX_SERIES: Final = 512
MAX_CODES: Final = 64  # distinct status codes per series
OTHER: Final = "other"
NO_CLUSTER: Final = "-"  # local replies: no route, direct response, protocol errors
IDLE_EXPIRY: Final = 600.0  # seconds without traffic before a request series is dropped
SEP: Final = "\x1f"  # joins a series key into one snapshot key (never in a label value)

_bisect: Final = bisect.bisect_left

# (cluster, route, peer SPIFFE id, destination workload, destination version)
SeriesKey = tuple[str, str, str, str, str]


def series_key(
    cluster: str, route: str = "", peer: str = "", workload: str = "", version: str = ""
) -> SeriesKey:
    return (cluster, route, peer, workload, version)


class RequestStats:
    """Requests of one series: by status code and class, latency, bytes."""

    __slots__ = ("buckets", "codes", "expired", "idle_since", "mark", "rx", "sum", "tx")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.codes: dict[int, int] = {}
        self.sum = 0.0
        self.rx = 0  # request bytes (head and body) from the client
        self.tx = 0  # response bytes from the upstream
        # Expiry bookkeeping (housekeeping only): the count at the last sweep, and since
        # when it has not moved. `expired`: dropped; a connection holding it looks again.
        self.mark = 0
        self.idle_since = 0.0
        self.expired = False

    def record(self, status: int, seconds: float) -> None:
        # Per request on every sidecar: as few operations as possible (status classes are
        # derived from the codes when a snapshot is taken, not counted here).
        codes = self.codes
        if status in codes:
            codes[status] += 1
        elif len(codes) < MAX_CODES:
            codes[status] = 1
        else:
            codes[0] = codes.get(0, 0) + 1
        self.buckets[_bisect(BUCKETS, seconds)] += 1
        self.sum += seconds

    @property
    def classes(self) -> list[int]:
        out = [0] * len(CLASSES)
        for status, n in self.codes.items():
            c = status // 100
            out[c if 0 < c < 6 else 0] += n
        return out

    @property
    def count(self) -> int:
        return sum(self.codes.values())


class ConnStats:
    """TCP proxy connections of one series (cluster, peer, destination workload/version)."""

    __slots__ = ("active", "closed", "expired", "idle_since", "mark", "opened", "rx", "tx")

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0
        self.active = 0
        self.rx = 0  # bytes from the client
        self.tx = 0  # bytes from the upstream
        self.mark = 0
        self.idle_since = 0.0
        self.expired = False


class ListenerStats:
    __slots__ = (
        "connections",
        "cx_active",
        "cx_total",
        "flags",
        "plaintext",
        "plaintext_rejected",
        "requests",
        "tls_failures",
        "tls_handshakes",
    )

    def __init__(self) -> None:
        self.cx_total = 0
        self.cx_active = 0
        self.flags: dict[str, int] = {}
        self.requests: dict[SeriesKey, RequestStats] = {}
        self.connections: dict[SeriesKey, ConnStats] = {}
        self.tls_handshakes = 0
        self.tls_failures = 0
        # Plaintext connections to a TLS listener by client address: accepted (PERMISSIVE)
        # or refused (STRICT); what `gossamer get mtls-report` shows operators.
        self.plaintext: dict[str, int] = {}
        self.plaintext_rejected: dict[str, int] = {}

    def count_plaintext(self, peer: str, accepted: bool) -> None:
        counts = self.plaintext if accepted else self.plaintext_rejected
        if peer in counts or len(counts) < MAX_SERIES:
            counts[peer] = counts.get(peer, 0) + 1

    def for_cluster(self, cluster: str) -> RequestStats:
        """The series of a cluster with no route, peer or endpoint (local replies)."""
        return self.for_series((cluster, "", "", "", ""))

    def for_series(self, key: SeriesKey) -> RequestStats:
        return _bounded(self.requests, key, RequestStats)

    def for_connection(self, key: SeriesKey) -> ConnStats:
        return _bounded(self.connections, key, ConnStats)

    def flag(self, flags: str) -> None:
        for f in flags.split(","):
            if f in self.flags or len(self.flags) < MAX_SERIES:
                self.flags[f] = self.flags.get(f, 0) + 1

    def expire(self, now: float, idle: float = IDLE_EXPIRY) -> None:
        """Drop the request and connection series that saw nothing for `idle` seconds."""
        for key in [k for k, rs in self.requests.items() if _idle(rs, rs.count, now, idle)]:
            self.requests.pop(key).expired = True
        for key in [
            k
            for k, cs in self.connections.items()
            if _idle(cs, cs.opened + cs.closed, now, idle) and not cs.active
        ]:
            self.connections.pop(key).expired = True


_OTHER_KEY: Final = (OTHER, OTHER, OTHER, OTHER, OTHER)
S = TypeVar("S", "RequestStats", "ConnStats")


def _bounded(table: dict[SeriesKey, S], key: SeriesKey, new: Callable[[], S]) -> S:
    """The series of `key`, created on first use; past MAX_SERIES, all new keys share one
    "other" series (the cardinality cap)."""
    series = table.get(key)
    if series is None:
        if len(table) >= MAX_SERIES:
            key = _OTHER_KEY
        series = table.get(key)
        if series is None:
            series = table[key] = new()
    return series


def _idle(s: RequestStats | ConnStats, count: int, now: float, idle: float) -> bool:
    if count != s.mark or not s.idle_since:
        s.mark = count
        s.idle_since = now
        return False
    return now - s.idle_since >= idle


class ClusterStats:
    __slots__ = (
        "connect_fail",
        "cx_active",
        "cx_total",
        "ejections",
        "overflow",
        "panic",
        "retries",
        "retry_active",
        "retry_budget_exhausted",
        "retry_overflow",
        "rq_active",
        "rq_pending",
        "tls_failures",
        "tls_handshakes",
        "tls_resumed",
    )

    def __init__(self) -> None:
        self.cx_total = 0
        self.cx_active = 0
        self.connect_fail = 0
        self.rq_active = 0
        self.rq_pending = 0  # sent (or being sent), no response head yet
        self.ejections = 0
        self.overflow = 0  # requests refused by a circuit breaker limit
        self.panic = 0  # picks made in panic (every endpoint failing its health checks)
        self.retries = 0
        self.retry_active = 0  # retries waiting (backoff) or in flight
        self.retry_budget_exhausted = 0  # retries the budget refused
        self.retry_overflow = 0  # retries the max_retries limit refused
        self.tls_handshakes = 0
        self.tls_resumed = 0  # handshakes that resumed a session (no certificate exchange)
        self.tls_failures = 0  # handshake or peer identity failures


class Stats:
    """All the counters of one process."""

    def __init__(self) -> None:
        self.listeners: dict[str, ListenerStats] = {}
        self.clusters: dict[str, ClusterStats] = {}
        self.config_applies = 0
        # Authorization: destination → source identity → count.
        self.authz_denied: dict[str, dict[str, int]] = {}
        self.authz_shadow_denied: dict[str, dict[str, int]] = {}

    def authz(self, shadow: bool, source: str | None, destination: str) -> None:
        table = self.authz_shadow_denied if shadow else self.authz_denied
        by_source = table.get(destination)
        if by_source is None:
            if len(table) >= MAX_SERIES:
                destination = OTHER
            by_source = table.setdefault(destination, {})
        key = source or "unauthenticated"
        if key not in by_source and len(by_source) >= MAX_SERIES:
            key = OTHER
        by_source[key] = by_source.get(key, 0) + 1

    def listener(self, name: str) -> ListenerStats:
        ls = self.listeners.get(name)
        if ls is None:
            if len(self.listeners) >= MAX_SERIES:
                name = OTHER
            ls = self.listeners.setdefault(name, ListenerStats())
        return ls

    def cluster(self, name: str) -> ClusterStats:
        cs = self.clusters.get(name)
        if cs is None:
            if len(self.clusters) >= MAX_SERIES:
                name = OTHER
            cs = self.clusters.setdefault(name, ClusterStats())
        return cs

    def snapshot(self) -> dict[str, Any]:
        """Plain data (picklable, JSON-able) that `merge` and the renderers take."""
        return {
            "listeners": {
                name: {
                    "cx_total": ls.cx_total,
                    "cx_active": ls.cx_active,
                    "flags": dict(ls.flags),
                    "tls_handshakes": ls.tls_handshakes,
                    "tls_failures": ls.tls_failures,
                    "plaintext": dict(ls.plaintext),
                    "plaintext_rejected": dict(ls.plaintext_rejected),
                    "requests": {
                        SEP.join(key): {
                            "classes": list(rs.classes),
                            "codes": {str(c): n for c, n in rs.codes.items()},
                            "buckets": list(rs.buckets),
                            "sum": rs.sum,
                            "rx": rs.rx,
                            "tx": rs.tx,
                        }
                        for key, rs in ls.requests.items()
                    },
                    "connections": {
                        SEP.join(key): {
                            "opened": cs.opened,
                            "closed": cs.closed,
                            "rx": cs.rx,
                            "tx": cs.tx,
                        }
                        for key, cs in ls.connections.items()
                    },
                }
                for name, ls in self.listeners.items()
            },
            "clusters": {
                name: {
                    "cx_total": cs.cx_total,
                    "cx_active": cs.cx_active,
                    "connect_fail": cs.connect_fail,
                    "rq_active": cs.rq_active,
                    "rq_pending": cs.rq_pending,
                    "ejections": cs.ejections,
                    "overflow": cs.overflow,
                    "panic": cs.panic,
                    "retries": cs.retries,
                    "retry_budget_exhausted": cs.retry_budget_exhausted,
                    "retry_overflow": cs.retry_overflow,
                    "tls_failures": cs.tls_failures,
                    "tls_handshakes": cs.tls_handshakes,
                    "tls_resumed": cs.tls_resumed,
                }
                for name, cs in self.clusters.items()
            },
            "config_applies": self.config_applies,
            "authz_denied": {d: dict(s) for d, s in self.authz_denied.items()},
            "authz_shadow_denied": {d: dict(s) for d, s in self.authz_shadow_denied.items()},
        }


def _add(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping):
            _add(into.setdefault(key, {}), value)
        elif isinstance(value, list):
            mine = into.setdefault(key, [0] * len(value))
            for i, v in enumerate(value):
                mine[i] += v
        elif key == "config_applies":
            into[key] = max(into.get(key, 0), value)  # each process applies the same configs
        else:
            into[key] = into.get(key, 0) + value


def merge(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the snapshots of several processes."""
    out: dict[str, Any] = {"listeners": {}, "clusters": {}, "config_applies": 0}
    for snap in snapshots:
        _add(out, snap)
    return out


def summary(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The /stats JSON: readable totals per listener and cluster."""
    listeners = {}
    for name, ls in sorted(snapshot["listeners"].items()):
        requests = {}
        for cluster, rs in sorted(_by_cluster(ls["requests"]).items()):
            total = sum(rs["classes"])
            requests[cluster] = {
                "total": total,
                **{cls: n for cls, n in zip(CLASSES, rs["classes"], strict=True) if n},
                "mean_ms": round(rs["sum"] / total * 1000, 3) if total else 0.0,
            }
        listeners[name] = {
            "downstream_cx_total": ls["cx_total"],
            "downstream_cx_active": ls["cx_active"],
            "requests": requests,
            "response_flags": dict(sorted(ls["flags"].items())),
            "tls_handshakes": ls.get("tls_handshakes", 0),
            "tls_failures": ls.get("tls_failures", 0),
            "plaintext_clients": dict(sorted(ls.get("plaintext", {}).items())),
            "plaintext_rejected": dict(sorted(ls.get("plaintext_rejected", {}).items())),
        }
    clusters = {
        name: {
            "upstream_cx_total": cs["cx_total"],
            "upstream_cx_active": cs["cx_active"],
            "upstream_cx_connect_fail": cs["connect_fail"],
            "upstream_rq_active": cs["rq_active"],
            "upstream_rq_pending": cs.get("rq_pending", 0),
            "outlier_ejections": cs["ejections"],
            "circuit_breaker_overflow": cs.get("overflow", 0),
            "lb_healthy_panic": cs.get("panic", 0),
            "retry_budget_exhausted": cs.get("retry_budget_exhausted", 0),
            "retry_overflow": cs.get("retry_overflow", 0),
            "upstream_rq_retry": cs.get("retries", 0),
            "upstream_tls_failures": cs.get("tls_failures", 0),
            "upstream_tls_handshakes": cs.get("tls_handshakes", 0),
            "upstream_tls_resumed": cs.get("tls_resumed", 0),
        }
        for name, cs in sorted(snapshot["clusters"].items())
    }
    return {
        "listeners": listeners,
        "clusters": clusters,
        "config_applies": snapshot["config_applies"],
        "authz_denied": snapshot.get("authz_denied", {}),
        "authz_shadow_denied": snapshot.get("authz_shadow_denied", {}),
    }


def _by_cluster(series: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Request series summed per cluster (the /stats JSON's view)."""
    out: dict[str, dict[str, Any]] = {}
    for key, rs in series.items():
        _add(out.setdefault(key.split(SEP, 1)[0], {}), rs)
    return out


UNKNOWN: Final = "unknown"


@dataclass(frozen=True)
class Identity:
    namespace: str = UNKNOWN
    service: str = UNKNOWN
    workload: str = UNKNOWN
    version: str = UNKNOWN


@dataclass(frozen=True)
class Labels:
    """What rendering the golden labels needs beyond a snapshot, all from the config and
    the node: this workload's identity, each listener's direction, each cluster's service."""

    local: Identity = Identity()
    directions: Mapping[str, str] = field(default_factory=dict)  # listener -> in/outbound
    services: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # cluster -> ns, svc

    def golden(self, listener: str, key: str) -> dict[str, str]:
        parts = key.split(SEP)
        if len(parts) != 5:  # not a series key (an older snapshot): the cluster alone
            parts = [key, "", "", "", ""]
        cluster, route, peer, workload, version = parts
        direction = self.directions.get(listener, UNKNOWN)
        if cluster in (NO_CLUSTER, OTHER):
            dest_ns, dest_svc = UNKNOWN, UNKNOWN
        else:
            dest_ns, dest_svc = self.services.get(cluster, (UNKNOWN, cluster))
        local = self.local
        if direction == "inbound":
            src_ns, src_svc = _peer(peer)
            source = Identity(src_ns, src_svc, UNKNOWN, UNKNOWN)
            dest = Identity(local.namespace, local.service, local.workload, local.version)
            if dest_svc != UNKNOWN:
                dest = Identity(dest_ns, dest_svc, local.workload, local.version)
        else:
            source = local
            dest = Identity(dest_ns, dest_svc, workload or UNKNOWN, version or UNKNOWN)
        return {
            "listener": listener,
            "cluster": cluster,
            "direction": direction,
            "source_namespace": source.namespace,
            "source_service": source.service,
            "source_workload": source.workload,
            "source_version": source.version,
            "destination_namespace": dest.namespace,
            "destination_service": dest.service,
            "destination_workload": dest.workload,
            "destination_version": dest.version,
            "route": route or UNKNOWN,
        }


def _peer(peer: str) -> tuple[str, str]:
    """(namespace, service account) of a verified SPIFFE id; unknown in plaintext."""
    if not peer:
        return UNKNOWN, UNKNOWN
    try:
        sid = SpiffeId.parse(peer)
    except ValueError:
        return UNKNOWN, OTHER if peer == OTHER else UNKNOWN
    return sid.namespace, sid.service_account


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(
    snapshot: Mapping[str, Any],
    gauges: Mapping[str, float] | None = None,
    labels: Labels | None = None,
    info: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """The Prometheus text exposition (version 0.0.4) of a snapshot. `info`: metric name
    -> labels of a gauge whose value is 1 (e.g. the xDS versions in use)."""
    labels = labels or Labels()
    out: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")

    def sample(name: str, labels: Mapping[str, str], value: float) -> None:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        out.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")

    listeners = sorted(snapshot["listeners"].items())
    clusters = sorted(snapshot["clusters"].items())
    for metric, key, kind, help_ in _LISTENER_FAMILIES:
        family(metric, kind, help_)
        for name, ls in listeners:
            sample(metric, {"listener": name}, ls.get(key, 0))
    family(
        "gossamer_requests_total",
        "counter",
        "Requests by direction, source, destination, route, status code and class.",
    )
    series = [
        (labels.golden(name, key), rs)
        for name, ls in listeners
        for key, rs in sorted(ls["requests"].items())
    ]
    for golden, rs in series:
        for code, n in sorted(rs.get("codes", {}).items(), key=lambda item: int(item[0])):
            c = int(code) // 100
            cls = CLASSES[c if 0 < c < 6 else 0]
            sample("gossamer_requests_total", {**golden, "code": code, "class": cls}, n)
    hist = "gossamer_request_duration_seconds"
    family(hist, "histogram", "Request latency as the client sees it.")
    for golden, rs in series:
        cumulative = 0
        for bound, n in zip((*BUCKETS, "+Inf"), rs["buckets"], strict=True):
            cumulative += n
            sample(f"{hist}_bucket", {**golden, "le": str(bound)}, cumulative)
        sample(f"{hist}_sum", golden, round(rs["sum"], 6))
        sample(f"{hist}_count", golden, cumulative)
    for metric, key, help_ in (
        ("gossamer_request_bytes_total", "rx", "Request bytes (head and body) from clients."),
        ("gossamer_response_bytes_total", "tx", "Response bytes from upstreams."),
    ):
        family(metric, "counter", help_)
        for golden, rs in series:
            sample(metric, golden, rs.get(key, 0))
    tcp = [
        (labels.golden(name, key), cs)
        for name, ls in listeners
        for key, cs in sorted(ls.get("connections", {}).items())
    ]
    for metric, key, help_ in (
        ("gossamer_tcp_connections_opened_total", "opened", "TCP proxy connections opened."),
        ("gossamer_tcp_connections_closed_total", "closed", "TCP proxy connections closed."),
        ("gossamer_tcp_received_bytes_total", "rx", "TCP proxy bytes from clients."),
        ("gossamer_tcp_sent_bytes_total", "tx", "TCP proxy bytes from upstreams."),
    ):
        family(metric, "counter", help_)
        for golden, cs in tcp:
            sample(metric, golden, cs.get(key, 0))
    family("gossamer_response_flags_total", "counter", "Local replies and errors by flag.")
    for name, ls in listeners:
        for flag, n in sorted(ls["flags"].items()):
            sample("gossamer_response_flags_total", {"listener": name, "flag": flag}, n)
    family("gossamer_plaintext_connections_total", "counter", "Plaintext clients of TLS listeners.")
    for name, ls in listeners:
        for key, outcome in (("plaintext", "accepted"), ("plaintext_rejected", "rejected")):
            for peer, n in sorted(ls.get(key, {}).items()):
                sample(
                    "gossamer_plaintext_connections_total",
                    {"listener": name, "source": peer, "outcome": outcome},
                    n,
                )
    for metric, key, kind, help_ in _CLUSTER_FAMILIES:
        family(metric, kind, help_)
        for name, cs in clusters:
            sample(metric, {"cluster": name}, cs.get(key, 0))
    for metric, key, help_ in (
        ("gossamer_authz_denied_total", "authz_denied", "Requests and connections denied."),
        (
            "gossamer_authz_shadow_denied_total",
            "authz_shadow_denied",
            "Requests shadow-mode policies would deny (allowed).",
        ),
    ):
        family(metric, "counter", help_)
        for destination, by_source in sorted(snapshot.get(key, {}).items()):
            for source, n in sorted(by_source.items()):
                sample(metric, {"source": source, "destination": destination}, n)
    family("gossamer_config_applies_total", "counter", "Configurations applied.")
    sample("gossamer_config_applies_total", {}, snapshot["config_applies"])
    for name, value in sorted((gauges or {}).items()):
        family(name, "gauge", name.replace("_", " "))
        sample(name, {}, value)
    for name, info_labels in sorted((info or {}).items()):
        family(name, "gauge", name.replace("_", " "))
        sample(name, info_labels, 1)
    return "\n".join(out) + "\n"


_LISTENER_FAMILIES: Final = (
    ("gossamer_downstream_connections_total", "cx_total", "counter", "Connections accepted."),
    ("gossamer_downstream_connections_active", "cx_active", "gauge", "Connections open."),
    ("gossamer_downstream_tls_handshakes_total", "tls_handshakes", "counter", "TLS accepted."),
    ("gossamer_downstream_tls_failures_total", "tls_failures", "counter", "TLS failed."),
)
_CLUSTER_FAMILIES: Final = (
    ("gossamer_upstream_connections_total", "cx_total", "counter", "Upstream connections opened."),
    ("gossamer_upstream_connections_active", "cx_active", "gauge", "Upstream connections open."),
    ("gossamer_upstream_connect_failures_total", "connect_fail", "counter", "Connects failed."),
    ("gossamer_upstream_requests_active", "rq_active", "gauge", "Requests in flight upstream."),
    ("gossamer_outlier_ejections_total", "ejections", "counter", "Endpoints ejected."),
    ("gossamer_upstream_requests_pending", "rq_pending", "gauge", "Requests awaiting a response."),
    (
        "gossamer_circuit_breaker_overflow_total",
        "overflow",
        "counter",
        "Requests refused by a circuit breaker limit.",
    ),
    ("gossamer_retries_total", "retries", "counter", "Retries sent upstream."),
    (
        "gossamer_lb_healthy_panic_total",
        "panic",
        "counter",
        "Picks among endpoints all failing their health checks.",
    ),
    (
        "gossamer_retry_budget_exhausted_total",
        "retry_budget_exhausted",
        "counter",
        "Retries refused by the retry budget.",
    ),
    (
        "gossamer_retry_overflow_total",
        "retry_overflow",
        "counter",
        "Retries refused by the max_retries limit.",
    ),
    ("gossamer_upstream_tls_handshakes_total", "tls_handshakes", "counter", "TLS handshakes."),
    ("gossamer_upstream_tls_resumed_total", "tls_resumed", "counter", "TLS sessions resumed."),
    ("gossamer_upstream_tls_failures_total", "tls_failures", "counter", "TLS/identity failures."),
)
