"""Coarse timers for the data path.

A request must not cost a timer allocation (call_later + cancel per request adds up at
thousands of requests per second), so each connection keeps one `deadline` (a
time.monotonic() value, or +inf) and a single periodic tick checks them all. Timeouts
therefore fire within one tick (100 ms) of their deadline, which is plenty for header
timeouts (seconds), route timeouts and idle timeouts. Housekeeping that needs no
precision (idle pooled connections, outlier un-ejection) runs every `slow_every` ticks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

INF = float("inf")


class HasDeadline(Protocol):
    deadline: float

    def on_deadline(self, now: float) -> None: ...


class Ticker:
    def __init__(self, interval: float = 0.1, slow_every: int = 10) -> None:
        self.interval = interval
        self.slow_every = slow_every
        self.items: set[HasDeadline] = set()
        self.housekeeping: list[Callable[[float], None]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(self.interval, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        assert self._loop is not None
        self._handle = self._loop.call_later(self.interval, self._tick)
        now = time.monotonic()
        expired = [item for item in self.items if item.deadline <= now]
        for item in expired:
            try:
                item.on_deadline(now)
            except Exception:  # one bad connection must not stop the clock
                from gossamer.core.logs import get_logger

                get_logger("proxy.io").error("timer callback failed", exc_info=True)
        self._count += 1
        if self._count % self.slow_every == 0:
            for job in self.housekeeping:
                try:
                    job(now)
                except Exception:
                    from gossamer.core.logs import get_logger

                    get_logger("proxy.io").error("housekeeping failed", exc_info=True)
