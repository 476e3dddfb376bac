"""Malformed requests and the status a Gossamer sidecar must answer to each.

Reused by the end-to-end tests: send ``raw`` on a fresh connection to a sidecar listener,
expect a response with ``expected_status`` and ``connection: close``, and nothing
forwarded upstream. ``MALFORMED_RESPONSES`` are upstream answers the sidecar must turn
into a 502.
"""

from __future__ import annotations

from typing import Final


def _req(head: str, body: bytes = b"") -> bytes:
    """A request from readable text: lines joined with CRLF, the head closed by CRLF CRLF."""
    return head.replace("\n", "\r\n").encode("latin-1") + b"\r\n\r\n" + body


_GET = "GET / HTTP/1.1\nHost: benigno\n"
_POST = "POST /items HTTP/1.1\nHost: benigno\n"

# (name, raw bytes, expected status)
MALFORMED_REQUESTS: Final[list[tuple[str, bytes, int]]] = [
    # -- framing -----------------------------------------------------------------------
    (
        "content-length-and-chunked",
        _req(_POST + "Content-Length: 5\nTransfer-Encoding: chunked", b"0\r\n\r\n"),
        400,
    ),
    (
        "chunked-and-content-length",
        _req(_POST + "Transfer-Encoding: chunked\nContent-Length: 5", b"0\r\n\r\n"),
        400,
    ),
    (
        "duplicate-content-length",
        _req(_POST + "Content-Length: 5\nContent-Length: 5", b"hello"),
        400,
    ),
    (
        "differing-content-length",
        _req(_POST + "Content-Length: 5\nContent-Length: 6", b"hello!"),
        400,
    ),
    ("content-length-list", _req(_POST + "Content-Length: 5, 5", b"hello"), 400),
    ("content-length-not-a-number", _req(_POST + "Content-Length: five", b"hello"), 400),
    ("content-length-negative", _req(_POST + "Content-Length: -5", b"hello"), 400),
    ("content-length-plus-sign", _req(_POST + "Content-Length: +5", b"hello"), 400),
    ("content-length-hex", _req(_POST + "Content-Length: 0x5", b"hello"), 400),
    ("content-length-empty", _req(_POST + "Content-Length: ", b"hello"), 400),
    ("content-length-overflow", _req(_POST + "Content-Length: 99999999999999999999999"), 400),
    (
        "chunk-size-not-hex",
        _req(_POST + "Transfer-Encoding: chunked", b"zz\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-size-trailing-space",
        _req(_POST + "Transfer-Encoding: chunked", b"5 \r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-size-negative",
        _req(_POST + "Transfer-Encoding: chunked", b"-5\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-size-overflow",
        _req(_POST + "Transfer-Encoding: chunked", b"10000000000000000\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-size-empty",
        _req(_POST + "Transfer-Encoding: chunked", b"\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-extension-empty",
        _req(_POST + "Transfer-Encoding: chunked", b"5;\r\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-data-too-long",
        _req(_POST + "Transfer-Encoding: chunked", b"5\r\nhello!\r\n0\r\n\r\n"),
        400,
    ),
    (
        "chunk-size-bare-lf",
        _req(_POST + "Transfer-Encoding: chunked", b"5\nhello\r\n0\r\n\r\n"),
        400,
    ),
    (
        "content-length-in-trailers",
        _req(_POST + "Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n"),
        400,
    ),
    # -- transfer-codings ----------------------------------------------------------------
    ("transfer-coding-gzip", _req(_POST + "Transfer-Encoding: gzip", b"x"), 501),
    ("transfer-coding-gzip-chunked", _req(_POST + "Transfer-Encoding: gzip, chunked"), 501),
    ("transfer-coding-identity", _req(_POST + "Transfer-Encoding: identity", b"x"), 501),
    ("transfer-coding-chunked-gzip", _req(_POST + "Transfer-Encoding: chunked, gzip"), 400),
    (
        "transfer-coding-chunked-twice",
        _req(_POST + "Transfer-Encoding: chunked\nTransfer-Encoding: chunked"),
        400,
    ),
    ("transfer-coding-empty", _req(_POST + "Transfer-Encoding: "), 400),
    # -- field syntax --------------------------------------------------------------------
    ("obs-fold-space", _req(_GET + "X-Long: part one\n  part two"), 400),
    ("obs-fold-tab", _req(_GET + "X-Long: part one\n\tpart two"), 400),
    ("space-before-first-field", _req("GET / HTTP/1.1\n Host: benigno"), 400),
    ("nul-in-value", _req(_GET + "X-A: a\x00b"), 400),
    ("bare-cr-in-value", _req(_GET + "X-A: a\rb"), 400),
    ("control-char-in-value", _req(_GET + "X-A: a\x01b"), 400),
    ("del-in-value", _req(_GET + "X-A: a\x7fb"), 400),
    ("escape-in-value", _req(_GET + "X-A: \x1b[31mred"), 400),
    ("bare-lf-line-end", b"GET / HTTP/1.1\nHost: benigno\n\n", 400),
    ("bare-lf-in-fields", b"GET / HTTP/1.1\r\nHost: benigno\nX-A: 1\r\n\r\n", 400),
    ("nul-in-name", _req(_GET + "X-\x00A: 1"), 400),
    ("control-char-in-name", _req(_GET + "X-\x01A: 1"), 400),
    ("bare-cr-in-name", _req(_GET + "X-\rA: 1"), 400),
    ("invalid-name-token", _req(_GET + "X(A): 1"), 400),
    ("non-ascii-name", _req(_GET + "X-\xe9: 1"), 400),
    ("space-in-name", _req(_GET + "X A: 1"), 400),
    ("empty-name", _req(_GET + ": 1"), 400),
    ("no-colon", _req(_GET + "X-A 1"), 400),
    ("space-before-colon", _req("GET / HTTP/1.1\nHost : benigno"), 400),
    ("tab-before-colon", _req(_GET + "X-A\t: 1"), 400),
    # -- limits --------------------------------------------------------------------------
    ("header-section-too-large", _req(_GET + "X-Big: " + "a" * (64 * 1024)), 431),
    ("too-many-fields", _req(_GET + "".join(f"X-{i}: {i}\n" for i in range(100))[:-1]), 431),
    ("request-target-too-long", _req("GET /" + "a" * (8 * 1024) + " HTTP/1.1\nHost: benigno"), 414),
    # -- request line --------------------------------------------------------------------
    ("version-1.2", _req("GET / HTTP/1.2\nHost: benigno"), 505),
    ("version-2.0", _req("GET / HTTP/2.0\nHost: benigno"), 505),
    ("version-3.0", _req("GET / HTTP/3.0\nHost: benigno"), 505),
    ("version-0.9", _req("GET /\nHost: benigno"), 505),
    ("h2-prior-knowledge", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("version-not-digits", _req("GET / HTTP/1.x\nHost: benigno"), 400),
    ("version-lower-case", _req("GET / http/1.1\nHost: benigno"), 400),
    ("version-trailing-space", _req("GET / HTTP/1.1 \nHost: benigno"), 400),
    ("rtsp-request-line", _req("GET / RTSP/1.0\nHost: benigno"), 400),
    ("unknown-method", _req("FETCH / HTTP/1.1\nHost: benigno"), 400),
    ("lower-case-method", _req("get / HTTP/1.1\nHost: benigno"), 400),
    ("tab-after-method", _req("GET\t/ HTTP/1.1\nHost: benigno"), 400),
    ("space-in-target", _req("GET /a b HTTP/1.1\nHost: benigno"), 400),
    ("control-char-in-target", _req("GET /a\x01 HTTP/1.1\nHost: benigno"), 400),
    ("non-ascii-in-target", _req("GET /caf\xe9 HTTP/1.1\nHost: benigno"), 400),
    ("relative-target", _req("GET items HTTP/1.1\nHost: benigno"), 400),
    ("absolute-form-without-host", _req("GET http:///x HTTP/1.1\nHost: benigno"), 400),
    ("connect-origin-form", _req("CONNECT /x HTTP/1.1\nHost: benigno"), 400),
    ("connect-without-port", _req("CONNECT benigno HTTP/1.1\nHost: benigno"), 400),
    # -- semantics -----------------------------------------------------------------------
    ("missing-host", _req("GET / HTTP/1.1\nAccept: */*"), 400),
    ("duplicate-host", _req("GET / HTTP/1.1\nHost: a\nHost: b"), 400),
    (
        "upgrade-with-body",
        _req(
            "POST / HTTP/1.1\nHost: b\nConnection: upgrade\nUpgrade: h2c\nContent-Length: 2",
            b"hi",
        ),
        400,
    ),
]

# (name, method of the request, raw response): each must give a 502.
MALFORMED_RESPONSES: Final[list[tuple[str, bytes, bytes]]] = [
    ("status-not-3-digits", b"GET", b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"),
    ("status-4-digits", b"GET", b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
    ("status-below-100", b"GET", b"HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n"),
    ("version-2.0", b"GET", b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("version-1.2", b"GET", b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ("control-char-in-reason", b"GET", b"HTTP/1.1 200 O\x00K\r\nContent-Length: 0\r\n\r\n"),
    ("bare-lf-status-line", b"GET", b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
    ("obs-fold", b"GET", b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
    ("nul-in-value", b"GET", b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n"),
    ("space-before-colon", b"GET", b"HTTP/1.1 200 OK\r\nX : a\r\nContent-Length: 0\r\n\r\n"),
    (
        "content-length-and-chunked",
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "duplicate-content-length",
        b"GET",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    ),
    ("invalid-content-length", b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
    ("transfer-coding-gzip", b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc"),
    (
        "transfer-coding-chunked-gzip",
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc",
    ),
    (
        "invalid-chunk-size",
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n",
    ),
    (
        "transfer-encoding-in-trailers",
        b"GET",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: x\r\n\r\n",
    ),
    ("101-without-upgrade", b"GET", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
    (
        "101-to-head",
        b"HEAD",
        b"HTTP/1.1 101 Switching\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    ),
    (
        "unknown-1xx",
        b"GET",
        b"HTTP/1.1 150 Odd\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    ),
    ("truncated-body", b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
    ("truncated-head", b"GET", b"HTTP/1.1 200 OK\r\nContent-Le"),
    ("not-http", b"GET", b"SSH-2.0-OpenSSH_9.2\r\n"),
    ("header-section-too-large", b"GET", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n"),
]
