"""Span export: a bounded queue drained in batches by one background task per process.

Requests only append a tuple to the queue (filters/trace.Tracer.finish); when the queue
is full the span is dropped and counted, never waited for. The task wakes every
`interval` seconds, or as soon as a batch is full, turns the records into Zipkin v2 JSON
and POSTs them (HTTP/1.1, one connection per batch) to the collector: the control
plane's built-in one or any Zipkin-compatible endpoint (Jaeger, the OpenTelemetry
collector's zipkin receiver). A collector that is down costs the batches sent meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from dataclasses import dataclass

from gossamer.core.logs import get_logger
from gossamer.proxy.filters.trace import zipkin_json

log = get_logger("proxy.trace")

# Spans waiting per process; past it they are dropped (and counted). The variable is
# for tests and experiments: the bound is what keeps a dead collector harmless.
MAX_QUEUE = int(os.environ.get("GOSSAMER_SPAN_QUEUE", "2048"))
BATCH = 256
INTERVAL = 1.0
TIMEOUT = 5.0


@dataclass
class ExportStats:
    queued: int = 0
    exported: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0  # spans in batches the collector did not take
    batches: int = 0


class SpanExporter:
    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        *,
        authority: str | None = None,
        token: str | None = None,
        max_queue: int = MAX_QUEUE,
        batch: int = BATCH,
        interval: float = INTERVAL,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path or "/api/v2/spans"
        self.authority = authority or f"{host}:{port}"
        self.token = token
        self.max_queue = max_queue
        self.batch = batch
        self.interval = interval
        self.queue: deque[tuple[object, ...]] = deque()
        self.stats = ExportStats()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def key(self) -> tuple[str, int, str, str | None]:
        return (self.host, self.port, self.path, self.token)

    # --- the request path ------------------------------------------------------------

    def add(self, span: tuple[object, ...]) -> None:
        queue = self.queue
        if len(queue) >= self.max_queue:
            self.stats.dropped += 1
            return
        queue.append(span)
        self.stats.queued += 1
        if len(queue) >= self.batch and self._wake is not None:
            self._wake.set()

    # --- background ------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="span-export")

    async def stop(self, flush: bool = True) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if flush and self.queue:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.flush()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            while self.queue:
                try:
                    await self.flush()
                except Exception:  # the exporter must outlive any bad batch
                    log.error("span export failed", exc_info=True)
                    break

    async def flush(self) -> None:
        """Send up to one batch."""
        queue = self.queue
        records = [queue.popleft() for _ in range(min(self.batch, len(queue)))]
        if not records:
            return
        body = ("[" + ",".join([zipkin_json(r) for r in records]) + "]").encode()
        ok = await self._post(body)
        self.stats.batches += 1
        if ok:
            self.stats.exported += len(records)
        else:
            self.stats.failed += len(records)

    async def _post(self, body: bytes) -> bool:
        head = (
            f"POST {self.path} HTTP/1.1\r\nhost: {self.authority}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n"
        )
        if self.token:
            head += f"authorization: Bearer {self.token}\r\n"
        writer = None
        try:
            async with asyncio.timeout(TIMEOUT):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(head.encode() + b"\r\n" + body)
                await writer.drain()
                status_line = await reader.readline()
                parts = status_line.split()
                status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                if not 200 <= status < 300:
                    log.warning(
                        "collector refused spans",
                        collector=f"{self.host}:{self.port}{self.path}",
                        status=status,
                    )
                    return False
                return True
        except (OSError, TimeoutError) as exc:
            log.warning(
                "collector unreachable", collector=f"{self.host}:{self.port}", error=str(exc)
            )
            return False
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
