"""Hypothesis: the parsers only ever raise ProtocolError, and the two backends agree.

Mutations are byte-level edits of valid messages (the inputs that probe the grammar's
edges); each input is also cut into random reads. For a mutated message both backends must
accept it with identical events and heads, or both reject it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossamer.protocols.http1 import BACKENDS, ProtocolError, RequestHead, ResponseHead
from tests.unit.protocols.http1_support import (
    Recorder,
    feed_pieces,
    req_parser,
    resp_parser,
    split_at,
)

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

VALID_REQUESTS = [
    b"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    (
        b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;ext=1;q="x y"\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer-A: 1\r\n\r\n'
    ),
    b"GET http://benigno:5000/x?y HTTP/1.1\r\nHost: benigno:5000\r\n"
    b"Proxy-Connection: keep-alive\r\n\r\n",
    b"CONNECT benigno:443 HTTP/1.1\r\nHost: benigno:443\r\n\r\nTLSDATA",
    b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nframes",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    b"GET / HTTP/1.0\r\n\r\nGET /x HTTP/1.0\r\n\r\n",
    b"PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
]
VALID_RESPONSES = [
    (b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"),
    (
        b"GET",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
    ),
    (b"HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"),
    (b"GET", b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil eof"),
    (
        b"GET",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nws",
    ),
    (b"CONNECT", b"HTTP/1.1 200 Connection established\r\n\r\ntunnel"),
    (b"GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: x\r\n\r\n"),
]
# Bytes and snippets that matter to the grammar, besides arbitrary bytes.
SPECIAL = [
    b"\r", b"\n", b" ", b"\t", b"\x00", b":", b";", b",", b'"', b"\\", b"=", b"0", b"f",
    b"\x7f", b"\xff", b"/", b"?", b"#", b"@", b"\r\n", b"\r\n\r\n", b"chunked", b"close",
    b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"upgrade", b"HTTP/1.0",
]  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "duplicate"]))
        pos = draw(st.integers(0, len(data)))
        snippet = draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=2))
        if op == "replace" and data:
            data[min(pos, len(data) - 1)] = snippet[0]
        elif op == "insert":
            data[pos:pos] = snippet
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 4))]
        else:
            end = draw(st.integers(pos, min(len(data), pos + 20)))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def summary(head: RequestHead | ResponseHead) -> tuple[object, ...]:
    if isinstance(head, RequestHead):
        return (
            head.method,
            head.target,
            head.version,
            head.headers,
            head.host,
            head.content_length,
            head.chunked,
            head.keep_alive,
            head.upgrade,
            head.expect_continue,
            head.authority,
            head.path,
            head.trailers,
        )
    return (
        head.status,
        head.reason,
        head.version,
        head.headers,
        head.content_length,
        head.chunked,
        head.keep_alive,
        head.body_until_eof,
        head.upgrade,
        head.trailers,
    )


def run(backend: str, data: bytes, cuts: list[int], method: bytes | None) -> tuple[object, ...]:
    """Feed ``data`` in pieces, then EOF. Anything but ProtocolError escapes (and fails)."""
    rec: Recorder
    if method is None:
        parser, rec = req_parser(backend)
    else:
        rparser, rec = resp_parser(backend)
        rparser.expect_response(method)
        parser = rparser
    try:
        feed_pieces(parser, split_at(data, cuts), eof=True)
    except ProtocolError as err:
        assert err.status in (400, 414, 431, 501, 505) if method is None else err.status == 502
        return ("rejected",)
    for head in rec.heads:  # a well-formed message: the head's facts are consistent
        assert head.raw is None or data.find(head.raw) >= 0
        if isinstance(head, RequestHead):
            assert head.version in (b"1.0", b"1.1")
            assert not (head.chunked and head.content_length is not None)
    return ("accepted", rec.events, [summary(h) for h in rec.heads], [h.raw for h in rec.heads])


def assert_agree(data: bytes, cuts: list[int], method: bytes | None) -> None:
    fast, pure = (run(b, data, cuts, method) for b in BACKENDS)
    assert fast[0] == pure[0], (data, fast, pure)
    if fast[0] == "accepted":
        assert fast[1:3] == pure[1:3], data
        # httptools cannot always recover raw (pipelining); when it does, it is exact.
        for raw_fast, raw_pure in zip(fast[3], pure[3], strict=True):  # type: ignore[call-overload]
            assert raw_fast in (None, raw_pure)


@FUZZ
@given(data=st.data())
def test_mutated_requests_agree(data: st.DataObject) -> None:
    message = data.draw(st.sampled_from(VALID_REQUESTS).flatmap(mutated))
    cuts = data.draw(st.lists(st.integers(0, len(message)), max_size=4))
    assert_agree(message, cuts, None)


@FUZZ
@given(data=st.data())
def test_mutated_responses_agree(data: st.DataObject) -> None:
    method, base = data.draw(st.sampled_from(VALID_RESPONSES))
    message = data.draw(mutated(base))
    cuts = data.draw(st.lists(st.integers(0, len(message)), max_size=4))
    assert_agree(message, cuts, method)


@settings(max_examples=100, deadline=None)
@given(
    message=st.binary(max_size=200),
    cuts=st.lists(st.integers(0, 200), max_size=4),
    method=st.sampled_from([None, b"GET", b"HEAD", b"CONNECT"]),
)
def test_random_bytes_only_raise_protocol_errors(
    message: bytes, cuts: list[int], method: bytes | None
) -> None:
    assert_agree(message, cuts, method)


_TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~",
    min_size=1,
    max_size=12,
)
_VALUE = st.binary(max_size=20).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c < 127 or c >= 128).strip(b" \t")
)


@settings(max_examples=100, deadline=None)
@given(
    method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"PATCH"]),
    path=st.text("abcxyz019/-._~%?=&", max_size=30).map(lambda s: b"/" + s.encode()),
    fields=st.lists(st.tuples(_TOKEN.map(str.encode), _VALUE), max_size=8),
    body=st.binary(max_size=64),
    chunked=st.booleans(),
    cuts=st.lists(st.integers(0, 400), max_size=5),
)
def test_generated_requests_round_trip(
    method: bytes,
    path: bytes,
    fields: list[tuple[bytes, bytes]],
    body: bytes,
    chunked: bool,
    cuts: list[int],
) -> None:
    """Valid requests built from parts come out as those parts, on both backends."""
    reserved = {b"host", b"content-length", b"transfer-encoding", b"connection", b"upgrade"}
    fields = [
        (n, v) for n, v in fields if n.lower() not in reserved and n.lower() != b"proxy-connection"
    ]
    framing = (
        b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % len(body)
    )
    wire_body = (
        (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n" if chunked else body
    )
    raw = (
        method + b" " + path + b" HTTP/1.1\r\nHost: h\r\n"
        + b"".join(n + b": " + v + b"\r\n" for n, v in fields)
        + framing + b"\r\n" + wire_body
    )  # fmt: skip
    for backend in BACKENDS:
        parser, rec = req_parser(backend)
        feed_pieces(parser, split_at(raw, cuts), eof=True)
        head = rec.heads[0]
        assert isinstance(head, RequestHead)
        assert (head.method, head.target, head.chunked) == (method, path, chunked)
        assert head.headers[1:-1] == fields
        assert rec.bodies == [body]
