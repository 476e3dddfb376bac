"""A cluster's runtime state: endpoints (with their pools), balancer, outlier detection.

Owned by the Runtime and keyed by cluster name; a config swap updates it in place
(`update`) so endpoint state (requests in flight, latency estimates, ejections, pooled
connections) carries over for every endpoint that stays, keyed by (address, port).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from gossamer.proxy.config import model as m
from gossamer.proxy.filters.balance import Balancer, EndpointState, make_balancer
from gossamer.proxy.filters.outlier import OutlierDetector
from gossamer.proxy.filters.retry import RetryBudget
from gossamer.proxy.filters.stats import ClusterStats
from gossamer.proxy.io.tls import ClientTls

MAX_PASSTHROUGH_ENDPOINTS = 256
PoolFactory = Callable[[EndpointState, "ClusterRuntime"], Any]


class ClusterRuntime:
    __slots__ = (
        "_clock",
        "_pool_factory",
        "_rng",
        "balancer",
        "budget",
        "config",
        "endpoints",
        "max_connections",
        "max_pending",
        "max_requests",
        "max_retries",
        "name",
        "observe_latency",
        "outlier",
        "passthrough",
        "stats",
        "tls",
        "tls_error",
    )

    def __init__(
        self,
        config: m.Cluster,
        stats: ClusterStats,
        pool_factory: PoolFactory,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = config.name
        self.stats = stats
        self._pool_factory = pool_factory
        self._rng = rng
        self._clock = clock
        self.endpoints: dict[tuple[str, int], EndpointState] = {}
        # The TLS this cluster originates (set by the Runtime from the config's secrets);
        # tls_error says why it is missing when the config asks for TLS.
        self.tls: ClientTls | None = None
        self.tls_error = ""
        self.config = config
        self.passthrough = config.kind == "original_dst"
        self.outlier = OutlierDetector(config.outlier)
        self.balancer: Balancer = make_balancer(config, (), rng, clock)
        self.budget = RetryBudget()  # survives config swaps, like endpoint state
        self._limits(config)
        self.observe_latency = config.lb_policy == "peak_ewma"
        self.update(config, force=True)

    def update(self, config: m.Cluster, force: bool = False) -> None:
        """Take a new version of the cluster's config, keeping endpoint state."""
        old = self.config
        self.config = config
        self.passthrough = config.kind == "original_dst"
        self._limits(config)
        self.observe_latency = config.lb_policy == "peak_ewma"
        if config.outlier != old.outlier:
            self.outlier.config = config.outlier
        if not force and config.endpoints == old.endpoints and _same_lb(config, old):
            self._mark_tls()
            return
        states: dict[tuple[str, int], EndpointState] = {}
        for ep in config.endpoints:
            key = (ep.address, ep.port)
            if key in states:  # the same address twice: one endpoint, weights added
                states[key].weight += max(1, ep.weight)
                continue
            state = self.endpoints.get(key)
            if state is None:
                state = EndpointState.from_endpoint(ep)
                state.pool = self._pool_factory(state, self)
            else:
                state.update(ep)
            states[key] = state
        for key, state in self.endpoints.items():
            if key not in states and state.pool is not None:
                state.pool.close_idle(retire=True)
        self.endpoints = states
        self._mark_tls()
        self.balancer = make_balancer(config, list(states.values()), self._rng, self._clock)

    def _limits(self, config: m.Cluster) -> None:
        breaker = config.circuit_breaker
        self.max_requests = breaker.max_requests
        self.max_pending = breaker.max_pending_requests
        self.max_connections = breaker.max_connections
        self.max_retries = breaker.max_retries

    def _mark_tls(self) -> None:
        """Which endpoints get TLS: all, or those matching transport_socket_matches."""
        config = self.config
        match = config.tls_match
        by_key = {(ep.address, ep.port): ep for ep in config.endpoints}
        for key, state in self.endpoints.items():
            if config.tls is None:
                state.tls = False
            elif match is None:
                state.tls = True
            else:
                ep = by_key.get(key)
                sm = ep.socket_match if ep is not None else {}
                state.tls = all(sm.get(k) == v for k, v in match.items())

    def pick(self, hash_key: int | None = None) -> EndpointState | None:
        ep = self.balancer.pick(hash_key)
        if ep is None and self.config.health_check is not None:
            return self._panic()
        return ep

    def _panic(self) -> EndpointState | None:
        """Every endpoint fails its active checks (a wrong check path, or the checker's
        own network): spread over the ones EDS says are up rather than refuse every call
        (Envoy's panic mode, at its extreme)."""
        up = [ep for ep in self.endpoints.values() if ep.healthy and ep.hc_failed]
        if not up or any(ep.available for ep in self.endpoints.values()):
            return None
        self.stats.panic += 1
        return up[self._rng.randrange(len(up))]

    def endpoint_for(self, authority: bytes) -> EndpointState | None:
        """Passthrough (ORIGINAL_DST from the request's authority): the endpoint is the
        host:port the app asked for (port 80 by default), made on first use and kept
        with its pool; bounded, as authorities come from apps."""
        text = authority.decode("latin-1")
        if text.startswith("["):  # an IPv6 literal
            host, _, rest = text[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = text.partition(":")
        port = int(port_text) if port_text.isdigit() else 80 if not port_text else 0
        if not host or not 0 < port < 65536:
            return None
        key = (host, port)
        state = self.endpoints.get(key)
        if state is None:
            if len(self.endpoints) >= MAX_PASSTHROUGH_ENDPOINTS:
                for old_key, old in list(self.endpoints.items()):
                    if not old.active and old.pool is not None:
                        old.pool.close_idle(retire=True)
                        del self.endpoints[old_key]
                if len(self.endpoints) >= MAX_PASSTHROUGH_ENDPOINTS:
                    return None
            state = EndpointState(host, port)
            state.pool = self._pool_factory(state, self)
            self.endpoints[key] = state
        return state

    def record(self, ep: EndpointState, status: int, now: float) -> None:
        """One result for outlier detection (only called when it is configured)."""
        if self.outlier.record(ep, status, now, self.balancer.endpoints):
            self.stats.ejections += 1

    def housekeeping(self, now: float) -> None:
        if self.outlier.config is not None:
            OutlierDetector.sweep(self.balancer.endpoints, now)
            self.stats.ejections += len(self.outlier.success_rate(self.balancer.endpoints, now))
        idle_limit = self.config.idle_timeout
        for state in self.endpoints.values():
            if state.pool is not None:
                state.pool.sweep(now, idle_limit)

    def retire(self) -> None:
        """The cluster left the config: close its idle connections (busy ones finish)."""
        for state in self.endpoints.values():
            if state.pool is not None:
                state.pool.close_idle(retire=True)

    def __repr__(self) -> str:
        return f"<ClusterRuntime {self.name} endpoints={len(self.endpoints)}>"


def _same_lb(a: m.Cluster, b: m.Cluster) -> bool:
    return (a.lb_policy, a.choice_count, a.ring_size, a.zone_order) == (
        b.lb_policy,
        b.choice_count,
        b.ring_size,
        b.zone_order,
    )
