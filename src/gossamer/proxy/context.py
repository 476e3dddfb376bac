"""What a listener's connections read per request: one immutable object per config.

The Runtime builds a context for each listener on every config swap and stores it on
the listener's handle; a connection reads `handle.ctx` once when a request (or a TCP
connection) starts and keeps that object to the end, so requests in flight finish on
the config they started with. Everything here is computed at config time.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping

from gossamer.protocols.http1 import Limits
from gossamer.proxy.cluster import ClusterRuntime
from gossamer.proxy.config import model as m
from gossamer.proxy.filters.accesslog import AccessLogger
from gossamer.proxy.filters.authz import Authorizer
from gossamer.proxy.filters.fault import FaultInjector
from gossamer.proxy.filters.ratelimit import TokenBucket
from gossamer.proxy.filters.route import CompiledTable
from gossamer.proxy.filters.stats import ListenerStats
from gossamer.proxy.filters.trace import Tracer

DEFAULT_HEADER_TIMEOUT = 10.0


class HttpContext:
    __slots__ = (
        "access_logs",
        "authz",
        "clusters",
        "fault",
        "generate_request_id",
        "guarded",
        "header_timeout",
        "idle_timeout",
        "limits",
        "listener",
        "name",
        "observed",
        "ratelimit",
        "request_metrics",
        "rng",
        "stats",
        "stream_idle_timeout",
        "table",
        "tracer",
        "xff",
    )

    def __init__(
        self,
        listener: m.Listener,
        table: CompiledTable | None,
        clusters: Mapping[str, ClusterRuntime],
        stats: ListenerStats,
        rng: random.Random,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        authz: Authorizer | None = None,
        ratelimit: TokenBucket | None = None,
        request_metrics: bool = True,
        tracer: Tracer | None = None,
        access_logs: tuple[AccessLogger, ...] = (),
    ) -> None:
        hcm = listener.handler
        assert isinstance(hcm, m.HttpConnectionManager)
        self.tracer = tracer
        self.access_logs = access_logs
        # Tracing or access logs: the exchange keeps what they need (one test when off).
        self.observed = tracer is not None or bool(access_logs)
        self.authz = authz
        self.listener = listener
        self.name = listener.name
        self.table = table
        self.clusters = clusters
        self.stats = stats
        self.request_metrics = request_metrics  # series by route, peer, endpoint
        self.rng = rng
        self.generate_request_id = hcm.generate_request_id
        self.xff = hcm.xff_append
        self.header_timeout = header_timeout
        self.idle_timeout = hcm.idle_timeout or 3600.0
        self.stream_idle_timeout = hcm.stream_idle_timeout or 300.0
        self.limits = Limits(max_head_bytes=hcm.max_request_headers_kb * 1024)
        # Inbound guards, checked before routing (one attribute test when there are none).
        self.ratelimit = ratelimit
        self.fault: FaultInjector | None = None
        for f in hcm.filters:
            if isinstance(f.config, m.FaultConfig):
                self.fault = FaultInjector(f.config, rng)
        self.guarded = self.ratelimit is not None or self.fault is not None


class TcpContext:
    __slots__ = (
        "authz",
        "by_sni",
        "cluster_names",
        "clusters",
        "connection_limit",
        "cumulative",
        "idle_timeout",
        "listener",
        "name",
        "request_metrics",
        "rng",
        "sni_port",
        "sni_routing",
        "stats",
        "total",
    )

    def __init__(
        self,
        listener: m.Listener,
        clusters: Mapping[str, ClusterRuntime],
        stats: ListenerStats,
        rng: random.Random,
        authz: Authorizer | None = None,
        connection_limit: TokenBucket | None = None,
        request_metrics: bool = True,
    ) -> None:
        proxy = listener.handler
        assert isinstance(proxy, m.TcpProxy)
        self.authz = authz
        self.connection_limit = connection_limit
        self.listener = listener
        self.name = listener.name
        self.clusters = clusters
        self.stats = stats
        self.request_metrics = request_metrics
        self.rng = rng
        self.cluster_names = tuple(c.name for c in proxy.clusters)
        cumulative, total = [], 0
        for c in proxy.clusters:
            total += c.weight
            cumulative.append(total)
        self.cumulative = tuple(proxy.cumulative or cumulative)
        self.total = proxy.total_weight or total
        self.idle_timeout = proxy.idle_timeout or 3600.0
        self.sni_routing = proxy.sni_routing
        self.sni_port = proxy.sni_port
        self.by_sni = {
            server: (tuple(c.name for c in cs), _cumulative(cs))
            for server, cs in proxy.by_sni.items()
        }

    def pick_cluster(self, server_name: str | None = None) -> str | None:
        """One random draw against the cumulative weights (per connection); on an SNI
        listener, among the clusters of the server name's chain (None: no chain)."""
        names, cumulative = self.cluster_names, self.cumulative
        if self.sni_routing and server_name is not None and server_name in self.by_sni:
            names, cumulative = self.by_sni[server_name]
        if not names:
            return None
        if len(names) == 1:
            return names[0]
        return names[bisect.bisect_right(cumulative, self.rng.randrange(cumulative[-1]))]


def _cumulative(clusters: tuple[m.WeightedCluster, ...]) -> tuple[int, ...]:
    out, total = [], 0
    for c in clusters:
        total += c.weight
        out.append(total)
    return tuple(out)


Context = HttpContext | TcpContext
