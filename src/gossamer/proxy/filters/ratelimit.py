"""Local rate limiting: a token bucket per listener of one sidecar process (Envoy's
local_ratelimit). Pure code on an injected clock.

The bucket starts full with max_tokens; every fill_interval it gains tokens_per_fill
(never above max_tokens). Refills happen in whole intervals, as in Envoy, so "10 per
second" admits 10 in any one-second fill period, not a smooth 10 Hz.
"""

from __future__ import annotations

import math

from gossamer.proxy.config import model as m


class TokenBucket:
    __slots__ = ("config", "limited", "next_fill", "tokens")

    def __init__(self, config: m.LocalRateLimitConfig, now: float) -> None:
        self.config = config
        self.tokens = config.max_tokens
        self.next_fill = now + config.fill_interval
        self.limited = 0

    def _refill(self, now: float) -> None:
        cfg = self.config
        if now >= self.next_fill:
            fills = 1 + int((now - self.next_fill) // cfg.fill_interval)
            self.tokens = min(cfg.max_tokens, self.tokens + fills * cfg.tokens_per_fill)
            self.next_fill += fills * cfg.fill_interval

    def take(self, now: float) -> bool:
        """Admit one request (True) or refuse it (False)."""
        self._refill(now)
        if self.tokens > 0:
            self.tokens -= 1
            return True
        self.limited += 1
        return False

    def reset_after(self, now: float) -> int:
        """Whole seconds until the next refill (retry-after, x-ratelimit-reset)."""
        return max(1, math.ceil(self.next_fill - now))

    def headers(self, now: float) -> tuple[tuple[bytes, bytes], ...]:
        """x-ratelimit-* (draft 03) for a response of this bucket."""
        cfg = self.config
        window = max(1, round(cfg.fill_interval))
        return (
            (b"x-ratelimit-limit", b"%d, %d;w=%d" % (cfg.max_tokens, cfg.max_tokens, window)),
            (b"x-ratelimit-remaining", b"%d" % self.tokens),
            (b"x-ratelimit-reset", b"%d" % self.reset_after(now)),
        )
