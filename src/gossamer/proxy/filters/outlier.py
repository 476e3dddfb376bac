"""Outlier detection (passive health): eject endpoints that keep failing, for a while.

Envoy's consecutive-5xx and consecutive-gateway-error detectors. Failures that never got
a response (connect failure, reset, timeout) count as 503, as in Envoy's default of not
splitting local-origin errors. An ejection lasts base_ejection_time x times ejected
(capped by max_ejection_time); `sweep` (called periodically by the IO layer) brings
endpoints back. At most max_ejection_percent of a cluster is ejected, and never its last
available endpoint. Success-rate detection (`success_rate_minimum_hosts` set): every
`interval`, among endpoints with at least `success_rate_request_volume` results in it, if
there are `success_rate_minimum_hosts` of them, those whose success rate is below
mean - `success_rate_stdev_factor` x stdev are ejected, as in Envoy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gossamer.proxy.config import model as m
from gossamer.proxy.filters.balance import EndpointState

LOCAL_FAILURE = 503  # how a request that got no response counts


class OutlierDetector:
    __slots__ = ("config", "ejections_total", "next_interval")

    def __init__(self, config: m.OutlierDetection | None) -> None:
        self.config = config
        self.ejections_total = 0
        self.next_interval = 0.0

    def record(
        self, ep: EndpointState, status: int, now: float, endpoints: Sequence[EndpointState]
    ) -> bool:
        """Count one result for `ep`; True when it got ejected by it."""
        cfg = self.config
        if cfg is None:
            return False
        if cfg.success_rate_minimum_hosts is not None:
            ep.sr_total += 1
            if status < 500:
                ep.sr_success += 1
        if status < 500:
            ep.consecutive_5xx = 0
            ep.consecutive_gateway = 0
            return False
        ep.consecutive_5xx += 1
        gateway = status in (502, 503, 504)
        ep.consecutive_gateway = ep.consecutive_gateway + 1 if gateway else 0
        tripped = (
            cfg.consecutive_5xx is not None and ep.consecutive_5xx >= cfg.consecutive_5xx
        ) or (
            cfg.consecutive_gateway_errors is not None
            and ep.consecutive_gateway >= cfg.consecutive_gateway_errors
        )
        if not tripped or not ep.available:
            return False
        return self._eject(ep, now, endpoints, cfg)

    def _eject(
        self,
        ep: EndpointState,
        now: float,
        endpoints: Sequence[EndpointState],
        cfg: m.OutlierDetection,
    ) -> bool:
        available = sum(1 for e in endpoints if e.available)
        ejected = sum(1 for e in endpoints if e.ejected_until)
        allowed = max(1, int(len(endpoints) * cfg.max_ejection_percent / 100))
        if available <= 1 or ejected >= allowed:
            return False
        ep.ejections += 1
        duration = min(cfg.base_ejection_time * ep.ejections, cfg.max_ejection_time)
        ep.ejected_until = now + duration
        ep.available = False
        ep.consecutive_5xx = 0
        ep.consecutive_gateway = 0
        self.ejections_total += 1
        return True

    def success_rate(self, endpoints: Sequence[EndpointState], now: float) -> list[EndpointState]:
        """Once per interval: eject statistical outliers by success rate; returns them."""
        cfg = self.config
        if cfg is None or cfg.success_rate_minimum_hosts is None:
            return []
        if now < self.next_interval:
            return []
        self.next_interval = now + cfg.interval
        rates = {
            ep: ep.sr_success / ep.sr_total
            for ep in endpoints
            if ep.sr_total >= cfg.success_rate_request_volume
        }
        for ep in endpoints:
            ep.sr_total = ep.sr_success = 0
        if len(rates) < cfg.success_rate_minimum_hosts:
            return []
        mean = sum(rates.values()) / len(rates)
        stdev = math.sqrt(sum((r - mean) ** 2 for r in rates.values()) / len(rates))
        threshold = mean - cfg.success_rate_stdev_factor * stdev
        out = []
        for ep, rate in sorted(rates.items(), key=lambda item: item[1]):
            if rate < threshold and ep.available and self._eject(ep, now, endpoints, cfg):
                out.append(ep)
        return out

    @staticmethod
    def sweep(endpoints: Sequence[EndpointState], now: float) -> list[EndpointState]:
        """Bring back the endpoints whose ejection is over; returns them."""
        back = []
        for ep in endpoints:
            if ep.ejected_until and ep.ejected_until <= now:
                ep.ejected_until = 0.0
                ep.refresh()
                back.append(ep)
        return back
