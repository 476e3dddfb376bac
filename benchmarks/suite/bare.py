"""A bare uvloop + httptools relay (no routing, checks or stats): the floor a Python
proxy pair can reach. Relays whole requests and responses as read; one upstream
connection per client.  `python -m benchmarks.suite.bare LISTEN_PORT TARGET_PORT`"""

from __future__ import annotations

import asyncio
import sys
from typing import Any


def bare_relay(listen: int, target: int) -> None:
    import httptools
    import uvloop

    class Up(asyncio.Protocol):
        def __init__(self, down: Down) -> None:
            self.down = down
            self.parser = httptools.HttpResponseParser(self)
            self.buf: list[bytes] = []

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buf.append(data)
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            if not self.down.transport.is_closing():
                self.down.transport.write(b"".join(self.buf))
            self.buf.clear()

    class Down(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.up: Up | None = None
            self.pending: list[bytes] = []
            self.buf: list[bytes] = []
            asyncio.get_running_loop().create_task(self.connect())

        async def connect(self) -> None:
            loop = asyncio.get_running_loop()
            _, self.up = await loop.create_connection(lambda: Up(self), "127.0.0.1", target)
            if self.pending:
                self.up.transport.write(b"".join(self.pending))

        def connection_lost(self, exc: Exception | None) -> None:
            if self.up is not None:
                self.up.transport.close()

        def data_received(self, data: bytes) -> None:
            self.buf.append(data)
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            data = b"".join(self.buf)
            self.buf.clear()
            if self.up is not None:
                self.up.transport.write(data)
            else:
                self.pending.append(data)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Down, "127.0.0.1", listen)
        await server.serve_forever()

    uvloop.run(serve())


if __name__ == "__main__":
    bare_relay(int(sys.argv[1]), int(sys.argv[2]))
