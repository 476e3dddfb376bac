"""The server name (SNI) of a TLS ClientHello, from the first bytes of a connection.

Sans-IO: `ClientHelloReader.feed(data)` takes bytes as they arrive and answers once it
knows: `NEED_MORE`, or a `ClientHello` result (is it TLS at all, and the SNI host name if
one was sent). Nothing is consumed: the caller keeps the bytes and forwards them
untouched, so TLS is matched by SNI without being terminated (Envoy's tls_inspector).

Bounded: a ClientHello is read up to MAX_HELLO bytes (it may span several TLS records);
anything malformed or larger is "not a ClientHello we can read", never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HANDSHAKE: Final = 22
CLIENT_HELLO: Final = 1
SERVER_NAME: Final = 0  # extension type
HOST_NAME: Final = 0  # server name type
MAX_HELLO: Final = 64 * 1024
RECORD_HEADER: Final = 5


@dataclass(frozen=True, slots=True)
class ClientHello:
    tls: bool  # the bytes are a TLS handshake we could read
    server_name: str | None = None
    error: str = ""  # why it is not (for logs)


NEED_MORE: Final = None
NOT_TLS = ClientHello(False, error="not a TLS handshake")


def _malformed(why: str) -> ClientHello:
    return ClientHello(False, error=f"malformed ClientHello: {why}")


class ClientHelloReader:
    """Feed the first bytes of a connection; `feed` returns None until it can answer."""

    __slots__ = ("_buffer", "result")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.result: ClientHello | None = None

    def feed(self, data: bytes) -> ClientHello | None:
        if self.result is not None:
            return self.result
        self._buffer += data
        self.result = _parse(bytes(self._buffer))
        if self.result is not None:
            self._buffer.clear()
        return self.result


def _parse(buf: bytes) -> ClientHello | None:
    # TLS records: type(1) version(2) length(2) fragment; the handshake message may span
    # several records, so collect fragments until the ClientHello is whole.
    if len(buf) >= 1 and buf[0] != HANDSHAKE:
        return NOT_TLS
    if len(buf) >= 2 and buf[1] != 3:
        return NOT_TLS
    handshake = bytearray()
    pos = 0
    while True:
        if len(buf) - pos < RECORD_HEADER:
            return NEED_MORE if len(buf) < MAX_HELLO else _malformed("too large")
        if buf[pos] != HANDSHAKE or buf[pos + 1] != 3:
            return _malformed("a record that is not a handshake inside the ClientHello")
        length = int.from_bytes(buf[pos + 3 : pos + 5], "big")
        if length == 0 or length > 16384 + 2048:
            return _malformed(f"record length {length}")
        if len(buf) - pos - RECORD_HEADER < length:
            return NEED_MORE if len(buf) < MAX_HELLO + RECORD_HEADER else _malformed("too large")
        handshake += buf[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        pos += RECORD_HEADER + length
        if len(handshake) >= 4:
            if handshake[0] != CLIENT_HELLO:
                return _malformed(f"handshake type {handshake[0]} is not ClientHello")
            body_length = int.from_bytes(handshake[1:4], "big")
            if body_length > MAX_HELLO:
                return _malformed("too large")
            if len(handshake) >= 4 + body_length:
                return _client_hello(bytes(handshake[4 : 4 + body_length]))


def _client_hello(body: bytes) -> ClientHello:
    try:
        return _read_hello(body)
    except (IndexError, ValueError) as exc:
        return _malformed(str(exc) or "truncated")


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.number(length_bytes))


def _read_hello(body: bytes) -> ClientHello:
    c = _Cursor(body)
    c.take(2)  # legacy_version
    c.take(32)  # random
    c.vector(1)  # legacy_session_id
    suites = c.vector(2)
    if not suites or len(suites) % 2:
        raise ValueError("cipher suites")
    c.vector(1)  # compression methods
    if c.pos == len(body):
        return ClientHello(True)  # no extensions at all (old clients): no SNI
    extensions = _Cursor(c.vector(2))
    if c.pos != len(body):
        raise ValueError("bytes after the extensions")
    while extensions.pos < len(extensions.data):
        kind = extensions.number(2)
        data = extensions.vector(2)
        if kind != SERVER_NAME:
            continue
        names = _Cursor(data)
        listing = _Cursor(names.vector(2))
        if names.pos != len(data):
            raise ValueError("server_name extension length")
        while listing.pos < len(listing.data):
            name_type = listing.number(1)
            name = listing.vector(2)
            if name_type == HOST_NAME:
                try:
                    host = name.decode("ascii")
                except UnicodeDecodeError:
                    raise ValueError("server name is not ASCII") from None
                if not host or any(ch in host for ch in "\x00/ ") or len(host) > 253:
                    raise ValueError(f"server name {host!r}")
                return ClientHello(True, host.lower().rstrip("."))
        return ClientHello(True)
    return ClientHello(True)


__all__ = ["NEED_MORE", "NOT_TLS", "ClientHello", "ClientHelloReader"]
