"""Fault injection (Envoy's HTTP fault filter): decide, per request, to delay it and/or
to answer it with an error instead of forwarding it. Pure code on an injected rng."""

from __future__ import annotations

import random
from collections.abc import Callable

from gossamer.proxy.config import model as m

HeaderGetter = Callable[[bytes], bytes | None]  # lower-case name -> first value


class FaultDecision:
    __slots__ = ("abort", "delay", "grpc")

    def __init__(self, delay: float, abort: int, grpc: int | None) -> None:
        self.delay = delay  # seconds; 0: none
        self.abort = abort  # HTTP status; 0: none
        self.grpc = grpc  # gRPC status for a gRPC abort


class FaultInjector:
    __slots__ = ("aborted", "config", "delayed", "rng")

    def __init__(self, config: m.FaultConfig, rng: random.Random) -> None:
        self.config = config
        self.rng = rng
        self.delayed = 0
        self.aborted = 0

    def applies(self, get: HeaderGetter) -> bool:
        for h in self.config.headers:
            value = get(h.name.encode())
            if not h.match.matches(None if value is None else value.decode("latin-1")):
                return False
        return True

    def decide(self, get: HeaderGetter) -> FaultDecision | None:
        cfg = self.config
        if cfg.headers and not self.applies(get):
            return None
        rng = self.rng
        delay = 0.0
        if cfg.delay and rng.random() < cfg.delay_fraction:
            delay = cfg.delay
            self.delayed += 1
        abort, grpc = 0, None
        if (cfg.abort_status or cfg.abort_grpc_status is not None) and (
            rng.random() < cfg.abort_fraction
        ):
            abort = cfg.abort_status or 200
            grpc = cfg.abort_grpc_status
            self.aborted += 1
        if not delay and not abort:
            return None
        return FaultDecision(delay, abort, grpc)
