"""The HTTP/1 parsers' behaviour; every test runs against both backends (``backend``)."""

from __future__ import annotations

import pytest

from gossamer.protocols.http1 import (
    BACKENDS,
    Limits,
    ProtocolError,
    RequestHead,
    ResponseHead,
    request_parser,
)
from tests.unit.protocols.http1_support import (
    Recorder,
    feed_pieces,
    req_parser,
    resp_parser,
    split_at,
)
from tests.unit.protocols.malformed_cases import MALFORMED_REQUESTS, MALFORMED_RESPONSES

GET = b"GET /hello?x=1 HTTP/1.1\r\nHost: benigno:5000\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n"
POST = b"POST /items HTTP/1.1\r\nHost: benigno\r\nContent-Length: 11\r\n\r\nhello world"
CHUNKED = (
    b"POST /up HTTP/1.1\r\nHost: benigno\r\nTransfer-Encoding: chunked\r\n\r\n"
    b'5;name=value;q="a \\"b"\r\nhello\r\n'
    b"6\r\n world\r\n"
    b"0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
)


def request_head(rec: Recorder, i: int = 0) -> RequestHead:
    head = rec.heads[i]
    assert isinstance(head, RequestHead)
    return head


def response_head(rec: Recorder, i: int = 0) -> ResponseHead:
    head = rec.heads[i]
    assert isinstance(head, ResponseHead)
    return head


# -- requests -----------------------------------------------------------------------------


