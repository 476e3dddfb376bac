"""REST: /api/v1/stats, /api/v1/stats/series, /api/v1/stats/stream (SSE), and /metrics.

Shapes: /work/briefs/obs-contract.md ("Metrics"), documented in docs/observability.md.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from gossamer.controlplane.http.api import HttpError
from gossamer.controlplane.metrics.aggregate import DEFAULT_WINDOW, WINDOWS
from gossamer.controlplane.metrics.collector import Collector

KINDS = ("service", "workload", "edge")
STREAM_EVERY = 2.0
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


def _window(window: str | None, default: str = DEFAULT_WINDOW) -> str:
    w = window or default
    if w not in WINDOWS:
        raise HttpError(400, f"window: {w!r} is not one of {', '.join(WINDOWS)}")
    return w


def _kind(kind: str | None) -> str:
    k = kind or "service"
    if k not in KINDS:
        raise HttpError(400, f"kind: {k!r} is not one of {', '.join(KINDS)}")
    return k


def stats_routes(collector: Collector, own_metrics: Callable[[], str]) -> Callable[[FastAPI], None]:
    """`own_metrics`: the rest of the control plane's /metrics text (xDS, CA, ...)."""
    api_requests: Counter[tuple[str, int]] = Counter()

    def add(app: FastAPI) -> None:
        @app.middleware("http")
        async def count(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            response = await call_next(request)
            if len(api_requests) < 256 or (request.method, response.status_code) in api_requests:
                api_requests[(request.method, response.status_code)] += 1
            return response

        @app.get("/api/v1/stats", tags=["stats"])
        async def stats(
            kind: str | None = None,
            namespace: str | None = None,
            name: str | None = None,
            window: str | None = None,
        ) -> dict[str, Any]:
            """Golden metrics (requests/s, success rate, p50/p95/p99) per service (with
            its versions), workload or edge (`name`: SRC>DST) over 10s, 1m or 10m."""
            k, w = _kind(kind), _window(window)
            now = time.time()
            items = collector.aggregator.items(k, now, w, namespace, name)
            return {"kind": "StatList", "window": w, "time": now, "items": items}

        @app.get("/api/v1/stats/series", tags=["stats"])
        async def series(
            kind: str | None = None,
            name: str | None = None,
            namespace: str | None = None,
            window: str | None = None,
        ) -> dict[str, Any]:
            """Points every 10 s over the window (default 10m), oldest first."""
            k, w = _kind(kind), _window(window, "10m")
            if not name:
                raise HttpError(400, "name: required (a service, a workload, or SRC>DST)")
            out = collector.aggregator.series(k, name, time.time(), w, namespace)
            if out is None:
                raise HttpError(404, f"no metrics for {k} {name!r} in the last 10 minutes")
            return out

        @app.get("/api/v1/stats/stream", tags=["stats"])
        async def stream(window: str | None = None) -> StreamingResponse:
            """Server-sent events: every 2 s an event `stats` with every service,
            workload and edge over the window (default 10s)."""
            w = _window(window, "10s")

            async def events() -> AsyncIterator[bytes]:
                agg = collector.aggregator
                while True:
                    now = time.time()
                    data = {
                        "time": now,
                        "services": agg.services(now, w),
                        "workloads": agg.workloads(now, w),
                        "edges": agg.edges(now, w),
                    }
                    yield f"event: stats\ndata: {json.dumps(data)}\n\n".encode()
                    await asyncio.sleep(STREAM_EVERY)

            return StreamingResponse(
                events(), media_type="text/event-stream", headers={"cache-control": "no-cache"}
            )

        @app.get("/metrics", tags=["stats"])
        async def metrics() -> Response:
            """The control plane's own metrics, Prometheus text format."""
            agg = collector.aggregator
            lines = [
                "# HELP gossamer_cp_api_requests_total REST API requests by method and status.",
                "# TYPE gossamer_cp_api_requests_total counter",
            ]
            for (method, code), n in sorted(api_requests.items()):
                lines.append(
                    f'gossamer_cp_api_requests_total{{method="{method}",code="{code}"}} {n}'
                )
            for name, kind, help_, value in (
                ("gossamer_cp_metrics_scrapes_total", "counter", "Sidecar scrapes.", agg.scrapes),
                (
                    "gossamer_cp_metrics_scrape_errors_total",
                    "counter",
                    "Sidecar scrapes that failed.",
                    agg.scrape_errors,
                ),
                (
                    "gossamer_cp_metrics_entities",
                    "gauge",
                    "Services, versions, workloads and edges with metrics in memory.",
                    len(agg.entities),
                ),
            ):
                lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"]
            text = "\n".join(lines) + "\n" + own_metrics()
            return Response(text, media_type=PROMETHEUS)

    return add
