"""Load balancers: pick one endpoint of a cluster for a request or a connection.

Pure code (no sockets, no event loop): randomness and time are injected, so tests drive
them. Endpoint state (`EndpointState`: in-flight requests, latency estimate, ejection) is
runtime state owned by the cluster's runtime and keyed by (address, port); balancers are
rebuilt when a cluster's endpoints or policy change, and the new balancer is given the
same state objects, so least-request counts, EWMA estimates and ejections survive a
config swap.

Availability is one boolean per endpoint (`available`): EDS health and outlier ejection
are folded into it by whoever changes them, so a pick never consults a clock for health.
"""

from __future__ import annotations

import bisect
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from gossamer.proxy.config import model as m

Rng = random.Random
Clock = Callable[[], float]

# Peak-EWMA (as in Linkerd / tower): the latency a fresh endpoint is assumed to have, and
# how fast an estimate forgets (the time constant of the exponential decay).
DEFAULT_RTT = 0.030
EWMA_DECAY = 10.0
MAGLEV_MAX_TABLE = 65537


class EndpointState:
    """One upstream endpoint of a cluster, as the balancers and the pools see it."""

    __slots__ = (
        "active",
        "address",
        "available",
        "consecutive_5xx",
        "consecutive_gateway",
        "ejected_until",
        "ejections",
        "ewma",
        "ewma_at",
        "hc_failed",
        "hc_failures",
        "hc_successes",
        "healthy",
        "key",
        "labels",
        "pool",
        "port",
        "sr_success",
        "sr_total",
        "tls",
        "version",
        "weight",
        "workload",
        "zone",
    )

    def __init__(self, address: str, port: int, weight: int = 1, healthy: bool = True) -> None:
        self.address = address
        self.port = port
        self.key = (address, port)
        self.weight = max(1, weight)
        self.healthy = healthy  # from the config (EDS health status)
        self.available = healthy  # healthy and not ejected: what balancers look at
        self.labels: Mapping[str, str] = {}
        self.workload = ""
        self.version = ""  # the workload's `version` label (metrics)
        self.zone = ""
        self.active = 0  # requests (or TCP connections) in flight
        self.ewma = DEFAULT_RTT
        self.ewma_at = 0.0
        self.ejected_until = 0.0
        self.ejections = 0
        self.consecutive_5xx = 0
        self.consecutive_gateway = 0
        self.hc_failed = False  # active health checking says down (filters/health.py)
        self.hc_failures = 0
        self.hc_successes = 0
        self.sr_total = 0  # results in the current success-rate interval
        self.sr_success = 0
        self.pool: Any = None  # the IO layer's connection pool for this endpoint
        self.tls = False  # connect with the cluster's TLS (a sidecar-backed endpoint)

    @classmethod
    def from_endpoint(cls, ep: m.Endpoint) -> EndpointState:
        state = cls(ep.address, ep.port, ep.weight, ep.healthy)
        state.update(ep)
        return state

    def update(self, ep: m.Endpoint) -> None:
        """Take the config's view of this endpoint; runtime state is kept."""
        self.weight = max(1, ep.weight)
        self.healthy = ep.healthy
        self.refresh()
        self.labels = ep.labels
        self.workload = ep.workload
        self.version = ep.labels.get("version", "")
        self.zone = ep.zone

    def refresh(self) -> None:
        """Recompute `available` from EDS health, ejection and active health checks."""
        self.available = self.healthy and self.ejected_until == 0.0 and not self.hc_failed

    def observe_rtt(self, rtt: float, now: float) -> None:
        """Feed one latency sample into the peak-sensitive EWMA."""
        decay = math.exp(-(now - self.ewma_at) / EWMA_DECAY) if self.ewma_at else 0.0
        estimate = self.ewma * decay + rtt * (1.0 - decay)
        self.ewma = rtt if rtt > self.ewma else estimate
        self.ewma_at = now

    def __repr__(self) -> str:
        return f"<Endpoint {self.address}:{self.port} w={self.weight} active={self.active}>"


class Balancer(Protocol):
    """Picks an available endpoint, or None when there is none."""

    @property
    def endpoints(self) -> Sequence[EndpointState]: ...

    def pick(self, hash_key: int | None = None) -> EndpointState | None: ...


