"""The TCP proxy: relay bytes between a client and one upstream endpoint.

Per connection: draw a cluster by weight (tcp_proxy weighted_clusters), pick an endpoint
with the cluster's balancer, connect, then relay with back-pressure in both directions
and half-close (a FIN from one side is passed on; the connection ends when both sides
have finished). Bytes the client sends while the upstream connects are held (bounded).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Final, cast

from gossamer.proxy.context import TcpContext
from gossamer.proxy.io.clock import INF

if TYPE_CHECKING:
    from gossamer.proxy.cluster import ClusterRuntime
    from gossamer.proxy.filters.balance import EndpointState
    from gossamer.proxy.io.listener import ListenerHandle

BUFFER_LIMIT: Final = 64 * 1024


class TcpDownstream(asyncio.Protocol):
    __slots__ = (
        "activity",
        "cluster",
        "ctx",
        "deadline",
        "endpoint",
        "eofs",
        "handle",
        "pending",
        "pending_size",
        "started",
        "transport",
        "upstream",
    )

    def __init__(self, handle: ListenerHandle) -> None:
        self.handle = handle
        ctx = handle.ctx
        assert isinstance(ctx, TcpContext)
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        self.upstream: TcpUpstream | None = None
        self.cluster: ClusterRuntime | None = None
        self.endpoint: EndpointState | None = None
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.eofs = 0  # directions finished (2: close)
        self.activity = False
        self.deadline = INF
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        handle = self.handle
        handle.connections.add(self)
        handle.ticker.items.add(self)
        handle.stats.cx_total += 1
        handle.stats.cx_active += 1
        self.started = time.monotonic()
        ctx = self.ctx
        limit = ctx.connection_limit
        if limit is not None and not limit.take(self.started):
            ctx.stats.flag("RL")  # over the connection rate limit: closed at once
            self.transport.abort()
            return
        name = ctx.pick_cluster()
        cluster = ctx.clusters.get(name)
        if cluster is None:
            self._fail(name, "NC")
            return
        ep = cluster.pick(None)
        if ep is None:
            self._fail(name, "UH")
            return
        self.cluster = cluster
        self.endpoint = ep
        ep.active += 1
        cluster.stats.rq_active += 1
        asyncio.get_running_loop().create_task(self._open(cluster, ep))

    def _fail(self, cluster: str, flag: str) -> None:
        self.ctx.stats.flag(flag)
        self.ctx.stats.for_cluster(cluster).record(503, time.monotonic() - self.started)
        if self.transport is not None:
            self.transport.abort()

    async def _open(self, cluster: ClusterRuntime, ep: EndpointState) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(cluster.config.connect_timeout):
                _, up = await loop.create_connection(
                    lambda: TcpUpstream(self, cluster), ep.address, ep.port
                )
        except (OSError, TimeoutError):
            cluster.stats.connect_fail += 1
            self._release(503)
            self._fail(cluster.name, "UF")
            return
        if self.transport is None or self.transport.is_closing():
            up.close()
            return
        self.upstream = up
        if self.pending:
            assert up.transport is not None
            up.transport.write(b"".join(self.pending))
            self.pending.clear()
            self.pending_size = 0
            self.transport.resume_reading()
        if self.eofs & 1 and up.transport is not None and up.transport.can_write_eof():
            up.transport.write_eof()
        self.deadline = time.monotonic() + self.ctx.idle_timeout

    def _release(self, status: int) -> None:
        ep, cluster = self.endpoint, self.cluster
        if ep is None or cluster is None:
            return
        self.endpoint = None
        ep.active -= 1
        cluster.stats.rq_active -= 1
        if cluster.outlier.config is not None:
            cluster.record(ep, status, time.monotonic())

    def data_received(self, data: bytes) -> None:
        self.activity = True
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.write(data)
            return
        self.pending.append(data)
        self.pending_size += len(data)
        if self.pending_size > BUFFER_LIMIT and self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eofs |= 1
        up = self.upstream
        if up is not None and up.transport is not None and up.transport.can_write_eof():
            up.transport.write_eof()
        if self.eofs == 3:
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        handle = self.handle
        handle.connections.discard(self)
        handle.ticker.items.discard(self)
        handle.stats.cx_active -= 1
        self.transport = None
        if self.endpoint is not None and self.cluster is not None:
            self.ctx.stats.for_cluster(self.cluster.name).record(
                200, time.monotonic() - self.started
            )
        self._release(200)
        up = self.upstream
        if up is not None:
            self.upstream = None
            up.close()

    def pause_writing(self) -> None:
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.resume_reading()

    def on_deadline(self, now: float) -> None:
        if self.activity or (self.upstream is not None and self.upstream.activity):
            self.activity = False
            if self.upstream is not None:
                self.upstream.activity = False
            self.deadline = now + self.ctx.idle_timeout
            return
        self.ctx.stats.flag("IDLE")
        self.close()

    def drain(self) -> None:
        pass  # a byte stream has no safe point to stop at: it ends at the drain deadline

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TcpUpstream(asyncio.Protocol):
    __slots__ = ("activity", "cluster", "down", "transport")

    def __init__(self, down: TcpDownstream, cluster: ClusterRuntime) -> None:
        self.down = down
        self.cluster = cluster
        self.transport: asyncio.Transport | None = None
        self.activity = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.cluster.stats.cx_total += 1
        self.cluster.stats.cx_active += 1

    def data_received(self, data: bytes) -> None:
        self.activity = True
        t = self.down.transport
        if t is not None:
            t.write(data)

    def eof_received(self) -> bool:
        down = self.down
        down.eofs |= 2
        if down.transport is not None and down.transport.can_write_eof():
            down.transport.write_eof()
        if down.eofs == 3:
            down.close()
            self.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.cluster.stats.cx_active -= 1
        self.transport = None
        down = self.down
        if down.upstream is self:
            down.upstream = None
            if exc is not None:
                down.abort()  # a reset: pass it on
            else:
                down.close()

    def pause_writing(self) -> None:
        t = self.down.transport
        if t is not None:
            t.pause_reading()

    def resume_writing(self) -> None:
        t = self.down.transport
        if t is not None:
            t.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
