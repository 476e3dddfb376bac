"""Responses the proxy writes itself: errors with their response flags, direct responses,
redirects. Built from bytes templates, so a local reply costs one format."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

_PHRASES = {s.value: s.phrase.encode() for s in HTTPStatus}


def local_reply(
    status: int,
    body: bytes,
    flags: str,
    keep_alive: bool,
    head_request: bool = False,
    client_version: bytes = b"1.1",
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """A complete response. `flags` goes into x-gossamer-flags (Envoy-style response
    flags: NR no route, UH no healthy upstream, UF connect failure, UC upstream closed,
    UT timeout, UO overflow, NC no cluster, DPE/UPE protocol errors, SI header timeout)."""
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, _PHRASES.get(status, b"Unknown"))]
    if body:
        lines.append(b"content-type: text/plain\r\n")
    lines.append(b"content-length: %d\r\n" % len(body))
    if not keep_alive:
        lines.append(b"connection: close\r\n")
    elif client_version == b"1.0":
        lines.append(b"connection: keep-alive\r\n")
    if flags:
        lines.append(b"x-gossamer-flags: %s\r\n" % flags.encode())
    for name, value in extra:
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    if not head_request:
        lines.append(body)
    return b"".join(lines)