def _first_available(endpoints: Sequence[EndpointState], start: int) -> EndpointState | None:
    n = len(endpoints)
    for i in range(n):
        ep = endpoints[(start + i) % n]
        if ep.available:
            return ep
    return None


class RoundRobin:
    """Plain rotation when weights are equal; smooth weighted round robin (nginx) otherwise."""

    __slots__ = ("_current", "_index", "_weighted", "endpoints")

    def __init__(self, endpoints: Sequence[EndpointState], rng: Rng) -> None:
        self.endpoints = tuple(endpoints)
        # Start at a random place so that many sidecars do not all hit endpoint 0 first.
        self._index = rng.randrange(len(endpoints)) if endpoints else 0
        self._weighted = len({e.weight for e in endpoints}) > 1
        self._current = [0] * len(endpoints)

    def pick(self, hash_key: int | None = None) -> EndpointState | None:
        eps = self.endpoints
        if not eps:
            return None
        if not self._weighted:
            i = self._index
            self._index = i + 1 if i + 1 < len(eps) else 0
            ep = eps[i]
            return ep if ep.available else _first_available(eps, i + 1)
        best = -1
        total = 0
        current = self._current
        for i, ep in enumerate(eps):
            if not ep.available:
                continue
            current[i] += ep.weight
            total += ep.weight
            if best < 0 or current[i] > current[best]:
                best = i
        if best < 0:
            return None
        current[best] -= total
        return eps[best]


class RandomBalancer:
    """Weighted random: one draw against the cumulative weights."""

    __slots__ = ("_cumulative", "_rng", "_total", "endpoints")

    def __init__(self, endpoints: Sequence[EndpointState], rng: Rng) -> None:
        self.endpoints = tuple(endpoints)
        self._rng = rng
        cumulative, total = [], 0
        for ep in self.endpoints:
            total += ep.weight
            cumulative.append(total)
        self._cumulative = cumulative
        self._total = total

    def pick(self, hash_key: int | None = None) -> EndpointState | None:
        eps = self.endpoints
        if not eps:
            return None
        i = bisect.bisect_right(self._cumulative, self._rng.randrange(self._total))
        ep = eps[i]
        return ep if ep.available else _first_available(eps, i + 1)


class LeastRequest:
    """Power of `choice_count` random choices; the one with fewest requests in flight wins
    (in flight divided by weight, so heavier endpoints take proportionally more)."""

    __slots__ = ("_choices", "_rng", "endpoints")

    def __init__(self, endpoints: Sequence[EndpointState], rng: Rng, choice_count: int = 2) -> None:
        self.endpoints = tuple(endpoints)
        self._rng = rng
        self._choices = max(2, choice_count)

    def _score(self, ep: EndpointState) -> float:
        return ep.active / ep.weight

    def pick(self, hash_key: int | None = None) -> EndpointState | None:
        eps = self.endpoints
        n = len(eps)
        if n <= 1:
            return eps[0] if n and eps[0].available else None
        rng = self._rng
        if self._choices == 2:
            i = rng.randrange(n)
            j = rng.randrange(n - 1)
            if j >= i:
                j += 1
            candidates: Sequence[EndpointState] = (eps[i], eps[j])
        else:
            candidates = rng.sample(eps, min(self._choices, n))
        best: EndpointState | None = None
        best_score = 0.0
        for ep in candidates:
            if not ep.available:
                continue
            score = self._score(ep)
            if best is None or score < best_score:
                best, best_score = ep, score
        if best is None:  # both choices unavailable: fall back to a scan
            return _first_available(eps, rng.randrange(n))
        return best


class PeakEwma(LeastRequest):
    """Linkerd's balancer: P2C on cost = (decayed peak-EWMA latency) x (in flight + 1)."""

    __slots__ = ("_clock",)

    def __init__(
        self, endpoints: Sequence[EndpointState], rng: Rng, clock: Clock, choice_count: int = 2
    ) -> None:
        super().__init__(endpoints, rng, choice_count)
        self._clock = clock

    def _score(self, ep: EndpointState) -> float:
        estimate = ep.ewma
        if ep.ewma_at:
            # Decay towards zero since the last sample, so a slow endpoint gets retried.
            estimate *= math.exp(-(self._clock() - ep.ewma_at) / EWMA_DECAY)
        return estimate * (ep.active + 1) / ep.weight


