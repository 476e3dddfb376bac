"""The sans-IO resilience filters on a fake clock: retry classification, backoff and
budget; the token bucket; fault decisions; outlier detection's ejection state machine."""

from __future__ import annotations

import random
import re

import pytest

from gossamer.proxy.config import model as m
from gossamer.proxy.filters import health
from gossamer.proxy.filters.balance import EndpointState
from gossamer.proxy.filters.fault import FaultInjector
from gossamer.proxy.filters.outlier import OutlierDetector
from gossamer.proxy.filters.ratelimit import TokenBucket
from gossamer.proxy.filters.retry import (
    CONNECT_FAILURE,
    PER_TRY_TIMEOUT,
    RESET,
    RetryBudget,
    backoff,
    retriable_failure,
    retriable_status,
)


def policy(*on: str, **kw: object) -> m.RetryPolicy:
    return m.RetryPolicy(retry_on=frozenset(on), **kw)  # type: ignore[arg-type]


# --- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "status", "grpc", "expected"),
    [
        (("5xx",), 500, None, True),
        (("5xx",), 404, None, False),
        (("gateway-error",), 500, None, False),
        (("gateway-error",), 503, None, True),
        (("retriable-4xx",), 409, None, True),
        (("retriable-4xx",), 404, None, False),
        (("unavailable",), 200, 14, True),
        (("unavailable",), 200, 4, False),
        (("deadline-exceeded", "cancelled"), 200, 1, True),
        (("reset",), 503, None, False),
    ],
)
def test_retriable_status(
    on: tuple[str, ...], status: int, grpc: int | None, expected: bool
) -> None:
    assert retriable_status(policy(*on), status, grpc) is expected


def test_listed_status_codes() -> None:
    p = policy("retriable-status-codes", retriable_status_codes=frozenset({418}))
    assert retriable_status(p, 418) and not retriable_status(p, 500)


def test_local_failures_follow_envoy() -> None:
    assert retriable_failure(policy("connect-failure"), CONNECT_FAILURE)
    assert not retriable_failure(policy("connect-failure"), RESET)
    assert retriable_failure(policy("5xx"), RESET)
    assert retriable_failure(policy("gateway-error"), PER_TRY_TIMEOUT)
    assert not retriable_failure(policy("reset"), PER_TRY_TIMEOUT)
    assert not retriable_failure(policy("retriable-4xx"), CONNECT_FAILURE)


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    p = policy("5xx", base_interval=0.1, max_interval=0.5)
    rng = random.Random(7)
    for retry, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (40, 0.5)):
        draws = [backoff(p, retry, rng) for _ in range(500)]
        assert min(draws) >= 0 and max(draws) <= ceiling
        assert max(draws) > ceiling * 0.9  # full jitter reaches the ceiling
        assert min(draws) < ceiling * 0.1  # ... and goes near zero


def test_budget_allows_percent_of_requests_plus_a_floor() -> None:
    p = policy("5xx", budget_percent=20.0, min_retries_per_second=1.0, budget_window=10.0)
    budget = RetryBudget()
    now = 1000.0
    for i in range(100):  # 100 requests over 10 s
        budget.deposit(now + i * 0.1)
    now += 9.95
    granted = 0
    while budget.withdraw(now, p):
        granted += 1
    assert granted == 20 + 10  # 20% of 100, plus 1/s over the 10 s window
    assert budget.exhausted == 1


def test_budget_window_slides() -> None:
    p = policy("5xx", budget_percent=0.0, min_retries_per_second=2.0, budget_window=2.0)
    budget = RetryBudget()
    assert sum(budget.withdraw(10.0, p) for _ in range(10)) == 4
    assert not budget.withdraw(11.5, p)  # the 4 retries of second 10 still count
    assert sum(budget.withdraw(12.0, p) for _ in range(10)) == 4  # second 10 left the window
    assert sum(budget.withdraw(100.0, p) for _ in range(10)) == 4  # a long gap clears all


def test_budget_off_grants_everything() -> None:
    p = policy("5xx", budget=False)
    budget = RetryBudget()
    assert all(budget.withdraw(5.0, p) for _ in range(1000))


# --- rate limiting -------------------------------------------------------------------------


def test_token_bucket_admits_max_then_refills_per_interval() -> None:
    cfg = m.LocalRateLimitConfig(max_tokens=10, tokens_per_fill=10, fill_interval=1.0)
    bucket = TokenBucket(cfg, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(15)) == 10
    assert bucket.limited == 5
    assert bucket.reset_after(0.2) == 1
    assert not bucket.take(0.99)
    assert sum(bucket.take(1.0) for _ in range(15)) == 10
    # 10 per second over a long run: admitted = full bucket + 10 per elapsed fill.
    admitted = sum(bucket.take(1.0 + i * 0.01) for i in range(1, 1010))  # ~10 s at 100 Hz
    assert admitted == 100
    # Idle for a long time: the bucket is full again, never more than max_tokens.
    assert sum(bucket.take(100.0) for _ in range(50)) == 10


