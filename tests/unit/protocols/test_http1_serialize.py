"""Heads for the next hop: hop-by-hop removal, forwarding fields, rewrites, framing."""

from __future__ import annotations

import re

import pytest

from gossamer.protocols.http1 import (
    LAST_CHUNK,
    RequestHead,
    ResponseHead,
    build_request_head,
    build_response_head,
    downstream_chunked,
    encode_chunk,
    error_response,
    last_chunk,
    new_request_id,
)
from tests.unit.protocols.http1_support import req_parser, resp_parser

RID = re.compile(rb"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")


def parse_request(backend: str, raw: bytes, *, drop_raw: bool = False) -> RequestHead:
    parser, rec = req_parser(backend)
    parser.feed(raw)
    head = rec.heads[0]
    assert isinstance(head, RequestHead)
    if drop_raw:
        head.raw = None  # what httptools gives after a pipelined chunked request
    return head


def parse_response(backend: str, raw: bytes, method: bytes = b"GET") -> ResponseHead:
    parser, rec = resp_parser(backend)
    parser.expect_response(method)
    parser.feed(raw)
    head = rec.heads[-1]
    assert isinstance(head, ResponseHead)
    return head


def fields(head_bytes: bytes) -> list[tuple[bytes, bytes]]:
    lines = head_bytes.split(b"\r\n")
    assert lines[-2:] == [b"", b""], head_bytes
    return [tuple(line.split(b": ", 1)) for line in lines[1:-2]]  # type: ignore[misc]


@pytest.fixture(params=[False, True], ids=["raw", "rebuilt"])
def drop_raw(request: pytest.FixtureRequest) -> bool:
    """Each request test runs with the raw head (cut/splice) and without (rebuild)."""
    return bool(request.param)


def test_unchanged_head_is_forwarded_as_received(backend: str) -> None:
    raw = b"GET /a HTTP/1.1\r\nHost: b\r\nAccept: */*\r\nX-Request-Id: r1\r\n\r\n"
    head = parse_request(backend, raw)
    assert build_request_head(head) == raw
    assert head.request_id == b"r1"


def test_usual_proxy_fields_are_added(backend: str, drop_raw: bool) -> None:
    head = parse_request(backend, b"GET /a HTTP/1.1\r\nHost: b\r\n\r\n", drop_raw=drop_raw)
    out = build_request_head(head, client_addr=b"10.0.0.7", proto=b"http")
    assert out.startswith(b"GET /a HTTP/1.1\r\nHost: b\r\n")
    got = dict(fields(out))
    assert got[b"x-forwarded-for"] == b"10.0.0.7"
    assert got[b"x-forwarded-proto"] == b"http"
    assert RID.fullmatch(got[b"x-request-id"])
    assert head.request_id == got[b"x-request-id"]


def test_request_id_is_kept(backend: str, drop_raw: bool) -> None:
    head = parse_request(
        backend, b"GET / HTTP/1.1\r\nHost: b\r\nx-request-id: abc\r\n\r\n", drop_raw=drop_raw
    )
    out = build_request_head(head, client_addr=b"1.1.1.1", proto=b"https")
    assert [v for n, v in fields(out) if n.lower() == b"x-request-id"] == [b"abc"]
    head = parse_request(backend, b"GET / HTTP/1.1\r\nHost: b\r\n\r\n", drop_raw=drop_raw)
    assert b"x-request-id" not in build_request_head(head, request_id=False)


def test_new_request_ids_are_uuid4_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(RID.fullmatch(i) for i in ids)


def test_hop_by_hop_fields_are_removed(backend: str, drop_raw: bool) -> None:
    raw = (
        b"GET /a HTTP/1.1\r\n"
        b"Host: b\r\n"
        b"Connection: keep-alive, X-Hop, close\r\n"
        b"X-Hop: secret\r\n"
        b"Keep-Alive: timeout=5\r\n"
        b"Proxy-Connection: keep-alive\r\n"
        b"TE: trailers, deflate\r\n"
        b"Trailer: X-Checksum\r\n"
        b"Upgrade: websocket\r\n"
        b"Proxy-Authorization: Basic eA==\r\n"
        b"x-hop: again\r\n"
        b"Accept: */*\r\n\r\n"
    )
    head = parse_request(backend, raw, drop_raw=drop_raw)
    out = build_request_head(head, request_id=False)
    assert fields(out) == [(b"Host", b"b"), (b"Accept", b"*/*"), (b"te", b"trailers")]
    assert out.startswith(b"GET /a HTTP/1.1\r\n")


def test_te_trailers_is_forwarded(backend: str, drop_raw: bool) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: b\r\nConnection: TE\r\nTE: trailers\r\n\r\n"
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw), request_id=False)
    assert fields(out) == [(b"Host", b"b"), (b"TE", b"trailers")]