def hash64(data: bytes) -> int:
    """A stable 64-bit hash (the same in every process and across restarts)."""
    # Imported here: hashlib costs a worker 0.7 MiB and only hashing balancers need it.
    from hashlib import blake2b

    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


class RingHash:
    """Consistent hashing on a ring (ketama): each endpoint owns points in proportion to its
    weight; a key goes to the first point at or after its hash. No key: random."""

    __slots__ = ("_hashes", "_owners", "_rng", "endpoints")

    def __init__(self, endpoints: Sequence[EndpointState], rng: Rng, ring_size: int = 1024) -> None:
        self.endpoints = tuple(endpoints)
        self._rng = rng
        total = sum(ep.weight for ep in self.endpoints) or 1
        # Points per unit of weight, rounded up to a power of two: adding or removing an
        # endpoint then rarely changes the others' points, so only its own keys move.
        per_weight = 1 << max(0, math.ceil(math.log2(max(1.0, ring_size / total))))
        points: list[tuple[int, int]] = []
        for index, ep in enumerate(self.endpoints):
            count = per_weight * ep.weight
            base = f"{ep.address}:{ep.port}_".encode()
            points += [(hash64(base + str(i).encode()), index) for i in range(count)]
        points.sort()
        self._hashes = [h for h, _ in points]
        self._owners = [i for _, i in points]

    def pick(self, hash_key: int | None = None) -> EndpointState | None:
        eps = self.endpoints
        if not eps:
            return None
        if hash_key is None:
            return _first_available(eps, self._rng.randrange(len(eps)))
        owners = self._owners
        n = len(owners)
        start = bisect.bisect_left(self._hashes, hash_key)
        for k in range(n):  # walk clockwise past unavailable endpoints
            ep = eps[owners[(start + k) % n]]
            if ep.available:
                return ep
        return None


def _next_prime(n: int) -> int:
    def prime(k: int) -> bool:
        if k < 2 or k % 2 == 0:
            return k == 2
        return all(k % d for d in range(3, math.isqrt(k) + 1, 2))

    while not prime(n):
        n += 1
    return n


class Maglev:
    """Maglev hashing (Google's, as Envoy builds it, with weights): a lookup table of prime
    size M filled from each endpoint's permutation; a key goes to table[hash % M]."""

    __slots__ = ("_rng", "_table", "endpoints")

    def __init__(
        self, endpoints: Sequence[EndpointState], rng: Rng, table_size: int | None = None
    ) -> None:
        self.endpoints = tuple(endpoints)
        self._rng = rng
        n = len(self.endpoints)
        size = _next_prime(min(MAGLEV_MAX_TABLE, max(table_size or 0, 101 * n, 1021)))
        self._table = self._build(size) if n else []

    def _build(self, size: int) -> list[int]:
        eps = self.endpoints
        offsets, skips = [], []
        for ep in eps:
            name = f"{ep.address}:{ep.port}".encode()
            offsets.append(hash64(b"offset:" + name) % size)
            skips.append(hash64(b"skip:" + name) % (size - 1) + 1)
        weights = [ep.weight for ep in eps]
        max_weight = max(weights)
        targets = [0] * len(eps)
        nexts = [0] * len(eps)
        table = [-1] * size
        filled = 0
        iteration = 0
        while filled < size:
            iteration += 1
            for i in range(len(eps)):
                if filled >= size:
                    break
                # An endpoint of weight max_weight/k takes a slot every k rounds.
                if iteration * weights[i] < targets[i]:
                    continue
                targets[i] += max_weight
                c = (offsets[i] + skips[i] * nexts[i]) % size
                while table[c] >= 0:
                    nexts[i] += 1
                    c = (offsets[i] + skips[i] * nexts[i]) % size
                table[c] = i
                nexts[i] += 1
                filled += 1
        return table

    def pick(self, hash_key: int | None = None) -> EndpointState | None:
        eps = self.endpoints
        if not eps:
            return None
        if hash_key is None:
            return _first_available(eps, self._rng.randrange(len(eps)))
        table = self._table
        size = len(table)
        ep = eps[table[hash_key % size]]
        if ep.available:
            return ep
        if not any(e.available for e in eps):
            return None
        # Probe the following slots: the unavailable endpoint's keys spread over the others.
        i = hash_key % size
        while True:
            i = i + 1 if i + 1 < size else 0
            ep = eps[table[i]]
            if ep.available:
                return ep


