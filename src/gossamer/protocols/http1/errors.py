"""The one error type of the HTTP/1 core, and the error responses the proxy sends."""

from __future__ import annotations

from http import HTTPStatus


class ProtocolError(Exception):
    """A message the proxy must not forward.

    ``status`` is what the proxy answers (400, 414, 431, 501, 505 for a client's request;
    502 for anything wrong in an upstream response), ``reason`` a short human text and
    ``flags`` the Envoy-style response flag for logs and ``x-gossamer-flags`` ("DPE":
    downstream protocol error, "UPE": upstream protocol error). After it the connection is
    closed; the parser that raised it refuses further input.
    """

    __slots__ = ("flags", "reason", "status")

    def __init__(self, status: int, reason: str, flags: str = "DPE") -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.flags = flags

    def __str__(self) -> str:
        return f"{self.status} {self.reason}"

    def response(self) -> bytes:
        """The complete error response to write before closing."""
        return error_response(self.status, self.reason, self.flags)


def error_response(status: int, reason: str, flags: str = "") -> bytes:
    """A self-contained ``connection: close`` plain-text response, e.g. for 400/502/503.

    The body is ``reason`` plus a newline; ``flags`` goes into ``x-gossamer-flags``
    (Envoy-like response flags such as "UF" upstream connect failure, "UC" upstream reset,
    "DPE" downstream protocol error) and is omitted when empty.
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    body = (reason + "\n").encode("utf-8", "replace")
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "content-type: text/plain\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n"
    )
    if flags:
        head += f"x-gossamer-flags: {flags}\r\n"
    return (head + "\r\n").encode("latin-1") + body