def test_connection_cannot_strip_framing_host_or_forwarding_fields(
    backend: str, drop_raw: bool
) -> None:
    raw = (
        b"POST / HTTP/1.1\r\nHost: b\r\n"
        b"Connection: Content-Length, Host, X-Forwarded-For, X-Request-Id\r\n"
        b"X-Forwarded-For: 1.2.3.4\r\nX-Request-Id: r\r\nContent-Length: 2\r\n\r\nhi"
    )
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw))
    assert fields(out) == [
        (b"Host", b"b"),
        (b"X-Forwarded-For", b"1.2.3.4"),
        (b"X-Request-Id", b"r"),
        (b"Content-Length", b"2"),
    ]


def test_framing_is_restated(backend: str, drop_raw: bool) -> None:
    raw = b"POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw), request_id=False)
    assert fields(out) == [(b"Host", b"b"), (b"transfer-encoding", b"chunked")]
    raw = b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 002\r\n\r\nhi"
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw), request_id=False)
    assert fields(out) == [(b"Host", b"b"), (b"content-length", b"2")]
    raw = b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi"  # canonical: untouched
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw), request_id=False)
    assert fields(out) == [(b"Host", b"b"), (b"Content-Length", b"2")]


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (b"", [b"10.0.0.7"]),
        (b"X-Forwarded-For: 1.2.3.4\r\n", [b"1.2.3.4, 10.0.0.7"]),
        (b"x-forwarded-for: 1.2.3.4, 5.6.7.8\r\n", [b"1.2.3.4, 5.6.7.8, 10.0.0.7"]),
        (
            b"X-Forwarded-For: 1.2.3.4\r\nAccept: */*\r\nX-FORWARDED-FOR: 5.6.7.8\r\n",
            [b"1.2.3.4", b"5.6.7.8, 10.0.0.7"],
        ),
    ],
)
def test_x_forwarded_for_is_appended(
    backend: str, drop_raw: bool, existing: bytes, expected: list[bytes]
) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: b\r\n" + existing + b"\r\n"
    out = build_request_head(
        parse_request(backend, raw, drop_raw=drop_raw), client_addr=b"10.0.0.7"
    )
    assert [v for n, v in fields(out) if n.lower() == b"x-forwarded-for"] == expected


def test_x_forwarded_proto_is_replaced(backend: str, drop_raw: bool) -> None:
    raw = b"GET / HTTP/1.1\r\nX-Forwarded-Proto: http\r\nHost: b\r\n\r\n"
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw), proto=b"https")
    assert [(n, v) for n, v in fields(out) if n.lower() == b"x-forwarded-proto"] == [
        (b"x-forwarded-proto", b"https")
    ]


def test_absolute_form_becomes_origin_form(backend: str, drop_raw: bool) -> None:
    raw = (
        b"GET http://benigno:5000/x?y HTTP/1.1\r\nHost: other\r\nProxy-Connection: keep-alive\r\n"
        b"Accept: */*\r\n\r\n"
    )
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw), request_id=False)
    assert out == b"GET /x?y HTTP/1.1\r\nAccept: */*\r\nhost: benigno:5000\r\n\r\n"


def test_target_rewrite_and_header_edits(backend: str, drop_raw: bool) -> None:
    raw = (
        b"GET /api/v1/items HTTP/1.0\r\nHost: b\r\nX-Debug: 1\r\nX-Env: dev\r\nAccept: */*\r\n\r\n"
    )
    out = build_request_head(
        parse_request(backend, raw, drop_raw=drop_raw),
        target=b"/items",
        set_headers=[(b"x-env", b"prod")],
        add_headers=[(b"x-route", b"r1")],
        remove_headers={b"x-debug"},
        request_id=False,
    )
    assert out == (
        b"GET /items HTTP/1.1\r\nHost: b\r\nAccept: */*\r\nx-env: prod\r\nx-route: r1\r\n\r\n"
    )


def test_host_can_be_set(backend: str, drop_raw: bool) -> None:
    raw = b"GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"
    out = build_request_head(
        parse_request(backend, raw, drop_raw=drop_raw), host=b"benigno", request_id=False
    )
    assert out == b"GET / HTTP/1.1\r\nAccept: */*\r\nhost: benigno\r\n\r\n"


def test_upgrade_request_keeps_upgrade(backend: str, drop_raw: bool) -> None:
    raw = (
        b"GET /chat HTTP/1.1\r\nHost: b\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"
    )
    out = build_request_head(parse_request(backend, raw, drop_raw=drop_raw), request_id=False)
    assert fields(out) == [
        (b"Host", b"b"),
        (b"Upgrade", b"websocket"),
        (b"Sec-WebSocket-Key", b"k"),
        (b"connection", b"upgrade"),
    ]


def test_connect_keeps_authority_form(backend: str) -> None:
    raw = b"CONNECT benigno:443 HTTP/1.1\r\nHost: benigno:443\r\n\r\n"
    out = build_request_head(parse_request(backend, raw), request_id=False)
    assert out == raw


