"""Load balancers without sockets: injected RNG and clock."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gossamer.protocols.http1 import RequestHead
from gossamer.proxy.config import model as m
from gossamer.proxy.filters.balance import (
    EndpointState,
    HashPolicies,
    LeastRequest,
    Maglev,
    PeakEwma,
    RandomBalancer,
    RingHash,
    RoundRobin,
    hash64,
    make_balancer,
)


def endpoints(n: int, weights: list[int] | None = None) -> list[EndpointState]:
    weights = weights or [1] * n
    return [EndpointState(f"10.0.0.{i + 1}", 8080, weights[i]) for i in range(n)]


def counts(balancer: object, n: int, key: int | None = None) -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(n):
        ep = balancer.pick(key)  # type: ignore[attr-defined]
        out[ep.address if ep else "none"] += 1
    return out


def test_round_robin_rotates_and_skips_unavailable() -> None:
    eps = endpoints(3)
    rr = RoundRobin(eps, random.Random(1))
    assert counts(rr, 300) == {"10.0.0.1": 100, "10.0.0.2": 100, "10.0.0.3": 100}
    eps[1].available = False
    got = counts(rr, 300)
    assert got["10.0.0.2"] == 0 and got["10.0.0.1"] + got["10.0.0.3"] == 300
    for ep in eps:
        ep.available = False
    assert rr.pick() is None


def test_weighted_round_robin_is_smooth_and_proportional() -> None:
    eps = endpoints(3, [5, 1, 1])
    rr = RoundRobin(eps, random.Random(1))
    sequence = [rr.pick().address for _ in range(7)]  # type: ignore[union-attr]
    assert Counter(sequence) == {"10.0.0.1": 5, "10.0.0.2": 1, "10.0.0.3": 1}
    # Smooth (nginx): the heavy endpoint is not picked five times in a row.
    assert "10.0.0.1,10.0.0.1,10.0.0.1,10.0.0.1,10.0.0.1" not in ",".join(sequence)


def test_random_is_weighted() -> None:
    eps = endpoints(2, [3, 1])
    got = counts(RandomBalancer(eps, random.Random(7)), 20000)
    assert got["10.0.0.1"] / 20000 == pytest.approx(0.75, abs=0.02)
    eps[0].available = False
    assert counts(RandomBalancer(eps, random.Random(7)), 100) == {"10.0.0.2": 100}


def test_least_request_prefers_fewer_in_flight() -> None:
    eps = endpoints(2)
    eps[0].active = 10
    lr = LeastRequest(eps, random.Random(3))
    # With two endpoints P2C always compares both: the idle one wins every time.
    assert counts(lr, 200) == {"10.0.0.2": 200}


def test_p2c_spreads_load_under_concurrency() -> None:
    eps = endpoints(10)
    lr = LeastRequest(eps, random.Random(5))
    for _ in range(1000):  # each pick holds a request; some finish
        ep = lr.pick()
        assert ep is not None
        ep.active += 1
        if ep.active > 3:
            ep.active -= 2
    spread = [ep.active for ep in eps]
    assert max(spread) - min(spread) <= 3


def test_least_request_choice_count_and_unavailable() -> None:
    eps = endpoints(5)
    for ep in eps[:4]:
        ep.active = 5
    lr = LeastRequest(eps, random.Random(2), choice_count=5)
    assert counts(lr, 50) == {"10.0.0.5": 50}  # sampling all five finds the idle one
    for ep in eps:
        ep.available = False
    assert LeastRequest(eps, random.Random(2)).pick() is None


def test_peak_ewma_is_peak_sensitive_and_decays() -> None:
    now = [100.0]
    ep = EndpointState("a", 1)
    ep.observe_rtt(0.010, now[0])
    assert ep.ewma == pytest.approx(0.010)
    ep.observe_rtt(0.500, now[0] + 0.1)  # a peak is taken at once
    assert ep.ewma == pytest.approx(0.500)
    ep.observe_rtt(0.010, now[0] + 10.1)  # then decays with time (tau = 10 s)
    assert 0.010 < ep.ewma < 0.5 * 0.5


def test_peak_ewma_avoids_the_slow_endpoint_and_retries_it_later() -> None:
    now = [1000.0]
    eps = endpoints(2)
    eps[0].observe_rtt(0.200, now[0])  # slow
    eps[1].observe_rtt(0.005, now[0])  # fast
    pe = PeakEwma(eps, random.Random(1), lambda: now[0])
    assert counts(pe, 100) == {"10.0.0.2": 100}
    eps[1].active = 50  # the fast one is now loaded: cost = latency x (in flight + 1)
    assert counts(pe, 10) == {"10.0.0.1": 10}


@pytest.mark.parametrize("cls", [RingHash, Maglev])
def test_consistent_hashing_is_stable_and_spreads(cls: type) -> None:
    eps = endpoints(4)
    b = cls(eps, random.Random(1))
    keys = [hash64(b"user-%d" % i) for i in range(4000)]
    first = [b.pick(k).address for k in keys]
    assert first == [b.pick(k).address for k in keys]
    share = Counter(first)
    assert len(share) == 4 and min(share.values()) > 4000 / 4 * 0.5
    # A rebuild over the same endpoints (another process, a config swap) maps the same.
    again = cls(endpoints(4), random.Random(99))
    assert first == [again.pick(k).address for k in keys]


@pytest.mark.parametrize("cls", [RingHash, Maglev])
def test_consistent_hashing_moves_few_keys_when_an_endpoint_goes(cls: type) -> None:
    keys = [hash64(b"k%d" % i) for i in range(4000)]
    before = cls(endpoints(5), random.Random(1))
    after = cls(endpoints(4), random.Random(1))  # 10.0.0.5 removed
    moved = sum(
        1
        for k in keys
        if before.pick(k).address != "10.0.0.5" and before.pick(k).address != after.pick(k).address
    )
    assert moved / 4000 < 0.10  # only the removed endpoint's keys move (Maglev: ~few %)


@pytest.mark.parametrize("cls", [RingHash, Maglev])
def test_consistent_hashing_skips_unavailable_and_no_key_is_random(cls: type) -> None:
    eps = endpoints(3)
    b = cls(eps, random.Random(1))
    key = hash64(b"sticky")
    owner = b.pick(key)
    assert owner is not None
    owner.available = False
    other = b.pick(key)
    assert other is not None and other is not owner
    owner.available = True
    assert b.pick(key) is owner  # back when it is back
    assert len(counts(b, 300)) == 3  # no hash: spread at random
    for ep in eps:
        ep.available = False
    assert b.pick(key) is None


def test_maglev_weights() -> None:
    eps = endpoints(2, [3, 1])
    b = Maglev(eps, random.Random(1))
    got = Counter(b.pick(hash64(b"%d" % i)).address for i in range(8000))  # type: ignore[union-attr]
    assert got["10.0.0.1"] / 8000 == pytest.approx(0.75, abs=0.05)


def test_make_balancer_by_policy() -> None:
    kinds = {
        "round_robin": RoundRobin,
        "random": RandomBalancer,
        "least_request": LeastRequest,
        "peak_ewma": PeakEwma,
        "ring_hash": RingHash,
        "maglev": Maglev,
    }
    for policy, cls in kinds.items():
        cluster = m.Cluster("c", "static", lb_policy=policy)  # type: ignore[arg-type]
        assert type(make_balancer(cluster, endpoints(2), random.Random(1))) is cls


def _head(headers: list[tuple[bytes, bytes]], path: bytes = b"/") -> RequestHead:
    return RequestHead(b"GET", path, b"1.1", headers, None)


def test_hash_policies_header_cookie_query_source_ip() -> None:
    head = _head(
        [(b"Host", b"x"), (b"X-User", b"alice"), (b"Cookie", b"a=1; session=s42")],
        b"/p?tenant=acme&x=1",
    )
    by = {
        "header": HashPolicies([m.HashPolicy("header", "x-user")]),
        "cookie": HashPolicies([m.HashPolicy("cookie", "session")]),
        "query": HashPolicies([m.HashPolicy("query", "tenant")]),
        "source_ip": HashPolicies([m.HashPolicy("source_ip")]),
    }
    assert by["header"].key(head.headers, head.path, "") == hash64(b"alice")
    assert by["cookie"].key(head.headers, head.path, "") == hash64(b"s42")
    assert by["query"].key(head.headers, head.path, "") == hash64(b"acme")
    assert by["source_ip"].key(head.headers, head.path, "10.1.2.3") == hash64(b"10.1.2.3")
    missing = HashPolicies([m.HashPolicy("header", "x-none")])
    assert missing.key(head.headers, head.path, "") is None
    # Terminal: the first policy that yields a hash ends the evaluation.
    terminal = HashPolicies([m.HashPolicy("header", "x-user", True), m.HashPolicy("source_ip")])
    assert terminal.key(head.headers, head.path, "1.1.1.1") == hash64(b"alice")
    combined = HashPolicies([m.HashPolicy("header", "x-user"), m.HashPolicy("source_ip")])
    assert combined.key(head.headers, head.path, "1.1.1.1") not in (hash64(b"alice"), None)
