"""The Runtime: one process's data path, driven by successive ProxyConfigs.

`apply(config)` swaps the whole configuration atomically from the data path's point of
view: cluster runtime state is updated first (make before break), then every listener
gets a new context object; a connection reads its listener's context once per request,
so a request in flight keeps the config it started with. Listeners are reconciled by
name: a listener that stays at the same address keeps its socket and its connections
whatever else changed; a new one is bound; a removed one stops accepting and drains its
connections (idle ones close now, busy ones after their response). A route or endpoint
change therefore never drops a listener or a connection.

Runtime state that must survive swaps (balancer state, pools, outlier ejections) lives
in ClusterRuntime objects keyed by cluster name, and EndpointStates keyed by address.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from gossamer.core.logs import get_logger
from gossamer.proxy.cluster import ClusterRuntime
from gossamer.proxy.config import model as m
from gossamer.proxy.context import DEFAULT_HEADER_TIMEOUT, Context, HttpContext, TcpContext
from gossamer.proxy.filters.authz import authorizer
from gossamer.proxy.filters.ratelimit import TokenBucket
from gossamer.proxy.filters.route import CompiledTable
from gossamer.proxy.filters.stats import Stats
from gossamer.proxy.io.clock import Ticker
from gossamer.proxy.io.health import HealthCheckers
from gossamer.proxy.io.http import Pool
from gossamer.proxy.io.listener import ListenerHandle
from gossamer.proxy.io.tls import ClientTls, ServerTls, TlsError, TlsFactory
from gossamer.proxy.telemetry import Telemetry

log = get_logger("proxy.runtime")


def _destination(config: m.ProxyConfig, clusters: list[str], fallback: str) -> str:
    """`namespace/service` of the local app behind an inbound listener (metrics label)."""
    for name in clusters:
        meta = config.clusters[name].metadata if name in config.clusters else {}
        if meta.get("service"):
            return f"{meta.get('namespace', 'default')}/{meta['service']}"
    return fallback


class Runtime:
    def __init__(
        self,
        stats: Stats | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        reuse_port: bool = True,
        ticker: Ticker | None = None,
        worker: int = 0,
        request_metrics: bool = True,
    ) -> None:
        self.stats = stats or Stats()
        # False: no request metrics series (the `--request-metrics off` switch).
        self.request_metrics = request_metrics
        self.rng = rng or random.Random()
        self.clock = clock
        self.header_timeout = header_timeout
        self.reuse_port = reuse_port
        self.ticker = ticker or Ticker()
        self.worker = worker
        self.config: m.ProxyConfig | None = None
        self.clusters: dict[str, ClusterRuntime] = {}
        self.listeners: dict[str, ListenerHandle] = {}
        self.listener_errors: dict[str, str] = {}
        self.retired: set[ListenerHandle] = set()  # removed listeners still draining
        self.applied_at = 0.0
        self.draining = False
        self._tables: dict[int, tuple[m.RouteTable, CompiledTable]] = {}
        # A listener's token bucket keeps its tokens across config swaps that keep its limit.
        self._buckets: dict[str, TokenBucket] = {}
        self.health = HealthCheckers(self.rng)
        self.tls = TlsFactory()
        self.telemetry = Telemetry(self.rng)  # span exporters and access log files
        self._lock = asyncio.Lock()
        self._started = False

    def start(self) -> None:
        """Start the timers (needs the running loop)."""
        if not self._started:
            self._started = True
            self.ticker.housekeeping.append(self._housekeeping)
            self.ticker.start()

    # --- config swap -------------------------------------------------------------------

    async def apply(self, config: m.ProxyConfig) -> None:
        async with self._lock:
            self.start()
            self._apply_clusters(config)
            self.health.reconcile(self.clusters)
            await self._apply_listeners(config)
            self.config = config
            self.applied_at = time.time()
            self.stats.config_applies += 1

    def _apply_clusters(self, config: m.ProxyConfig) -> None:
        clusters: dict[str, ClusterRuntime] = {}
        for name, cluster in config.clusters.items():
            runtime = self.clusters.get(name)
            if runtime is None:
                runtime = ClusterRuntime(
                    cluster, self.stats.cluster(name), Pool, self.rng, self.clock
                )
            elif runtime.config is not cluster:
                runtime.update(cluster)
            tls, runtime.tls_error = self._client_tls(cluster, config)
            if runtime.tls is not None and (tls is None or tls.context is not runtime.tls.context):
                # A renewed certificate or bundle: idle connections made with the old one
                # close, so new requests handshake with the new one (busy ones finish).
                for state in runtime.endpoints.values():
                    if state.pool is not None and state.tls:
                        state.pool.close_idle()
            runtime.tls = tls
            clusters[name] = runtime
        for name, runtime in self.clusters.items():
            if name not in clusters:
                runtime.retire()
        # A new dict: contexts of the previous config keep the old mapping.
        self.clusters = clusters

    def _client_tls(
        self, cluster: m.Cluster, config: m.ProxyConfig
    ) -> tuple[ClientTls | None, str]:
        if cluster.tls is None:
            return None, ""
        try:
            return self.tls.client(cluster.tls, config.secrets), ""
        except (TlsError, OSError, ValueError) as exc:
            # Never plaintext instead: connections to TLS endpoints fail until it is here.
            return None, str(exc)

    def _table(self, table: m.RouteTable | None) -> CompiledTable | None:
        if table is None:
            return None
        cached = self._tables.get(id(table))
        if cached is not None and cached[0] is table:
            return cached[1]
        compiled = CompiledTable(table)
        self._tables[id(table)] = (table, compiled)
        return compiled

    def _context(self, listener: m.Listener, config: m.ProxyConfig) -> Context:
        stats = self.stats.listener(listener.name)
        handler = listener.handler
        if isinstance(handler, m.TcpProxy):
            authz = None
            if handler.rbac:
                dest = _destination(config, [c.name for c in handler.clusters], listener.name)
                authz = authorizer(handler.rbac, dest, self.stats)
            limit = self._bucket_for(listener.name, listener.connection_limit)
            return TcpContext(
                listener, self.clusters, stats, self.rng, authz, limit, self.request_metrics
            )
        table = handler.route_table
        if table is None and handler.route_config_name is not None:
            table = config.routes.get(handler.route_config_name)
        rbac = [f.config for f in handler.filters if isinstance(f.config, m.RbacFilter)]
        authz = None
        if rbac:
            names = [
                c.name
                for vh in (table.virtual_hosts if table is not None else ())
                for r in vh.routes
                if isinstance(r.action, m.RouteAction)
                for c in r.action.clusters
            ]
            authz = authorizer(rbac, _destination(config, names, listener.name), self.stats)
        return HttpContext(
            listener,
            self._table(table),
            self.clusters,
            stats,
            self.rng,
            self.header_timeout,
            authz,
            self._bucket(listener.name, handler),
            self.request_metrics,
            self.telemetry.tracer(listener, config),
            self.telemetry.loggers(listener),
        )

    def _bucket(self, name: str, hcm: m.HttpConnectionManager) -> TokenBucket | None:
        config = next(
            (f.config for f in hcm.filters if isinstance(f.config, m.LocalRateLimitConfig)), None
        )
        return self._bucket_for(name, config)

    def _bucket_for(self, name: str, config: m.LocalRateLimitConfig | None) -> TokenBucket | None:
        bucket = self._buckets.get(name)
        if config is None:
            self._buckets.pop(name, None)
            return None
        if bucket is None or bucket.config != config:
            bucket = self._buckets[name] = TokenBucket(config, self.clock())
        return bucket

    async def _apply_listeners(self, config: m.ProxyConfig) -> None:
        previous_tables = self._tables
        self._tables = {}
        # Reuse compiled tables of unchanged route configurations (same objects).
        for table_id, (table, compiled) in previous_tables.items():
            if any(t is table for t in config.routes.values()):
                self._tables[table_id] = (table, compiled)
        old = self.listeners
        new: dict[str, ListenerHandle] = {}
        self.telemetry.begin()
        errors: dict[str, str] = {}
        for name, listener in config.listeners.items():
            tls: ServerTls | None = None
            if listener.tls is not None:
                try:
                    tls = self.tls.server(listener.tls, config.secrets)
                except (TlsError, OSError, ValueError) as exc:
                    # Never serve in plaintext what the config says is TLS.
                    errors[name] = f"not listening: {exc}"
                    if name in old and old[name].tls is not None:
                        new[name] = old[name]  # keeps its last good certificate
                        old = {n: h for n, h in old.items() if n != name}
                    continue
            key = (listener.address, listener.port, tls is not None)
            ctx = self._context(listener, config)
            handle = old.get(name)
            if handle is not None and handle.key == key:
                handle.ctx = ctx  # the swap: the next request or connection sees it
                handle.tls = tls  # a renewed certificate: new connections get it
                new[name] = handle
                continue
            if handle is None:
                # A renamed listener at the same address keeps its socket too.
                handle = next(
                    (h for n, h in old.items() if n not in config.listeners and h.key == key),
                    None,
                )
                if handle is not None:
                    old = {n: h for n, h in old.items() if h is not handle}
                    handle.name = name
                    handle.stats = self.stats.listener(name)
                    handle.ctx = ctx
                    handle.tls = tls
                    new[name] = handle
                    continue
            if handle is not None and not self.reuse_port:
                # Same address, plaintext <-> TLS: the old socket must go first.
                handle.drain()
                self.retired.add(handle)
                old = {n: h for n, h in old.items() if h is not handle}
                handle = None
            fresh = ListenerHandle(name, ctx, self.ticker, self.stats.listener(name), tls)
            try:
                await fresh.start(self.reuse_port)
            except OSError as exc:
                errors[name] = (
                    f"cannot listen on {listener.address}:{listener.port}: {exc.strerror or exc}"
                )
                log.error("listener failed", listener=name, error=errors[name])
                if handle is not None:
                    new[name] = handle  # keep serving at the old address
                continue
            if self.draining:
                fresh.drain()
            new[name] = fresh
            log.debug("listener added", listener=name, address=f"{fresh.address}:{fresh.port}")
        for name, handle in old.items():
            if new.get(name) is not handle:
                log.debug("listener removed", listener=name)
                handle.drain()
                self.retired.add(handle)
        self.listeners = new
        self.telemetry.end()
        self.listener_errors = errors
        self.tls.retain(
            [h.tls.context for h in new.values() if h.tls is not None],
            [c.tls.context for c in self.clusters.values() if c.tls is not None],
        )

    # --- lifecycle ---------------------------------------------------------------------

    def drain(self) -> None:
        """Stop accepting everywhere; connections finish their current exchange."""
        self.draining = True
        for handle in (*self.listeners.values(), *self.retired):
            handle.drain()

    @property
    def connections(self) -> int:
        return sum(h.active for h in (*self.listeners.values(), *self.retired))

    async def shutdown(self, timeout: float) -> None:
        """Drain, wait up to `timeout` for connections to finish, then close the rest."""
        self.drain()
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for handle in (*self.listeners.values(), *self.retired):
            handle.abort_all()
        for cluster in self.clusters.values():
            cluster.retire()
        await self.health.stop()
        await self.telemetry.close()
        self.ticker.stop()

    def _housekeeping(self, now: float) -> None:
        self.telemetry.flush()  # access log lines reach their file within a second
        for cluster in self.clusters.values():
            cluster.housekeeping(now)
        for listener in self.stats.listeners.values():
            listener.expire(now)
        for handle in list(self.retired):
            if not handle.active:
                self.retired.discard(handle)

    # --- introspection -----------------------------------------------------------------

    def listener_addresses(self) -> Mapping[str, str]:
        return {name: f"{h.address}:{h.port}" for name, h in self.listeners.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "listeners": [h.describe() for h in self.listeners.values()],
            "listenerErrors": dict(self.listener_errors),
            "connections": self.connections,
            "draining": self.draining,
            "telemetry": self.telemetry.describe(),
        }
