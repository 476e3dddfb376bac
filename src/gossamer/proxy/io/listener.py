"""Listening sockets and the connections they accepted.

Each worker process binds its own socket with SO_REUSEPORT, so the kernel spreads new
connections over the workers. A handle outlives config swaps: the Runtime replaces its
`ctx` (what new requests see) and keeps the socket and every connection.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any, Protocol

from gossamer.proxy.context import Context, HttpContext
from gossamer.proxy.io.clock import Ticker

if TYPE_CHECKING:
    from gossamer.proxy.filters.stats import ListenerStats

BACKLOG = 1024


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

    def __init__(self, name: str, ctx: Context, ticker: Ticker, stats: ListenerStats) -> None:
        self.name = name
        self.ctx = ctx
        self.ticker = ticker
        self.stats = stats
        self.connections: set[Connection] = set()
        self.draining = False
        self.address = ""
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.ctx.listener.address, self.ctx.listener.port)

    async def start(self, reuse_port: bool = True) -> None:
        from gossamer.proxy.io.http import HttpDownstream
        from gossamer.proxy.io.tcp import TcpDownstream

        listener = self.ctx.listener
        sock = bind_socket(listener.address, listener.port, reuse_port)

        def factory() -> asyncio.Protocol:
            # Read at accept time: a listener may change from HTTP to TCP in place.
            if isinstance(self.ctx, HttpContext):
                return HttpDownstream(self)
            return TcpDownstream(self)

        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(factory, sock=sock, backlog=BACKLOG)
        except BaseException:
            sock.close()
            raise
        self.address, self.port = sock.getsockname()[:2]

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def drain(self) -> None:
        """Stop accepting; idle connections close now, busy ones after their response."""
        self.stop_accepting()
        self.draining = True
        for conn in list(self.connections):
            conn.drain()

    def abort_all(self) -> None:
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
        }
