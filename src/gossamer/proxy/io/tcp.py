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

from gossamer.protocols.sni import ClientHelloReader
from gossamer.proxy.context import TcpContext
from gossamer.proxy.filters.stats import ConnStats
from gossamer.proxy.io.clock import INF
from gossamer.proxy.io.tls import handshake_failed, peer_identity, san_allowed

if TYPE_CHECKING:
    from gossamer.proxy.cluster import ClusterRuntime
    from gossamer.proxy.filters.balance import EndpointState
    from gossamer.proxy.io.listener import ListenerHandle

BUFFER_LIMIT: Final = 64 * 1024
HELLO_TIMEOUT: Final = 10.0  # an SNI listener waits this long for the ClientHello


class TcpDownstream(asyncio.Protocol):
    __slots__ = (
        "activity",
        "cluster",
        "conn",
        "ctx",
        "deadline",
        "endpoint",
        "eofs",
        "handle",
        "hello",
        "peer_identity",
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
        self.hello: ClientHelloReader | None = None
        # The verified SPIFFE ID of an mTLS client (another sidecar); None in plaintext.
        self.peer_identity: str | None = None
        self.conn: ConnStats | None = None  # this connection's metrics series, once routed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.peer_identity = peer_identity(transport)
        handle = self.handle
        handle.connections.add(self)
        handle.ticker.items.add(self)
        handle.stats.cx_total += 1
        handle.stats.cx_active += 1
        self.started = time.monotonic()
        ctx = self.ctx
        authz = ctx.authz
        if authz is not None:
            identity = self.peer_identity
            if authz.check(identity, None, b"") is not None:
                # Denied: closed before any byte reaches the app.
                authz.count(False, identity)
                self.ctx.stats.flag("RBAC")
                self.transport.abort()
                return
            if authz.shadow and authz.check_shadow(identity, None, b"") is not None:
                authz.count(True, identity)
        limit = ctx.connection_limit
        if limit is not None and not limit.take(self.started):
            ctx.stats.flag("RL")  # over the connection rate limit: closed at once
            self.transport.abort()
            return
        if ctx.sni_routing:
            # Route by the ClientHello's server name: wait for it (bounded in size by the
            # reader, in time by HELLO_TIMEOUT), keeping the bytes to forward untouched.
            self.hello = ClientHelloReader()
            self.deadline = self.started + HELLO_TIMEOUT
            return
        self._route(None)

    def _route(self, server_name: str | None) -> None:
        ctx = self.ctx
        name = ctx.pick_cluster(server_name)
        if name is None:
            # No chain for this server name (egress REGISTRY_ONLY): close, counted.
            ctx.stats.flag("NR")
            if self.transport is not None:
                self.transport.abort()
            return
        cluster = ctx.clusters.get(name)
        if cluster is None:
            self._fail(name, "NC")
            return
        if cluster.passthrough:
            authority = f"{server_name}:{ctx.sni_port}" if server_name else ""
            ep = cluster.endpoint_for(authority.encode())
        else:
            ep = cluster.pick(None)
        if ep is None:
            self._fail(name, "UH")
            return
        self.cluster = cluster
        self.endpoint = ep
        ep.active += 1
        cluster.stats.rq_active += 1
        if ctx.request_metrics:
            key = (name, "", self.peer_identity or "", ep.workload, ep.version)
            conn = self.conn = ctx.stats.for_connection(key)
            conn.opened += 1
            conn.active += 1
        asyncio.get_running_loop().create_task(self._open(cluster, ep))

    def _fail(self, cluster: str, flag: str) -> None:
        self.ctx.stats.flag(flag)
        self.ctx.stats.for_cluster(cluster).record(503, time.monotonic() - self.started)
        if self.transport is not None:
            self.transport.abort()

    async def _open(self, cluster: ClusterRuntime, ep: EndpointState) -> None:
        loop = asyncio.get_running_loop()
        tls = cluster.tls if ep.tls else None
        host = tls.server_hostname(ep.address, ep.port) if tls is not None else None
        try:
            if ep.tls and tls is None:
                cluster.stats.tls_failures += 1
                raise OSError("no TLS material for a TLS endpoint")
            async with asyncio.timeout(cluster.config.connect_timeout):
                transport, up = await loop.create_connection(
                    lambda: TcpUpstream(self, cluster),
                    ep.address,
                    ep.port,
                    ssl=tls.context if tls is not None else None,
                    server_hostname=host,
                    ssl_handshake_timeout=cluster.config.connect_timeout
                    if tls is not None
                    else None,
                )
            if tls is not None:
                cluster.stats.tls_handshakes += 1
                ssl_object = transport.get_extra_info("ssl_object")
                if ssl_object is not None and ssl_object.session_reused:
                    cluster.stats.tls_resumed += 1
                if not san_allowed(peer_identity(transport), tls.verify_sans):
                    cluster.stats.tls_failures += 1
                    up.close()
                    raise OSError("peer identity not accepted")
                up.tls_host = host
        except (OSError, TimeoutError, ValueError) as exc:
            cluster.stats.connect_fail += 1
            if tls is not None and handshake_failed(exc):
                cluster.stats.tls_failures += 1
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
        conn = self.conn
        if conn is not None:
            conn.rx += len(data)
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.write(data)
            return
        self.pending.append(data)
        self.pending_size += len(data)
        hello = self.hello
        if hello is not None:
            result = hello.feed(data)
            if result is not None:
                self.hello = None
                self.deadline = INF
                self._route(result.server_name if result.tls else None)
                return
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
        conn = self.conn
        if conn is not None:
            self.conn = None
            conn.closed += 1
            conn.active -= 1
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
        if self.hello is not None:  # no ClientHello in time
            self.ctx.stats.flag("NR")
            self.close()
            return
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
    __slots__ = ("activity", "cluster", "down", "tls_host", "transport")

    def __init__(self, down: TcpDownstream, cluster: ClusterRuntime) -> None:
        self.down = down
        self.cluster = cluster
        self.transport: asyncio.Transport | None = None
        self.activity = False
        self.tls_host: str | None = None  # TLS: kept until the session is remembered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.cluster.stats.cx_total += 1
        self.cluster.stats.cx_active += 1

    def data_received(self, data: bytes) -> None:
        self.activity = True
        if self.tls_host is not None:
            self._remember_session()
        conn = self.down.conn
        if conn is not None:
            conn.tx += len(data)
        t = self.down.transport
        if t is not None:
            t.write(data)

    def _remember_session(self) -> None:
        # Bytes from the server: TLS 1.3 session tickets have arrived before them.
        host, self.tls_host = self.tls_host, None
        tls = self.cluster.tls
        t = self.transport
        if host is not None and tls is not None and t is not None:
            ssl_object = t.get_extra_info("ssl_object")
            if ssl_object is not None:
                tls.context.remember(host, ssl_object)

    def eof_received(self) -> bool:
        down = self.down
        down.eofs |= 2
        t = down.transport
        if t is not None and t.can_write_eof():
            t.write_eof()
        elif t is not None:
            # The client side is TLS (another sidecar): a half-close cannot cross it, so
            # the server's end closes the connection, once what it sent is flushed.
            down.eofs = 3
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
