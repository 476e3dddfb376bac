"""Tap: a record per completed HTTP request, for whoever is watching (`gossamer tap`).

The data path calls `sink.offer(...)` where a request completes, and only when `sink`
(this module's global) is not None: nobody tapping costs one attribute test per request.
Each process (main and workers) has its own `Tapper`; the main process's admin endpoint
`/tap` subscribes here (worker 0) and, over the worker channel, in every worker
(proxy/workers.py), whose records come back in batches.

Bounded everywhere: a subscription holds at most MAX_QUEUE records; a reader too slow
to keep up loses records (counted in `dropped`), never slows a request. Header values
are redacted unless the subscription asked for them; bodies are never seen here.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from gossamer.proxy.filters.balance import EndpointState
    from gossamer.proxy.io.http import HttpDownstream

MAX_QUEUE: Final = 1000  # records a subscription holds for its reader
MAX_SUBSCRIPTIONS: Final = 16
BATCH: Final = 64  # a worker sends its records at this many, or after FLUSH seconds
FLUSH: Final = 0.05
CHANNEL_LIMIT: Final = 1 << 20  # bytes queued to the main process before a worker drops
REDACTED: Final = "<redacted>"
MAX_HEADERS: Final = 64  # per record: a request with more shows the first ones


@dataclass(frozen=True)
class TapFilter:
    method: str | None = None  # exact, upper case
    path: str | None = None  # prefix of the path (query included)
    authority: str | None = None  # host or host:port
    show_headers: bool = False

    @classmethod
    def from_query(cls, query: dict[str, str]) -> TapFilter:
        """From the admin endpoint's query (ValueError naming the bad parameter)."""
        path = query.get("path") or None
        if path is not None and not path.startswith("/"):
            raise ValueError(f"path: must start with '/', got {path!r}")
        method = (query.get("method") or "").upper() or None
        if method is not None and not method.isalpha():
            raise ValueError(f"method: not an HTTP method: {method!r}")
        show = (query.get("showHeaders") or "false").lower()
        if show not in ("true", "false", "1", "0"):
            raise ValueError(f"showHeaders: expected true or false, got {show!r}")
        return cls(method, path, query.get("authority") or None, show in ("true", "1"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "authority": self.authority,
            "showHeaders": self.show_headers,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TapFilter:
        return cls(d.get("method"), d.get("path"), d.get("authority"), bool(d.get("showHeaders")))

    def matches(self, method: str, path: str, authority: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        if self.path is not None and not path.startswith(self.path):
            return False
        if self.authority is not None and authority != self.authority:
            return authority.rpartition(":")[0] == self.authority
        return True


@dataclass(frozen=True)
class Identity:
    """Who this sidecar is, for the records' source/destination."""

    proxy: str = ""
    workload: str = ""
    service: str = ""
    namespace: str = "default"
    identity: str | None = None


class Subscription:
    """One reader's filter and queue. `deliver` runs where records are made (the main
    process: append to the queue; a worker: batch for the channel)."""

    def __init__(self, sub_id: int, filter: TapFilter, deliver: Callable[[dict[str, Any]], None]):
        self.id = sub_id
        self.filter = filter
        self.deliver = deliver


class Tapper:
    """The subscriptions of one process, and the records they get."""

    def __init__(self) -> None:
        self.subscriptions: dict[int, Subscription] = {}
        self.me = Identity()

    def add(self, sub: Subscription) -> None:
        global sink
        self.subscriptions[sub.id] = sub
        sink = self

    def remove(self, sub_id: int) -> None:
        global sink
        self.subscriptions.pop(sub_id, None)
        if not self.subscriptions and sink is self:
            sink = None

    def offer(
        self,
        down: HttpDownstream,
        status: int,
        now: float,
        flags: str = "",
        ep: EndpointState | None = None,
    ) -> None:
        """A request completed (called by io/http.py only while someone taps)."""
        head = down.head
        if head is None:
            return
        method = head.method.decode("latin-1")
        path = head.path.decode("latin-1")
        authority = (head.authority or head.host or b"").decode("latin-1")
        record: dict[str, Any] | None = None
        for sub in list(self.subscriptions.values()):
            if not sub.filter.matches(method, path, authority):
                continue
            if record is None:
                record = self._record(down, status, now, flags, ep, method, path, authority)
            out = dict(record)
            out["headers"] = _headers(head.headers, sub.filter.show_headers)
            sub.deliver(out)

    def _record(
        self,
        down: HttpDownstream,
        status: int,
        now: float,
        flags: str,
        ep: EndpointState | None,
        method: str,
        path: str,
        authority: str,
    ) -> dict[str, Any]:
        me = self.me
        head = down.head
        assert head is not None
        direction = down.ctx.listener.direction
        if ep is None and down.upstream is not None:
            ep = down.upstream.ep
        if direction == "inbound":
            source = {"identity": down.peer_identity, "workload": None, "address": down.peer_ip}
            destination = {
                "identity": me.identity,
                "workload": me.workload,
                "service": me.service,
            }
        else:
            source = {"identity": me.identity, "workload": me.workload, "address": down.peer_ip}
            cluster = down.cluster
            meta = cluster.config.metadata if cluster is not None else {}
            tls = cluster.config.tls if cluster is not None else None
            destination = {
                "identity": (tls.verify_san_uris[0] if tls and tls.verify_san_uris else None),
                "workload": (ep.workload or None) if ep is not None else None,
                "service": meta.get("service") or (cluster.name if cluster else None),
            }
            if ep is not None:
                destination["address"] = f"{ep.address}:{ep.port}"
        return {
            "type": "request",
            "time": round(time.time() - (now - down.started), 6),
            "proxy": me.proxy,
            "direction": direction,
            "method": method,
            "authority": authority,
            "path": path,
            "status": status,
            "latencyMs": round((now - down.started) * 1000, 3),
            "flags": flags or None,
            "traceId": _trace_id(head.get),
            "source": source,
            "destination": destination,
        }


def _headers(headers: Any, show: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers[:MAX_HEADERS]:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1") if show else REDACTED
        out[key] = f"{out[key]}, {text}" if key in out and show else text
    return out


def _trace_id(get: Callable[[bytes], bytes | None]) -> str | None:
    """From W3C traceparent, B3 multi or B3 single headers, if the request has one."""
    tp = get(b"traceparent")
    if tp is not None:
        parts = tp.split(b"-")
        if len(parts) >= 2:
            return parts[1].decode("latin-1")
    b3 = get(b"x-b3-traceid")
    if b3 is not None:
        return b3.decode("latin-1")
    single = get(b"b3")
    if single is not None and b"-" in single:
        return single.split(b"-")[0].decode("latin-1")
    return None


# The process's tapper while anyone taps, else None (what io/http.py tests).
sink: Tapper | None = None
tapper = Tapper()


class Queue:
    """A subscription's records on their way to the reader: bounded, drops counted."""

    def __init__(self, limit: int = MAX_QUEUE) -> None:
        self.items: deque[dict[str, Any]] = deque()
        self.limit = limit
        self.dropped = 0
        self.ready = asyncio.Event()

    def put(self, record: dict[str, Any]) -> None:
        if len(self.items) >= self.limit:
            self.dropped += 1
            return
        self.items.append(record)
        self.ready.set()

    def put_many(self, records: list[dict[str, Any]], dropped: int) -> None:
        self.dropped += dropped
        for r in records:
            self.put(r)

    def take(self) -> list[dict[str, Any]]:
        out = list(self.items)
        self.items.clear()
        self.ready.clear()
        return out


class Batcher:
    """A worker's side of a subscription: records go to the main process in batches."""

    def __init__(self, send: Callable[[list[dict[str, Any]], int], None]) -> None:
        self.send = send
        self.batch: list[dict[str, Any]] = []
        self.dropped = 0
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def deliver(self, record: dict[str, Any]) -> None:
        if len(self.batch) >= MAX_QUEUE:
            self.dropped += 1
            return
        self.batch.append(record)
        if len(self.batch) >= BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.closed or (not self.batch and not self.dropped):
            return
        batch, dropped = self.batch, self.dropped
        self.batch, self.dropped = [], 0
        self.send(batch, dropped)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