def test_token_bucket_headers() -> None:
    cfg = m.LocalRateLimitConfig(max_tokens=5, tokens_per_fill=5, fill_interval=2.0)
    bucket = TokenBucket(cfg, now=0.0)
    bucket.take(0.5)
    headers = dict(bucket.headers(0.5))
    assert headers[b"x-ratelimit-limit"] == b"5, 5;w=2"
    assert headers[b"x-ratelimit-remaining"] == b"4"
    assert headers[b"x-ratelimit-reset"] == b"2"


# --- fault injection -----------------------------------------------------------------------


def _getter(headers: dict[bytes, bytes]):  # type: ignore[no-untyped-def]
    return headers.get


def test_fault_fractions_are_honoured() -> None:
    cfg = m.FaultConfig(delay=0.5, delay_fraction=0.1, abort_status=503, abort_fraction=0.5)
    fi = FaultInjector(cfg, random.Random(1))
    decisions = [fi.decide(_getter({})) for _ in range(10_000)]
    aborted = sum(1 for d in decisions if d is not None and d.abort == 503)
    delayed = sum(1 for d in decisions if d is not None and d.delay == 0.5)
    assert 4800 < aborted < 5200 and 900 < delayed < 1100
    assert fi.aborted == aborted and fi.delayed == delayed


def test_fault_only_for_matching_headers() -> None:
    match = m.HeaderMatch("x-chaos", m.StringMatch("exact", "on"))
    cfg = m.FaultConfig(abort_status=500, abort_fraction=1.0, headers=(match,))
    fi = FaultInjector(cfg, random.Random(1))
    assert fi.decide(_getter({})) is None
    assert fi.decide(_getter({b"x-chaos": b"off"})) is None
    decision = fi.decide(_getter({b"x-chaos": b"on"}))
    assert decision is not None and decision.abort == 500


def test_grpc_abort() -> None:
    cfg = m.FaultConfig(abort_grpc_status=14, abort_fraction=1.0)
    decision = FaultInjector(cfg, random.Random(1)).decide(_getter({}))
    assert decision is not None and (decision.abort, decision.grpc) == (200, 14)


# --- outlier detection ---------------------------------------------------------------------


def test_outlier_ejection_grows_and_ends() -> None:
    cfg = m.OutlierDetection(
        base_ejection_time=2.0, max_ejection_time=5.0, consecutive_5xx=3, max_ejection_percent=50.0
    )
    eps = [
        EndpointState("10.0.0.1", 80),
        EndpointState("10.0.0.2", 80),
        EndpointState("10.0.0.3", 80),
    ]
    bad = eps[0]
    od = OutlierDetector(cfg)
    assert not od.record(bad, 500, 0.0, eps) and not od.record(bad, 503, 0.0, eps)
    assert od.record(bad, 500, 0.0, eps)  # the third consecutive 5xx
    assert not bad.available and bad.ejected_until == 2.0
    assert OutlierDetector.sweep(eps, 1.9) == [] and not bad.available
    assert OutlierDetector.sweep(eps, 2.0) == [bad] and bad.available
    for _ in range(3):  # ejected again: twice as long
        od.record(bad, 500, 3.0, eps)
    assert bad.ejected_until == 3.0 + 4.0
    OutlierDetector.sweep(eps, 7.0)
    for _ in range(3):  # a third time: capped at max_ejection_time
        od.record(bad, 500, 8.0, eps)
    assert bad.ejected_until == 8.0 + 5.0


def test_outlier_success_resets_the_count_and_limits_hold() -> None:
    cfg = m.OutlierDetection(consecutive_5xx=2, max_ejection_percent=10.0)
    eps = [EndpointState("10.0.0.1", 80), EndpointState("10.0.0.2", 80)]
    od = OutlierDetector(cfg)
    od.record(eps[0], 500, 0.0, eps)
    od.record(eps[0], 200, 0.0, eps)
    assert not od.record(eps[0], 500, 0.0, eps)  # the success reset the streak
    assert od.record(eps[0], 500, 0.0, eps)
    # At most max(1, 10% of 2) endpoints ejected, and never the last available one.
    assert not od.record(eps[1], 500, 0.0, eps) and not od.record(eps[1], 500, 0.0, eps)
    assert eps[1].available


def test_methods_pattern_from_translation() -> None:
    p = policy("5xx", methods=re.compile("^(GET|PUT)$"))
    assert p.methods is not None and p.methods.fullmatch("GET") and not p.methods.fullmatch("POST")


# --- active health checks ------------------------------------------------------------------


