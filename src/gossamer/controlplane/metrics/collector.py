"""Scrapes every connected sidecar's /stats/prometheus into the Aggregator.

Pull, not push: the sidecar serves one endpoint for Prometheus and for us, does no extra
work on its data path, and needs no control-plane address beyond xDS; the control plane
sets the pace, and a proxy that disconnects is simply no longer scraped (its baselines
are dropped at once). The target is the `address` and `adminPort` the sidecar announces
in its xDS node metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable

import httpx

from gossamer.controlplane.metrics.aggregate import Aggregator
from gossamer.core.logs import get_logger

log = get_logger("controlplane.metrics")

INTERVAL = 2.0  # seconds between scrapes of every sidecar
TIMEOUT = 1.5
CONCURRENCY = 32

Target = tuple[str, str]  # (node id, URL)


class Collector:
    def __init__(
        self,
        targets: Callable[[], Iterable[Target]],
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.targets = targets
        self.interval = interval
        self.clock = clock
        self.aggregator = Aggregator(started=clock())
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        gate = asyncio.Semaphore(CONCURRENCY)
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as client:
            while True:
                started = time.monotonic()
                try:
                    await self.scrape_once(client, gate)
                except Exception:  # never let one bad round stop the collection
                    log.warning("metrics scrape round failed", exc_info=True)
                await asyncio.sleep(max(0.1, self.interval - (time.monotonic() - started)))

    async def scrape_once(self, client: httpx.AsyncClient, gate: asyncio.Semaphore) -> None:
        targets = list(self.targets())
        agg = self.aggregator

        async def one(node: str, url: str) -> None:
            async with gate:
                try:
                    response = await client.get(url)
                    response.raise_for_status()
                except httpx.HTTPError as exc:
                    agg.scrape_errors += 1
                    log.debug("metrics scrape failed", node=node, url=url, error=str(exc))
                    return
            agg.ingest(node, response.text, self.clock())

        await asyncio.gather(*(one(node, url) for node, url in targets))
        agg.prune(self.clock(), (node for node, _ in targets))
