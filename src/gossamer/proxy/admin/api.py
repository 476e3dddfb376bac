"""The admin endpoints (served on the admin port by io/admin.py).

GET  /ready              200 once the first config is applied (and not draining), else
                         503; JSON detail: config versions, xDS connection, workers
GET  /config_dump        the current config as JSON (private keys redacted)
GET  /stats              counters as JSON, summed over all worker processes
GET  /stats/prometheus   the same in the Prometheus text format
GET  /listeners          bound listeners and their connections
GET  /tap                stream (NDJSON, until the client goes) a record per completed
                         HTTP request, from every worker; filters: method=, path= (a
                         prefix), authority=; header values redacted unless
                         showHeaders=true; bodies never. A reader too slow loses records
                         (a {"type": "dropped", "count": N} line says how many)
POST /drain              stop accepting; /ready turns 503; connections finish
POST /quitquitquit       drain, then exit (as SIGTERM)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol
from urllib.parse import parse_qsl

from gossamer.proxy.admin.dump import config_dump
from gossamer.proxy.config import model as m
from gossamer.proxy.filters import stats as st
from gossamer.proxy.filters.tap import TapFilter

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
NDJSON = "application/x-ndjson"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


class AdminTarget(Protocol):
    """What the admin endpoints need from the sidecar process."""

    @property
    def config(self) -> m.ProxyConfig | None: ...

    def readiness(self) -> tuple[bool, dict[str, Any]]: ...

    async def stats_snapshot(self) -> dict[str, Any]: ...

    def gauges(self) -> dict[str, float]: ...

    def metric_labels(self) -> st.Labels: ...

    def metric_info(self) -> dict[str, dict[str, str]]: ...

    async def listeners(self) -> list[dict[str, Any]]: ...

    def tap(self, filter: TapFilter) -> AsyncIterator[bytes]: ...

    def drain(self) -> None: ...

    def quit(self) -> None: ...


Response = tuple[int, str, bytes | AsyncIterator[bytes]]


def _json(status: int, body: Any) -> tuple[int, str, bytes]:
    return status, JSON, (json.dumps(body, indent=2, sort_keys=False) + "\n").encode()


class AdminApi:
    def __init__(self, target: AdminTarget) -> None:
        self.target = target

    async def handle(self, method: str, path: str, body: bytes) -> Response:
        route, _, query = path.partition("?")
        route = route.rstrip("/") or "/"
        if route == "/tap":
            if method != "GET":
                return 405, TEXT, b"use GET\n"
            try:
                filter = TapFilter.from_query(dict(parse_qsl(query)))
            except ValueError as exc:
                return 400, TEXT, f"{exc}\n".encode()
            return 200, NDJSON, self.target.tap(filter)
        reads = {
            "/ready": self._ready,
            "/config_dump": self._config_dump,
            "/stats": self._stats,
            "/stats/prometheus": self._prometheus,
            "/listeners": self._listeners,
            "/": self._index,
        }
        writes = {"/drain": self._drain, "/quitquitquit": self._quit}
        if route in reads:
            if method not in ("GET", "HEAD"):
                return 405, TEXT, b"use GET\n"
            return await reads[route]()
        if route in writes:
            if method != "POST":
                return 405, TEXT, b"this endpoint changes state: use POST\n"
            return await writes[route]()
        return 404, TEXT, b"not found; see /\n"

    async def _index(self) -> tuple[int, str, bytes]:
        return 200, TEXT, (__doc__ or "").encode()

    async def _ready(self) -> tuple[int, str, bytes]:
        ready, detail = self.target.readiness()
        return _json(200 if ready else 503, {"ready": ready, **detail})

    async def _config_dump(self) -> tuple[int, str, bytes]:
        return _json(200, config_dump(self.target.config))

    async def _stats(self) -> tuple[int, str, bytes]:
        snapshot = await self.target.stats_snapshot()
        return _json(200, {**st.summary(snapshot), "gauges": self.target.gauges()})

    async def _prometheus(self) -> tuple[int, str, bytes]:
        snapshot = await self.target.stats_snapshot()
        t = self.target
        text = st.prometheus(snapshot, t.gauges(), t.metric_labels(), t.metric_info())
        return 200, PROMETHEUS, text.encode()

    async def _listeners(self) -> tuple[int, str, bytes]:
        return _json(200, await self.target.listeners())

    async def _drain(self) -> tuple[int, str, bytes]:
        self.target.drain()
        return _json(200, {"draining": True})

    async def _quit(self) -> tuple[int, str, bytes]:
        self.target.quit()
        return _json(200, {"exiting": True})
