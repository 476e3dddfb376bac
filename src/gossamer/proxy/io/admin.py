"""The admin listener's HTTP server: small, keep-alive, one request at a time.

It uses the same HTTP/1 core as the data path; the endpoints themselves are in
proxy/admin/ and are async (stats are gathered from the worker processes). An endpoint
may answer with an async iterator of bytes instead of a body (`/tap`): it is streamed
chunked, waits while the client's socket is full, and is cancelled when the client goes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import cast

from gossamer.core.logs import get_logger
from gossamer.protocols.http1 import ProtocolError, RequestHead, request_parser
from gossamer.proxy.io.listener import bind_socket

log = get_logger("proxy.admin")

AdminResponse = tuple[int, str, bytes | AsyncIterator[bytes]]  # status, type, body
AdminHandler = Callable[[str, str, bytes], Awaitable[AdminResponse]]
MAX_BODY = 64 * 1024


class AdminConnection(asyncio.Protocol):
    def __init__(self, handler: AdminHandler, connections: set[AdminConnection]) -> None:
        self.handler = handler
        self.connections = connections
        self.parser = request_parser(self)
        self.transport: asyncio.Transport | None = None
        self.head: RequestHead | None = None
        self.body = bytearray()
        self.task: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.streaming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.transport = None
        self.writable.set()
        if self.task is not None and self.streaming:
            self.task.cancel()  # a streamed response: its reader is gone

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            if self.transport is not None:
                self.transport.write(exc.response())
                self.transport.close()

    def on_request_head(self, head: RequestHead) -> None:
        self.head = head
        self.body.clear()

    def on_body(self, data: bytes) -> None:
        if len(self.body) + len(data) > MAX_BODY:
            raise ProtocolError(413, "admin request body too large")
        self.body += data

    def on_message_complete(self) -> None:
        self.parser.pause()
        head = self.head
        assert head is not None
        self.task = asyncio.get_running_loop().create_task(self._serve(head, bytes(self.body)))

    def on_upgrade(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.close()

    async def _serve(self, head: RequestHead, body: bytes) -> None:
        try:
            status, ctype, content = await self.handler(
                head.method.decode("latin-1"), head.path.decode("latin-1"), body
            )
        except Exception:
            log.error("admin endpoint failed", path=head.path.decode("latin-1"), exc_info=True)
            status, ctype, content = 500, "text/plain", b"internal error\n"
        transport = self.transport
        if transport is None:
            return
        phrase = HTTPStatus(status).phrase
        if not isinstance(content, bytes):
            await self._stream(transport, status, phrase, ctype, content)
            return
        keep = head.keep_alive
        lines = [
            f"HTTP/1.1 {status} {phrase}\r\n",
            f"content-type: {ctype}\r\n",
            f"content-length: {len(content)}\r\n",
            "cache-control: no-cache\r\n",
            "" if keep else "connection: close\r\n",
            "\r\n",
        ]
        transport.write(
            "".join(lines).encode("latin-1") + (b"" if head.method == b"HEAD" else content)
        )
        if not keep:
            transport.close()
            return
        try:
            self.parser.resume()
        except ProtocolError as exc:
            transport.write(exc.response())
            transport.close()

    async def _stream(
        self,
        transport: asyncio.Transport,
        status: int,
        phrase: str,
        ctype: str,
        chunks: AsyncIterator[bytes],
    ) -> None:
        self.streaming = True
        transport.write(
            f"HTTP/1.1 {status} {phrase}\r\ncontent-type: {ctype}\r\n"
            "transfer-encoding: chunked\r\ncache-control: no-cache\r\n"
            "connection: close\r\n\r\n".encode("latin-1")
        )
        try:
            async for chunk in chunks:
                if self.transport is None:
                    return
                if chunk:
                    transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await self.writable.wait()
            if self.transport is not None:
                transport.write(b"0\r\n\r\n")
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            if self.transport is not None:
                transport.close()


class AdminServer:
    def __init__(self, handler: AdminHandler) -> None:
        self.handler = handler
        self.connections: set[AdminConnection] = set()
        self._server: asyncio.AbstractServer | None = None
        self.address = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        sock = bind_socket(host, port, reuse_port=False)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: AdminConnection(self.handler, self.connections), sock=sock
        )
        self.address, self.port = sock.getsockname()[:2]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
            if conn.task is not None:
                conn.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await conn.task