class LocalityBalancer:
    """Zone preference with failover: one balancer per tier of zones (the caller's zone,
    then its failover zones, then every other zone); the first tier with an available
    endpoint picks."""

    __slots__ = ("endpoints", "tiers")

    def __init__(self, endpoints: Sequence[EndpointState], tiers: Sequence[Balancer]) -> None:
        self.endpoints = tuple(endpoints)
        self.tiers = tuple(tiers)

    def pick(self, hash_key: int | None = None) -> EndpointState | None:
        for tier in self.tiers:
            ep = tier.pick(hash_key)
            if ep is not None:
                return ep
        return None


def make_balancer(
    cluster: m.Cluster, endpoints: Sequence[EndpointState], rng: Rng, clock: Clock = time.monotonic
) -> Balancer:
    """The balancer a cluster's policy asks for, over these endpoint states."""
    if cluster.zone_order is not None:
        tiers: list[Balancer] = []
        rest = list(endpoints)
        for zone in cluster.zone_order:
            mine = [ep for ep in rest if ep.zone == zone]
            rest = [ep for ep in rest if ep.zone != zone]
            if mine:
                tiers.append(_make(cluster, mine, rng, clock))
        if rest:
            tiers.append(_make(cluster, rest, rng, clock))
        return LocalityBalancer(endpoints, tiers)
    return _make(cluster, endpoints, rng, clock)


def _make(
    cluster: m.Cluster, endpoints: Sequence[EndpointState], rng: Rng, clock: Clock
) -> Balancer:
    policy = cluster.lb_policy
    if policy == "round_robin":
        return RoundRobin(endpoints, rng)
    if policy == "random":
        return RandomBalancer(endpoints, rng)
    if policy == "least_request":
        return LeastRequest(endpoints, rng, cluster.choice_count)
    if policy == "peak_ewma":
        return PeakEwma(endpoints, rng, clock, cluster.choice_count)
    if policy == "ring_hash":
        return RingHash(endpoints, rng, cluster.ring_size)
    if policy == "maglev":
        return Maglev(endpoints, rng)
    raise ValueError(f"unknown load balancing policy {policy!r}")


# --- request hashing (ring hash and Maglev) ---------------------------------------------


def _cookie(header: bytes, name: bytes) -> bytes | None:
    for part in header.split(b";"):
        key, sep, value = part.strip().partition(b"=")
        if sep and key == name:
            return value
    return None


def _query(path: bytes, name: bytes) -> bytes | None:
    q = path.find(b"?")
    if q < 0:
        return None
    for part in path[q + 1 :].split(b"&"):
        key, sep, value = part.partition(b"=")
        if key == name:
            return value if sep else b""
    return None


class HashPolicies:
    """A route's hash policies, precompiled: how to turn a request into a hash key.

    Envoy's rules: policies are tried in order, their hashes combined (rotate left by one,
    xor); a `terminal` policy that produced a hash stops the evaluation; no hash at all
    means the balancer picks at random.
    """

    __slots__ = ("_policies",)

    def __init__(self, policies: Sequence[m.HashPolicy]) -> None:
        # Header names are case-insensitive (compared lower-cased); cookie and query names
        # are not.
        self._policies = tuple(
            (p.kind, (p.name.lower() if p.kind == "header" else p.name).encode(), p.terminal)
            for p in policies
        )

    def __bool__(self) -> bool:
        return bool(self._policies)

    def key(
        self, headers: Sequence[tuple[bytes, bytes]], path: bytes, client_ip: str
    ) -> int | None:
        result: int | None = None
        for kind, name, terminal in self._policies:
            value: bytes | None = None
            if kind == "header":
                value = _header(headers, name)
            elif kind == "cookie":
                cookies = _header(headers, b"cookie")
                value = _cookie(cookies, name) if cookies is not None else None
            elif kind == "query":
                value = _query(path, name)
            else:
                value = client_ip.encode()
            if value is None:
                continue
            h = hash64(value)
            result = h if result is None else (((result << 1) | (result >> 63)) & (2**64 - 1)) ^ h
            if terminal:
                break
        return result


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    values = [v for n, v in headers if n.lower() == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b",".join(values)