def test_simple_get(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(GET)
    assert rec.events == [("head", b"GET", b"/hello?x=1"), ("done",)]
    head = request_head(rec)
    assert head.version == b"1.1"
    assert head.headers == [(b"Host", b"benigno:5000"), (b"User-Agent", b"t"), (b"Accept", b"*/*")]
    assert head.host == b"benigno:5000"
    assert head.path == b"/hello?x=1" and head.authority is None
    assert head.keep_alive and not head.chunked and head.content_length is None
    assert head.upgrade is None and not head.expect_continue and head.trailers is None
    assert head.raw == GET
    assert head.get(b"user-agent") == b"t" and head.get(b"cookie") is None
    assert parser.idle and not parser.head_in_progress and not parser.upgraded


def test_header_names_keep_their_case_and_order(backend: str) -> None:
    raw = b"GET / HTTP/1.1\r\nhOsT: a\r\nX-B: 2\r\nx-a: 1\r\nX-B: 3\r\n\r\n"
    parser, rec = req_parser(backend)
    parser.feed(raw)
    assert request_head(rec).headers == [
        (b"hOsT", b"a"),
        (b"X-B", b"2"),
        (b"x-a", b"1"),
        (b"X-B", b"3"),
    ]
    assert request_head(rec).host == b"a"


def test_values_lose_leading_whitespace_only(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"GET / HTTP/1.1\r\nHost:\t a\r\nX-A:  b c \t\r\nX-Empty:\r\n\r\n")
    assert request_head(rec).headers == [(b"Host", b"a"), (b"X-A", b"b c \t"), (b"X-Empty", b"")]


def test_keep_alive_sequence(backend: str) -> None:
    parser, rec = req_parser(backend)
    for _ in range(3):
        parser.feed(GET)
        parser.feed(POST)
    assert [e[0] for e in rec.events] == ["head", "done", "head", "body", "done"] * 3
    assert rec.bodies == [b"", b"hello world"] * 3
    assert all(h.raw is not None for h in rec.heads)


def test_pipelined_requests_in_one_read(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(GET + POST + CHUNKED + GET)
    assert [e for e in rec.events if e[0] == "head"] == [
        ("head", b"GET", b"/hello?x=1"),
        ("head", b"POST", b"/items"),
        ("head", b"POST", b"/up"),
        ("head", b"GET", b"/hello?x=1"),
    ]
    assert rec.bodies == [b"", b"hello world", b"hello world", b""]
    # raw is known for every head whose start can be worked out (not after chunked bodies
    # on the httptools backend); when known it is exact.
    raws = [h.raw for h in rec.heads]
    assert raws[0] == GET and raws[1] == POST[: POST.index(b"\r\n\r\n") + 4]
    assert raws[3] in (None, GET)


def test_pause_holds_pipelined_requests_until_resume(backend: str) -> None:
    parser, rec = req_parser(backend)
    rec.pause_on = {"done"}
    parser.feed(GET + POST + GET)
    assert rec.events == [("head", b"GET", b"/hello?x=1"), ("done",)]
    assert parser.paused
    parser.resume()  # delivers the POST, pauses again at its end
    assert rec.events[2:] == [("head", b"POST", b"/items"), ("body", b"hello world"), ("done",)]
    rec.pause_on = set()
    parser.resume()
    assert rec.events[5:] == [("head", b"GET", b"/hello?x=1"), ("done",)]
    assert not parser.paused and parser.idle


def test_bytes_fed_while_paused_are_kept(backend: str) -> None:
    parser, rec = req_parser(backend)
    rec.pause_on = {"head"}
    parser.feed(POST[:60])
    assert rec.events == [("head", b"POST", b"/items")]
    parser.feed(POST[60:])
    parser.feed(GET)
    assert len(rec.events) == 1
    rec.pause_on = set()
    parser.resume()
    assert rec.bodies == [b"hello world", b""]


def test_error_after_pause_is_delivered_in_order(backend: str) -> None:
    parser, rec = req_parser(backend)
    rec.pause_on = {"done"}
    parser.feed(GET + b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n")
    assert rec.events == [("head", b"GET", b"/hello?x=1"), ("done",)]
    with pytest.raises(ProtocolError) as err:
        parser.resume()
    assert err.value.status == 400


@pytest.mark.parametrize("raw", [POST, CHUNKED], ids=["content-length", "chunked"])
def test_body_split_at_every_boundary(backend: str, raw: bytes) -> None:
    parser, rec = req_parser(backend)
    parser.feed(raw)
    expected_events, expected_head = rec.events, request_head(rec)
    for i in range(len(raw) + 1):
        parser, rec = req_parser(backend)
        feed_pieces(parser, [raw[:i], raw[i:]])
        assert rec.bodies == [b"hello world"], i
        assert [e[0] for e in rec.events if e[0] != "body"] == ["head", "done"]
        head = request_head(rec)
        assert head.headers == expected_head.headers
        assert head.trailers == expected_head.trailers
        assert head.raw in (raw[: raw.index(b"\r\n\r\n") + 4], None)
    # and one byte at a time
    parser, rec = req_parser(backend)
    feed_pieces(parser, [raw[i : i + 1] for i in range(len(raw))])
    assert rec.bodies == [b"hello world"]
    assert [e for e in rec.events if e[0] != "body"] == [
        e for e in expected_events if e[0] != "body"
    ]


def test_head_in_progress_tracks_partial_heads(backend: str) -> None:
    parser, rec = req_parser(backend)
    assert not parser.head_in_progress
    parser.feed(b"\r\n")  # empty lines before a request are not a head
    assert not parser.head_in_progress
    parser.feed(b"GET / HT")
    assert parser.head_in_progress and not parser.idle
    parser.feed(b"TP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab")
    assert not parser.head_in_progress and not parser.idle  # in the body
    parser.feed(b"c")
    assert parser.idle
    assert request_head(rec).raw == b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"


def test_chunked_with_extensions_and_trailers(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(CHUNKED)
    head = request_head(rec)
    assert head.chunked and head.content_length is None
    assert rec.bodies == [b"hello world"]
    assert head.trailers == [(b"X-Checksum", b"abc"), (b"X-Other", b"1")]


def test_chunked_without_trailers(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"000a\r\n0123456789\r\n0\r\n\r\n"
    )
    assert rec.bodies == [b"0123456789"]
    assert request_head(rec).trailers is None and request_head(rec).chunked


def test_absolute_form_target(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(
        b"GET http://benigno:5000/x?y=1 HTTP/1.1\r\nHost: benigno:5000\r\n"
        b"Proxy-Connection: keep-alive\r\n\r\n"
    )
    head = request_head(rec)
    assert head.target == b"http://benigno:5000/x?y=1"
    assert head.authority == b"benigno:5000" and head.path == b"/x?y=1"
    assert head.keep_alive


@pytest.mark.parametrize(
    ("target", "authority", "path"),
    [
        (b"http://benigno", b"benigno", b"/"),
        (b"http://benigno:5000?q", b"benigno:5000", b"/?q"),
        (b"http://user:pw@benigno:80/a", b"benigno:80", b"/a"),
        (b"HTTPS://[::1]:8443/a/b", b"[::1]:8443", b"/a/b"),
    ],
)
def test_absolute_form_variants(backend: str, target: bytes, authority: bytes, path: bytes) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (request_head(rec).authority, request_head(rec).path) == (authority, path)


def test_connect_exposes_authority_and_tunnels(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"CONNECT benigno:443 HTTP/1.1\r\nHost: benigno:443\r\n\r\n\x16\x03\x01")
    head = request_head(rec)
    assert head.is_connect and head.authority == b"benigno:443" and head.path == b""
    assert rec.events[1:] == [("done",), ("upgrade", b"\x16\x03\x01")]
    assert parser.upgraded
    parser.feed(b"more bytes")  # later bytes go straight to on_upgrade
    assert rec.events[-1] == ("upgrade", b"\x16\x03\x01more bytes")


def test_connect_with_nothing_after(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert rec.events[1:] == [("done",), ("upgrade", b"")]
    assert request_head(rec).authority == b"[::1]:8443"


def test_websocket_upgrade_request(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(
        b"GET /chat HTTP/1.1\r\nHost: b\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\n"
        b"\x81\x05hello"
    )
    head = request_head(rec)
    assert head.upgrade == b"websocket"
    assert head.connection == (b"keep-alive", b"upgrade")
    assert rec.events[1:] == [("done",), ("upgrade", b"\x81\x05hello")]


def test_upgrade_header_without_connection_upgrade_is_plain_http(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\n\r\n" + GET)
    assert request_head(rec).upgrade is None
    assert [e[0] for e in rec.events] == ["head", "done", "head", "done"]


def test_expect_100_continue(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"PUT /f HTTP/1.1\r\nHost: b\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n")
    assert request_head(rec).expect_continue
    assert rec.events == [("head", b"PUT", b"/f")]  # the proxy now decides on the 100
    parser.feed(b"ok")
    assert rec.bodies == [b"ok"]


@pytest.mark.parametrize(
    ("raw", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n", True),
        (b"GET / HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n", True),
    ],
)
def test_keep_alive_semantics(backend: str, raw: bytes, keep_alive: bool) -> None:
    parser, rec = req_parser(backend)
    parser.feed(raw + GET)
    assert request_head(rec).keep_alive is keep_alive
    # After a request that closes the connection, the rest of the input is ignored.
    assert len(rec.heads) == (2 if keep_alive else 1)
    assert parser.idle is keep_alive


def test_http10_request_without_host(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"GET / HTTP/1.0\r\n\r\n")
    head = request_head(rec)
    assert head.version == b"1.0" and head.host is None and not head.keep_alive


def test_empty_lines_before_request_are_ignored(backend: str) -> None:
    parser, rec = req_parser(backend)
    parser.feed(b"\r\n\r\n" + GET + b"\r\n" + GET)
    assert len(rec.heads) == 2
    assert request_head(rec).raw == GET


@pytest.mark.parametrize("method", [b"OPTIONS", b"PATCH", b"DELETE", b"PURGE", b"M-SEARCH"])
def test_other_methods(backend: str, method: bytes) -> None:
    parser, rec = req_parser(backend)
    parser.feed(method + b" * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert request_head(rec).method == method and request_head(rec).target == b"*"


def test_eof_mid_request_is_an_error(backend: str) -> None:
    parser, _ = req_parser(backend)
    parser.feed(POST[:-3])
    with pytest.raises(ProtocolError) as err:
        parser.feed_eof()
    assert err.value.status == 400
    parser, _ = req_parser(backend)
    parser.feed(GET)
    parser.feed_eof()  # between requests: fine


def test_errors_are_sticky(backend: str) -> None:
    parser, _ = req_parser(backend)
    with pytest.raises(ProtocolError) as first:
        parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n")
    with pytest.raises(ProtocolError) as again:
        parser.feed(GET)
    assert again.value is first.value
    assert first.value.response().startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_handler_exceptions_propagate(backend: str) -> None:
    class Boom(Exception):
        pass

    class Handler(Recorder):
        def on_request_head(self, head: RequestHead) -> None:
            raise Boom

    parser = request_parser(Handler(), backend)
    with pytest.raises(Boom):
        parser.feed(GET)


def test_custom_limits(backend: str) -> None:
    limits = Limits(max_request_line=16, max_head_bytes=100, max_headers=2)
    parser, _ = req_parser(backend, limits=limits)
    parser.feed(b"GET /0123456789abcde HTTP/1.1\r\nHost: a\r\n\r\n")  # 16 bytes: fine
    for raw, status in [
        (b"GET /0123456789abcdef HTTP/1.1\r\nHost: a\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\nA: " + b"x" * 100 + b"\r\n\r\n", 431),
    ]:
        parser, _ = req_parser(backend, limits=limits)
        with pytest.raises(ProtocolError) as err:
            parser.feed(raw)
        assert err.value.status == status, raw


def test_endless_head_is_refused_while_streaming(backend: str) -> None:
    parser, _ = req_parser(backend, limits=Limits(max_head_bytes=1000))
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
    with pytest.raises(ProtocolError) as err:  # fails on one of the feeds
        for _ in range(100):
            parser.feed(b"a" * 100)
    assert err.value.status == 431


def test_endless_target_is_refused_while_streaming(backend: str) -> None:
    parser, _ = req_parser(backend, limits=Limits(max_request_line=1000))
    parser.feed(b"GET /")
    with pytest.raises(ProtocolError) as err:
        for _ in range(100):
            parser.feed(b"a" * 100)
    assert err.value.status == 414


def test_endless_trailers_are_refused(backend: str) -> None:
    parser, _ = req_parser(backend, limits=Limits(max_head_bytes=1000))
    parser.feed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ")
    with pytest.raises(ProtocolError) as err:
        for _ in range(100):
            parser.feed(b"a" * 100)
    assert err.value.status == 400


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown HTTP/1 parser backend"):
        request_parser(Recorder(), "h2o")
    assert BACKENDS == ("httptools", "pure")


@pytest.mark.parametrize(
    ("name", "raw", "status"), MALFORMED_REQUESTS, ids=[c[0] for c in MALFORMED_REQUESTS]
)
def test_malformed_requests(backend: str, name: str, raw: bytes, status: int) -> None:
    for pieces in ([raw], split_at(raw, range(0, len(raw), 7))):
        parser, rec = req_parser(backend)
        with pytest.raises(ProtocolError) as err:
            feed_pieces(parser, pieces, eof=True)
        assert err.value.status == status, (name, len(pieces), err.value.reason)
        assert err.value.flags == "DPE"
        assert not [e for e in rec.events if e[0] in ("done", "upgrade")]


# -- responses ----------------------------------------------------------------------------

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"


def test_simple_response(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"GET")
    parser.feed(OK)
    assert rec.events == [("response", 200), ("body", b"hello"), ("done",)]
    head = response_head(rec)
    assert (head.status, head.reason, head.version) == (200, b"OK", b"1.1")
    assert head.content_length == 5 and head.keep_alive and not head.body_until_eof
    assert head.raw == OK[:-5]
    assert parser.idle


def test_response_keep_alive_sequence_and_split(backend: str) -> None:
    parser, rec = resp_parser(backend)
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    for raw in (OK, chunked, OK):
        for i in range(0, len(raw) + 1, 3):
            parser.expect_response(b"GET")
            feed_pieces(parser, [raw[:i], raw[i:]])
    assert rec.bodies == [b"hello"] * len(rec.bodies)
    assert rec.events.count(("done",)) == sum(
        len(range(0, len(r) + 1, 3)) for r in (OK, chunked, OK)
    )


def test_reason_phrase_variants(backend: str) -> None:
    for line, reason in [
        (b"HTTP/1.1 404 Not Found", b"Not Found"),
        (b"HTTP/1.1 200", b""),
        (b"HTTP/1.1 200 ", b""),
        (b"HTTP/1.0 503 Service  Unavailable", b"Service  Unavailable"),
    ]:
        parser, rec = resp_parser(backend)
        parser.expect_response(b"GET")
        parser.feed(line + b"\r\nContent-Length: 0\r\n\r\n")
        assert response_head(rec).reason == reason


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
    ],
    ids=["content-length", "chunked", "no-framing"],
)
def test_response_to_head_has_no_body(backend: str, raw: bytes) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"HEAD")
    parser.feed(raw)
    assert rec.events == [("response", 200), ("done",)]
    assert response_head(rec).keep_alive and parser.idle
    parser.expect_response(b"GET")  # the connection is reusable
    parser.feed(OK)
    assert rec.bodies == [b"", b"hello"]


def test_response_to_head_split(backend: str) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    for i in range(len(raw) + 1):
        parser, rec = resp_parser(backend)
        parser.expect_response(b"HEAD")
        feed_pieces(parser, [raw[:i], raw[i:]])
        assert rec.events == [("response", 200), ("done",)], i
        assert response_head(rec).raw == raw


@pytest.mark.parametrize("status", [204, 304])
def test_no_content_and_not_modified_have_no_body(backend: str, status: int) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"GET")
    parser.feed(b"HTTP/1.1 %d X\r\nContent-Length: 10\r\nETag: e\r\n\r\n" % status)
    assert rec.events == [("response", status), ("done",)]
    assert response_head(rec).content_length == 10  # describes the representation
    parser.expect_response(b"GET")
    parser.feed(OK)
    assert rec.bodies == [b"", b"hello"]


def test_100_continue_then_final_response(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"POST")
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert rec.events == [("interim", 100)]
    assert parser.idle  # nothing partial: the final response has not started
    parser.feed(OK)
    assert rec.events[1:] == [("response", 200), ("body", b"hello"), ("done",)]


def test_interim_responses_in_one_read(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"GET")
    parser.feed(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" + OK
    )
    assert [e[0] for e in rec.events] == ["interim", "interim", "response", "body", "done"]
    assert response_head(rec, 1).headers == [(b"Link", b"</s.css>; rel=preload")]
    assert response_head(rec, 2).raw == OK[:-5]


def test_interim_before_head_response(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"HEAD")
    parser.feed(b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n")
    assert rec.events == [("interim", 103), ("response", 200), ("done",)]


def test_response_until_eof(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"GET")
    parser.feed(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nsome ")
    parser.feed(b"data")
    head = response_head(rec)
    assert head.body_until_eof and not head.keep_alive
    assert rec.events[-1] != ("done",)
    parser.feed_eof()
    assert rec.bodies == [b"some data"]


def test_response_eof_mid_body_is_upstream_reset(backend: str) -> None:
    parser, _ = resp_parser(backend)
    parser.expect_response(b"GET")
    parser.feed(OK[:-2])
    with pytest.raises(ProtocolError) as err:
        parser.feed_eof()
    assert (err.value.status, err.value.flags) == (502, "UC")


def test_response_close_ignores_the_rest(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"GET")
    parser.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhiGARBAGE")
    assert rec.bodies == [b"hi"] and not response_head(rec).keep_alive


def test_switching_protocols(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"GET")
    parser.feed(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Accept: x\r\n\r\n\x81\x02hi"
    )
    assert rec.events == [("response", 101), ("done",), ("upgrade", b"\x81\x02hi")]
    assert response_head(rec).upgrade == b"websocket" and parser.upgraded
    parser.feed(b"\x81\x01!")
    assert rec.events[-1] == ("upgrade", b"\x81\x02hi\x81\x01!")


@pytest.mark.parametrize("extra", [b"", b"Content-Length: 0\r\n"], ids=["bare", "content-length-0"])
def test_connect_established(backend: str, extra: bytes) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"CONNECT")
    parser.feed(b"HTTP/1.1 200 Connection Established\r\n" + extra + b"\r\n\x16\x03")
    assert rec.events == [("response", 200), ("done",), ("upgrade", b"\x16\x03")]


def test_connect_refused_has_a_body(backend: str) -> None:
    parser, rec = resp_parser(backend)
    parser.expect_response(b"CONNECT")
    parser.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope")
    assert rec.events == [("response", 403), ("body", b"nope"), ("done",)]
    assert not parser.upgraded


def test_response_without_request_is_an_error(backend: str) -> None:
    parser, _ = resp_parser(backend)
    with pytest.raises(ProtocolError) as err:
        parser.feed(OK)
    assert err.value.status == 502
    parser, _ = resp_parser(backend)
    parser.expect_response(b"GET")
    with pytest.raises(ProtocolError):
        parser.feed(OK + OK)  # the second response answers nothing


def test_response_pause_and_resume(backend: str) -> None:
    parser, rec = resp_parser(backend)
    rec.pause_on = {"interim", "head"}
    parser.expect_response(b"GET")
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
    assert rec.events == [("interim", 100)]
    parser.resume()
    assert rec.events[-1] == ("response", 200)
    rec.pause_on = set()
    parser.resume()
    assert rec.events[-2:] == [("body", b"hello"), ("done",)]


@pytest.mark.parametrize(
    ("name", "method", "raw"), MALFORMED_RESPONSES, ids=[c[0] for c in MALFORMED_RESPONSES]
)
def test_malformed_responses(backend: str, name: str, method: bytes, raw: bytes) -> None:
    for pieces in ([raw], split_at(raw, range(0, len(raw), 7))):
        parser, rec = resp_parser(backend)
        parser.expect_response(method)
        with pytest.raises(ProtocolError) as err:
            feed_pieces(parser, pieces, eof=True)
        assert err.value.status == 502, (name, err.value.reason)
        assert ("done",) not in rec.events
