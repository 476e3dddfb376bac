"""Retries: which failures are retried, how long to wait, and the retry budget.

Pure code on an injected clock and rng (the IO layer in io/http.py calls it), so the
tests drive time. The budget is Linkerd's: over a sliding window, retries may add
`budget_percent` of the requests, plus `min_retries_per_second` x window, so a failing
service sees at most ~1.2x its normal load from retries instead of (1 + numRetries)x.
"""

from __future__ import annotations

import random
from typing import Final

from gossamer.proxy.config import model as m

# Why a try failed without a usable response (the conditions that cover it).
CONNECT_FAILURE: Final = "connect-failure"
RESET: Final = "reset"
PER_TRY_TIMEOUT: Final = "per-try-timeout"

_LOCAL_CONDITIONS: Final = {
    # Envoy: 5xx and gateway-error also cover connect failures, resets and per-try timeouts.
    CONNECT_FAILURE: frozenset({"connect-failure", "5xx", "gateway-error", "reset"}),
    RESET: frozenset({"reset", "5xx", "gateway-error"}),
    PER_TRY_TIMEOUT: frozenset({"5xx", "gateway-error"}),
}
_GRPC: Final = {
    1: "cancelled",
    4: "deadline-exceeded",
    8: "resource-exhausted",
    13: "internal",
    14: "unavailable",
}


def retriable_status(policy: m.RetryPolicy, status: int, grpc_status: int | None = None) -> bool:
    """Is a response with this status (and grpc-status header) worth another try?"""
    on = policy.retry_on
    if status >= 500:
        if "5xx" in on or ("gateway-error" in on and status in (502, 503, 504)):
            return True
    elif status == 409 and "retriable-4xx" in on:
        return True
    if "retriable-status-codes" in on and status in policy.retriable_status_codes:
        return True
    return grpc_status is not None and _GRPC.get(grpc_status, "") in on


def retriable_failure(policy: m.RetryPolicy, cause: str) -> bool:
    """Is a try that got no response (connect failure, reset, per-try timeout) retried?"""
    return not policy.retry_on.isdisjoint(_LOCAL_CONDITIONS[cause])


def backoff(policy: m.RetryPolicy, retry: int, rng: random.Random) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...): exponential with full
    jitter, random(0, min(max_interval, base_interval x 2^(retry-1)))."""
    ceiling = min(policy.max_interval, policy.base_interval * (1 << min(retry - 1, 30)))
    return rng.uniform(0.0, ceiling)


class RetryBudget:
    """Requests and retries of one cluster over a sliding window of 1-second buckets."""

    __slots__ = ("_requests", "_retries", "_second", "exhausted", "retries_total")

    SLOTS: Final = 60  # the longest window honoured, in seconds

    def __init__(self) -> None:
        self._requests = [0] * self.SLOTS
        self._retries = [0] * self.SLOTS
        self._second = 0
        self.exhausted = 0  # retries refused by the budget
        self.retries_total = 0

    def _advance(self, now: float) -> int:
        second = int(now)
        if second != self._second:
            gap = min(second - self._second, self.SLOTS)
            for s in range(second - gap + 1, second + 1):
                self._requests[s % self.SLOTS] = 0
                self._retries[s % self.SLOTS] = 0
            self._second = second
        return second % self.SLOTS

    def deposit(self, now: float) -> None:
        """One original request (retries are not deposits)."""
        self._requests[self._advance(now)] += 1

    def _sum(self, counts: list[int], window: int) -> int:
        i = self._second
        return sum(counts[(i - k) % self.SLOTS] for k in range(window))

    def withdraw(self, now: float, policy: m.RetryPolicy) -> bool:
        """Take one retry from the budget; False (counted as exhausted) when none is left."""
        i = self._advance(now)
        if policy.budget:
            window = max(1, min(self.SLOTS, round(policy.budget_window)))
            allowed = (
                self._sum(self._requests, window) * policy.budget_percent / 100.0
                + policy.min_retries_per_second * window
            )
            if self._sum(self._retries, window) >= allowed:
                self.exhausted += 1
                return False
        self._retries[i] += 1
        self.retries_total += 1
        return True
