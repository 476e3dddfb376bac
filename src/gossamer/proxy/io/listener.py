"""Listening sockets and the connections they accepted.

Each worker process binds its own socket with SO_REUSEPORT, so the kernel spreads new
connections over the workers. A handle outlives config swaps: the Runtime replaces its
`ctx` (what new requests see) and keeps the socket and every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import TYPE_CHECKING, Any, Protocol

from gossamer.core.logs import get_logger
from gossamer.proxy.context import Context, HttpContext
from gossamer.proxy.io.clock import Ticker
from gossamer.proxy.io.tls import HANDSHAKE_TIMEOUT, ServerTls

if TYPE_CHECKING:
    from gossamer.proxy.filters.stats import ListenerStats

log = get_logger("proxy.listener")

BACKLOG = 1024
TLS_RECORD_HANDSHAKE = 0x16  # the first byte of every TLS ClientHello
# A client that connects to a TLS listener and sends nothing is dropped after this.
FIRST_BYTE_TIMEOUT = 10.0


class Connection(Protocol):
    """What a listener needs from the connections it accepted, to drain them."""

    def drain(self) -> None: ...

    def abort(self) -> None: ...


def bind_socket(address: str, port: int, reuse_port: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ListenerHandle:
    """One bound listener: its socket, its current context, its live connections."""

    def __init__(
        self,
        name: str,
        ctx: Context,
        ticker: Ticker,
        stats: ListenerStats,
        tls: ServerTls | None = None,
    ) -> None:
        self.name = name
        self.ctx = ctx
        self.ticker = ticker
        self.stats = stats
        # TLS listeners: the context new connections get (replaced when the certificate
        # is renewed; connections keep the one they started with).
        self.tls = tls
        self.connections: set[Connection] = set()
        self.draining = False
        self.address = ""
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._handshakes: set[asyncio.Task[None]] = set()

    @property
    def key(self) -> tuple[str, int, bool]:
        return (self.ctx.listener.address, self.ctx.listener.port, self.tls is not None)

    def _protocol(self) -> asyncio.Protocol:
        from gossamer.proxy.io.http import HttpDownstream
        from gossamer.proxy.io.tcp import TcpDownstream

        # Read at accept time: a listener may change from HTTP to TCP in place.
        if isinstance(self.ctx, HttpContext):
            return HttpDownstream(self)
        return TcpDownstream(self)

    async def start(self, reuse_port: bool = True) -> None:
        listener = self.ctx.listener
        sock = bind_socket(listener.address, listener.port, reuse_port)
        loop = asyncio.get_running_loop()
        if self.tls is not None:
            # TLS: accept here, peek at the first byte (TLS or plaintext), then hand the
            # socket to a transport with the context current at that moment.
            self._sock = sock
            self._accepting = loop.create_task(self._accept_loop(sock))
        else:
            try:
                self._server = await loop.create_server(self._protocol, sock=sock, backlog=BACKLOG)
            except BaseException:
                sock.close()
                raise
        self.address, self.port = sock.getsockname()[:2]

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(sock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                log.warning("accept failed", listener=self.name, error=str(exc))
                await asyncio.sleep(0.05)
                continue
            task = loop.create_task(self._secure(conn, addr[0] if addr else ""))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _secure(self, conn: socket.socket, peer: str) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        tls = self.tls
        stats = self.stats
        try:
            first = await _peek(loop, conn)
            if tls is None or not first:
                conn.close()
                return
            if first[0] == TLS_RECORD_HANDSHAKE:
                await loop.connect_accepted_socket(
                    self._protocol, conn, ssl=tls.context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
                )
                stats.tls_handshakes += 1
            elif tls.allow_plaintext:
                stats.count_plaintext(peer, accepted=True)
                await loop.connect_accepted_socket(self._protocol, conn)
            else:
                stats.count_plaintext(peer, accepted=False)
                conn.close()  # STRICT: plaintext is refused
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, TimeoutError, ValueError) as exc:
            # Handshake failures (bad certificate, unknown CA, timeout) land here too.
            stats.tls_failures += 1
            log.debug("TLS handshake failed", listener=self.name, peer=peer, error=str(exc))
            with contextlib.suppress(OSError):
                conn.close()

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def drain(self) -> None:
        """Stop accepting; idle connections close now, busy ones after their response."""
        self.stop_accepting()
        self.draining = True
        for conn in list(self.connections):
            conn.drain()

    def abort_all(self) -> None:
        for task in list(self._handshakes):
            task.cancel()
        for conn in list(self.connections):
            conn.abort()

    @property
    def active(self) -> int:
        return len(self.connections)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": f"{self.address}:{self.port}",
            "connections": len(self.connections),
            "draining": self.draining,
            "tls": None
            if self.tls is None
            else ("PERMISSIVE" if self.tls.allow_plaintext else "STRICT"),
        }


async def _peek(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> bytes:
    """The first byte a client sent, without consuming it (b"" if it closed)."""
    fd = conn.fileno()
    ready = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        async with asyncio.timeout(FIRST_BYTE_TIMEOUT):
            await ready
    finally:
        loop.remove_reader(fd)
    return conn.recv(1, socket.MSG_PEEK)
