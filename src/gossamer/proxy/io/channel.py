"""The local socket between the main process and a worker: length-prefixed pickles.

Only ever connects a process to its own parent or child (a socketpair made before the
worker starts), so pickle's trust model holds. Messages are small tuples; a config is
pickled once by the main process and sent as bytes to every worker.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from collections.abc import Callable
from typing import Any, cast

_HEADER = struct.Struct("!I")


class Channel(asyncio.Protocol):
    def __init__(self, on_message: Callable[[Any], None], on_close: Callable[[], None]) -> None:
        self._on_message = on_message
        self._on_close = on_close
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    @classmethod
    async def open(
        cls, sock: socket.socket, on_message: Callable[[Any], None], on_close: Callable[[], None]
    ) -> Channel:
        loop = asyncio.get_running_loop()
        _, channel = await loop.connect_accepted_socket(lambda: cls(on_message, on_close), sock)
        return channel

    @property
    def open_(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._on_close()

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        while len(buf) >= 4:
            (size,) = _HEADER.unpack_from(buf)
            if len(buf) < 4 + size:
                return
            payload = bytes(buf[4 : 4 + size])
            del buf[: 4 + size]
            self._on_message(pickle.loads(payload))

    def send(self, message: Any) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.transport.write(_HEADER.pack(len(payload)) + payload)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