def test_forwarded_request_parses_back(backend: str, drop_raw: bool) -> None:
    raw = (
        b"POST http://benigno/x HTTP/1.1\r\nHost: benigno\r\nConnection: keep-alive\r\n"
        b"Transfer-Encoding: chunked\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n"
    )
    head = parse_request(backend, raw, drop_raw=drop_raw)
    out = build_request_head(head, client_addr=b"2.2.2.2", proto=b"http")
    again = parse_request(backend, out)
    assert again.chunked and again.path == b"/x" and again.host == b"benigno"
    assert again.get(b"x-forwarded-for") == b"1.1.1.1, 2.2.2.2"
    assert again.request_id == head.request_id
    assert again.connection is None and again.flags & 1 == 0  # nothing left to clean up


# -- responses ----------------------------------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"


def test_clean_response_is_forwarded_as_is(backend: str) -> None:
    head = parse_response(backend, OK + b"hello")
    out = build_response_head(head)
    assert out == OK
    assert out is head.raw  # no copy at all


def test_response_connection_handling(backend: str) -> None:
    head = parse_response(backend, OK + b"hello")
    assert build_response_head(head, keep_alive=False) == OK[:-2] + b"connection: close\r\n\r\n"
    assert build_response_head(head, client_version=b"1.0") == (
        OK[:-2] + b"connection: keep-alive\r\n\r\n"
    )


def test_response_hop_by_hop_fields_are_removed(backend: str) -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=5\r\n"
        b"X-Internal: 1\r\nProxy-Authenticate: Basic\r\nTrailer: X-Sum\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
    )
    out = build_response_head(parse_response(backend, raw), add_headers=[(b"server", b"gossamer")])
    # A canonical "Transfer-Encoding: chunked" states the framing we keep: left in place.
    assert out == (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n"
        b"server: gossamer\r\n\r\n"
    )


def test_response_version_is_ours(backend: str) -> None:
    head = parse_response(backend, b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert not head.keep_alive  # the upstream connection closes; the client's need not
    assert build_response_head(head) == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def test_chunked_response_to_http10_client_is_dechunked(backend: str) -> None:
    head = parse_response(backend, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: 1\r\n\r\n")
    assert downstream_chunked(head, b"1.1") and not downstream_chunked(head, b"1.0")
    out = build_response_head(head, client_version=b"1.0")
    assert out == b"HTTP/1.1 200 OK\r\nA: 1\r\nconnection: close\r\n\r\n"


def test_response_until_eof_closes_client_connection(backend: str) -> None:
    head = parse_response(backend, b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n")
    assert head.body_until_eof
    assert build_response_head(head) == b"HTTP/1.1 200 OK\r\nA: 1\r\nconnection: close\r\n\r\n"


def test_switching_protocols_response(backend: str) -> None:
    raw = b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"
    out = build_response_head(parse_response(backend, raw))
    assert out == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nconnection: upgrade\r\n\r\n"
    )


def test_interim_response_gets_no_connection_field(backend: str) -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n"
    assert build_response_head(parse_response(backend, raw + OK), keep_alive=False) != raw
    parser, rec = resp_parser(backend)
    parser.expect_response(b"PUT")
    parser.feed(raw)
    interim = rec.heads[0]
    assert isinstance(interim, ResponseHead)
    assert build_response_head(interim, keep_alive=False) == raw


def test_response_header_edits(backend: str) -> None:
    raw = b"HTTP/1.1 200 OK\r\nServer: app\r\nX-Powered-By: php\r\nContent-Length: 0\r\n\r\n"
    out = build_response_head(
        parse_response(backend, raw),
        set_headers=[(b"server", b"gossamer")],
        remove_headers={b"x-powered-by"},
    )
    assert out == b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nserver: gossamer\r\n\r\n"


# -- framing and errors -------------------------------------------------------------------


def test_chunk_writer_round_trip(backend: str) -> None:
    body = encode_chunk(b"hello") + encode_chunk(b"") + encode_chunk(b" world" * 50)
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert last_chunk() == LAST_CHUNK == b"0\r\n\r\n"
    end = last_chunk([(b"X-Sum", b"1")])
    assert end == b"0\r\nX-Sum: 1\r\n\r\n"
    parser, rec = req_parser(backend)
    parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body + end)
    assert rec.bodies == [b"hello" + b" world" * 50]
    assert rec.heads[0].trailers == [(b"X-Sum", b"1")]


def test_error_response() -> None:
    out = error_response(502, "upstream connect failure", "UF")
    assert out == (
        b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 25\r\n"
        b"connection: close\r\nx-gossamer-flags: UF\r\n\r\nupstream connect failure\n"
    )
    assert error_response(431, "too big").startswith(
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    )
    assert b"x-gossamer-flags" not in error_response(400, "bad")