def test_health_state_machine_thresholds() -> None:
    cfg = m.HealthCheck(
        "http", interval=1.0, timeout=0.5, healthy_threshold=2, unhealthy_threshold=3
    )
    ep = EndpointState("10.0.0.1", 80)
    assert not health.record(ep, False, cfg) and not health.record(ep, False, cfg)
    assert not health.record(ep, True, cfg)  # a pass resets the failure streak
    assert [health.record(ep, False, cfg) for _ in range(3)] == [False, False, True]
    assert not ep.available and ep.hc_failed
    assert not health.record(ep, True, cfg) and not ep.available  # one pass: not yet
    assert health.record(ep, True, cfg) and ep.available


def test_health_and_ejection_both_hold_an_endpoint_out() -> None:
    cfg = m.HealthCheck("tcp", interval=1.0, timeout=0.5, unhealthy_threshold=1)
    ep = EndpointState("10.0.0.1", 80)
    ep.ejected_until = 10.0
    ep.refresh()
    health.record(ep, False, cfg)
    OutlierDetector.sweep([ep], 11.0)  # the ejection ends, the check still fails
    assert not ep.available
    health.record(ep, True, cfg)
    assert ep.available


def test_health_check_encodings() -> None:
    assert health.grpc_request("") == b""
    assert health.grpc_request("api.v1") == b"\n\x06api.v1"
    assert health.grpc_request("x" * 200)[:3] == b"\n\xc8\x01"
    assert health.grpc_serving(b"\x08\x01") and not health.grpc_serving(b"\x08\x02")
    cfg = m.HealthCheck("http", 1.0, 0.5, expected_statuses=((200, 201), (204, 205)))
    assert health.http_ok(cfg, 204) and not health.http_ok(cfg, 202)


def test_success_rate_ejects_the_statistical_outlier() -> None:
    cfg = m.OutlierDetection(
        interval=10.0,
        consecutive_5xx=None,
        max_ejection_percent=50.0,
        success_rate_minimum_hosts=3,
        success_rate_request_volume=20,
        success_rate_stdev_factor=1.0,
    )
    eps = [EndpointState(f"10.0.0.{i}", 80) for i in range(1, 5)]
    od = OutlierDetector(cfg)
    for i, ep in enumerate(eps):
        for n in range(100):  # 99%, 99%, 99% and 60% success
            od.record(ep, 500 if (n < 40 if i == 3 else n == 0) else 200, 0.0, eps)
    assert od.success_rate(eps, 0.0) == [eps[3]] and not eps[3].available
    assert od.success_rate(eps, 5.0) == []  # once per interval
    # Too few endpoints with enough volume: nothing is judged.
    for ep in eps[:2]:
        for _ in range(30):
            od.record(ep, 500, 11.0, eps)
    assert od.success_rate(eps, 11.0) == []


# --- locality -------------------------------------------------------------------------------


def test_locality_prefers_own_zone_then_failover_order_then_the_rest() -> None:
    from gossamer.proxy.filters.balance import make_balancer

    cluster = m.Cluster("web", "eds", zone_order=("a", "c"))
    eps = []
    for i, zone in enumerate(["a", "a", "b", "c", ""]):
        ep = EndpointState(f"10.0.0.{i}", 80)
        ep.zone = zone
        eps.append(ep)
    balancer = make_balancer(cluster, eps, random.Random(3))
    assert {balancer.pick().zone for _ in range(20)} == {"a"}  # type: ignore[union-attr]
    picks = [balancer.pick() for _ in range(4)]
    assert {p.address for p in picks if p} == {"10.0.0.0", "10.0.0.1"}  # both of zone a
    for ep in eps[:2]:
        ep.available = False
    assert {balancer.pick().zone for _ in range(10)} == {"c"}  # type: ignore[union-attr]
    eps[3].available = False
    assert {balancer.pick().zone for _ in range(20)} == {"b", ""}  # type: ignore[union-attr]
    for ep in eps:
        ep.available = False
    assert balancer.pick() is None


def test_panic_when_every_endpoint_fails_its_checks() -> None:
    from gossamer.proxy.cluster import ClusterRuntime
    from gossamer.proxy.filters.stats import ClusterStats

    hc = m.HealthCheck("http", 1.0, 0.5, unhealthy_threshold=1)
    endpoints = (m.Endpoint("10.0.0.1", 80), m.Endpoint("10.0.0.2", 80))
    cluster = ClusterRuntime(
        m.Cluster("web", "eds", endpoints=endpoints, health_check=hc),
        ClusterStats(),
        lambda ep, c: None,
        random.Random(1),
    )
    first, second = cluster.endpoints.values()
    health.record(first, False, hc)
    assert {cluster.pick() for _ in range(10)} == {second}  # the healthy one only
    health.record(second, False, hc)
    assert {cluster.pick() for _ in range(40)} == {first, second}  # panic: spread
    assert cluster.stats.panic == 40
    first.ejected_until = 5.0  # ejection is not a health check failure: still a candidate
    first.refresh()
    assert cluster.pick() in (first, second)
