"""The fast backend: llhttp (through httptools) does the byte grammar in C.

llhttp's callbacks arrive on the parser object itself (httptools looks the ``on_*`` names
up on the object it is given); they assemble heads and hand events to the handler. What
llhttp does not check (limits, Host, transfer-codings we do not support, versions we do
not speak, upgrade consistency) is checked when the head completes, by the analysis
shared with the pure backend (:func:`~.head.make_request_head`).

Three llhttp behaviours are worked around here:

* llhttp decides on its own that a connection is closing and then rejects further data;
  we enable ``lenient_keep_alive`` and make that decision ourselves (after a message that
  does not keep the connection alive, the rest of the input is discarded).
* httptools cannot tell llhttp that a response answers HEAD (or CONNECT), so llhttp would
  wait for a body that never comes. For those responses the head is delimited here (at
  ``\\r\\n\\r\\n``: llhttp only accepts CRLF line ends) and only the head is given to
  llhttp, whose parser is then replaced.
* httptools gives no byte offsets, so ``raw`` (the head's exact bytes) is recovered by
  tracking where a message must start: at the start of a read when the connection was
  idle, or right after the previous message when that one had an identity body. After a
  chunked message in the same read (pipelining) it is None and the serialiser joins.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final, cast

import httptools

from gossamer.protocols.http1.errors import ProtocolError
from gossamer.protocols.http1.head import (
    DEFAULT_LIMITS,
    DIRTY,
    Headers,
    Limits,
    RequestHead,
    ResponseHead,
    check_trailers,
    make_request_head,
    make_response_head,
)
from gossamer.protocols.http1.interface import RequestHandler, ResponseHandler

# Parser states. >= _UPGRADED means "no more HTTP on this connection".
_IDLE, _HEAD, _BODY, _UPGRADED, _CLOSED, _FAILED = range(6)
# Queued event kinds while paused.
_E_HEAD, _E_INTERIM, _E_BODY, _E_DONE, _E_UPGRADE, _E_ERROR = range(6)
# Values of _mark other than an offset.
_UNKNOWN: Final = -1
_AFTER_PREVIOUS: Final = -2  # right after the message that completed in this read
_VERSIONS: Final = {"1.1": b"1.1", "1.0": b"1.0", "0.9": b"0.9", "2.0": b"2.0"}


class _Discard(Exception):
    """Raised from on_message_begin to stop llhttp once the connection is closing."""


_DISCARD: Final = _Discard()


def _approx_size(first_line: int, headers: Headers) -> int:
    # Used only when the raw head is unknown: the size on the wire minus any OWS.
    n = first_line + 4
    for name, value in headers:
        n += len(name) + len(value) + 4
    return n


class _Base:
    """State, pause queue and raw-head recovery common to both directions."""

    backend: Final = "httptools"
    _parser: httptools.HttpRequestParser | httptools.HttpResponseParser
    _head: RequestHead | ResponseHead | None
    _on_upgrade: Callable[[bytes], None]
    _request: bool

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._state = _IDLE
        self._head = None
        self._data = b""  # the read being fed
        self._mark = _UNKNOWN  # offset in _data where a message beginning now begins
        self._start_off = _UNKNOWN  # offset (in its first read) where the current head began
        self._head_end = _UNKNOWN  # offset in _data where the last head ended
        self._chunks: list[bytes] | None = None  # earlier reads of a head split across reads
        self._head_bytes = 0
        self._headers: Headers = []
        self._trailers: Headers | None = None
        self._body_in_feed = 0  # body bytes of the current message in this read
        self._stall = 0  # bytes read with no body progress (chunk metadata, trailers)
        self._paused = False
        self._queue: deque[tuple[int, object]] = deque()
        self._error: ProtocolError | None = None
        self._eof_pending = False

    # -- public API shared by both directions --------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def head_in_progress(self) -> bool:
        return self._state == _HEAD

    @property
    def idle(self) -> bool:
        return self._state == _IDLE and not self._queue

    @property
    def upgraded(self) -> bool:
        return self._state == _UPGRADED

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        q = self._queue
        while q and not self._paused:
            kind, arg = q.popleft()
            self._dispatch(kind, arg)
        if not self._paused and self._eof_pending:
            self._eof_pending = False
            self.feed_eof()

    def feed_eof(self) -> None:
        raise NotImplementedError

    def _dispatch(self, kind: int, arg: object) -> None:
        raise NotImplementedError

    # -- feeding ------------------------------------------------------------------------

    def _run(self, data: bytes) -> None:
        """Feed llhttp one read and turn its exceptions into ours."""
        st = self._state
        self._data = data
        self._mark = 0 if st == _IDLE else _UNKNOWN
        self._head_end = _UNKNOWN
        self._body_in_feed = 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            self._llhttp_error(exc)
            return
        st = self._state
        if st == _HEAD or (st == _BODY and not self._body_in_feed):
            self._after_partial(st, data)

    def _llhttp_error(self, exc: Exception) -> None:
        if isinstance(exc, httptools.HttpParserCallbackError):
            err = exc.__context__
            if err is _DISCARD:
                return
            if not isinstance(err, ProtocolError):
                raise (err or exc) from None  # the handler's own exception
        else:
            text = str(exc) or type(exc).__name__
            if not self._request:
                err = ProtocolError(502, "invalid response: " + text, "UPE")
            elif "Invalid HTTP version" in text or "PRI" in text or "HTTP/2" in text:
                err = ProtocolError(505, "HTTP version not supported")
            else:
                err = ProtocolError(400, text)
        self._fail(err)

    def _after_partial(self, st: int, data: bytes) -> None:
        """A read that ended inside a head, or inside chunk metadata or trailers."""
        limit = self._limits.max_head_bytes
        if st == _HEAD:
            # Keep the pieces (for raw) and bound the size, so a slow or endless head
            # cannot grow httptools' buffers without limit.
            known = self._start_off >= 0
            if self._chunks is None:
                self._chunks = [data] if known else []
                self._head_bytes = len(data) - self._start_off if known else 0
            else:
                if known:
                    self._chunks.append(data)
                self._head_bytes += len(data)
            if self._head_bytes > limit:
                self._fail(
                    ProtocolError(431, "request header section too large")
                    if self._request
                    else ProtocolError(502, "response header section too large", "UPE")
                )
        else:
            # Trailers (and chunk extensions) are buffered by httptools too: bound them.
            self._stall += len(data)
            if self._stall > limit:
                self._fail(
                    ProtocolError(400, "chunk metadata or trailers too large")
                    if self._request
                    else ProtocolError(502, "chunk metadata or trailers too large", "UPE")
                )

    def _after_end(self, st: int, data: bytes) -> None:
        if st == _UPGRADED:
            if self._paused:
                self._queue.append((_E_UPGRADE, data))
            elif data:
                self._on_upgrade(data)
        elif st == _FAILED and not self._paused and self._error is not None:
            raise self._error

    def _fail(self, err: ProtocolError) -> None:
        self._state = _FAILED
        self._error = err
        if self._paused:
            self._queue.append((_E_ERROR, err))
            return
        raise err

    def _upgraded(self, rest: bytes) -> None:
        self._state = _UPGRADED
        if self._paused:
            self._queue.append((_E_UPGRADE, rest))
        else:
            self._on_upgrade(rest)

    # -- raw head recovery --------------------------------------------------------------

    def _begin(self) -> None:
        """on_message_begin for both directions: where does this head start?"""
        mark = self._mark
        if mark == _AFTER_PREVIOUS:
            prev = self._head
            if prev is None or prev.raw is None or prev.chunked:
                mark = _UNKNOWN
            else:  # identity body or none: after the previous head and its body bytes
                mark = max(self._head_end, 0) + self._body_in_feed
        self._start_off = mark
        self._state = _HEAD
        self._chunks = None
        self._headers = []

    def _raw_head(self) -> bytes | None:
        """The exact head bytes, when the head began at a known offset of our input."""
        start = self._start_off
        if start < 0:
            return None
        data = self._data
        if start == 0 and self._chunks is None and data[0] > 13:  # the usual case
            end = data.find(b"\r\n\r\n") + 4
            self._head_end = end
            return data if end == len(data) else data[:end]
        buf = data if self._chunks is None else b"".join(self._chunks) + data
        while buf[start] == 13 or buf[start] == 10:  # llhttp skips empty lines first
            start += 1
        # llhttp accepted the head, so it ends at the first empty line: CRLF only, no CR or
        # LF inside field values.
        end = buf.find(b"\r\n\r\n", start) + 4
        self._head_end = end - (len(buf) - len(data))
        return buf[start:end]

    # -- llhttp callbacks common to both directions -------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._state == _HEAD:
            self._headers.append((name, value))
        elif self._trailers is None:
            self._trailers = [(name, value)]
        else:
            self._trailers.append((name, value))

    def on_body(self, data: bytes) -> None:
        self._body_in_feed += len(data)
        if self._paused:
            self._queue.append((_E_BODY, data))
        else:
            self._on_body(data)

    _on_body: Callable[[bytes], None]


class HttptoolsRequestParser(_Base):
    """Request parser on llhttp; see :class:`~.interface.RequestParser`."""

    _head: RequestHead | None
    _parser: httptools.HttpRequestParser
    _request = True

    def __init__(self, handler: RequestHandler, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self._on_head = handler.on_request_head
        self._on_body = handler.on_body
        self._on_done = handler.on_message_complete
        self._on_upgrade = handler.on_upgrade
        self._max_target = limits.max_request_line
        self._url = b""
        self._parser = httptools.HttpRequestParser(self)
        self._parser.set_dangerous_leniencies(lenient_keep_alive=True)

    def feed(self, data: bytes) -> None:
        st = self._state
        if st >= _UPGRADED:
            self._after_end(st, data)
        else:
            self._run(data)

    def feed_eof(self) -> None:
        if self._paused:
            self._eof_pending = True
        elif self._state in (_HEAD, _BODY):
            self._fail(ProtocolError(400, "connection closed before the request was complete"))

    def _dispatch(self, kind: int, arg: object) -> None:
        if kind == _E_BODY:
            self._on_body(cast(bytes, arg))
        elif kind == _E_HEAD:
            self._on_head(cast(RequestHead, arg))
        elif kind == _E_DONE:
            self._on_done()
        elif kind == _E_UPGRADE:
            self._on_upgrade(cast(bytes, arg))
        else:
            raise cast(ProtocolError, arg)

    # -- llhttp callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._state >= _UPGRADED:
            raise _DISCARD
        if self._mark == 0:  # the usual case: a fresh read on an idle connection
            self._start_off = 0
            self._state = _HEAD
            self._chunks = None
            self._headers = []
        else:
            self._begin()
        self._url = b""

    def on_url(self, url: bytes) -> None:
        if self._url:
            url = self._url + url
        if len(url) > self._max_target:
            raise ProtocolError(414, "request target too long")
        self._url = url

    def on_headers_complete(self) -> None:
        p = self._parser
        data = self._data
        if self._start_off == 0 and self._chunks is None and data[0] > 13:  # the usual case
            end = data.find(b"\r\n\r\n") + 4
            self._head_end = end
            raw: bytes | None = data if end == len(data) else data[:end]
        else:
            raw = self._raw_head()
        if raw is not None:
            size = len(raw)
            le = raw.find(b"\r\n")
            # The version is the line's last token, unless llhttp read HTTP/0.9 (no
            # version; a bare LF may follow the target).
            if raw[le - 9 : le - 3] == b" HTTP/" and raw.find(b"\n") == le + 1:
                version = raw[le - 3 : le]
            else:
                version = _VERSIONS.get(p.get_http_version(), b"?")
                if version != b"0.9":  # llhttp also takes RTSP/ and ICE/ request lines
                    raise ProtocolError(400, "not an HTTP/1 request line")
        else:
            version = _VERSIONS.get(p.get_http_version(), b"?")
            size = _approx_size(len(self._url) + 20, self._headers)
        head = make_request_head(
            p.get_method(), self._url, version, self._headers, raw, size, self._limits
        )
        # llhttp decides where the HTTP stream stops; make sure it agrees with us.
        upgrade = head.upgrade is not None or head.method == b"CONNECT"
        if (head.flags & DIRTY or upgrade) and upgrade != p.should_upgrade():
            raise ProtocolError(400, "ambiguous upgrade request")
        self._head = head
        self._state = _BODY
        self._body_in_feed = 0
        self._stall = 0
        self._trailers = None
        if self._paused:
            self._queue.append((_E_HEAD, head))
        else:
            self._on_head(head)

    def on_message_complete(self) -> None:
        head = self._head
        assert head is not None
        if self._trailers is not None:
            check_trailers(self._trailers, True, self._limits)
            head.trailers = self._trailers
        if head.upgrade is not None or head.method == b"CONNECT":
            self._state = _UPGRADED  # llhttp now raises HttpParserUpgrade with the offset
        elif head.keep_alive:
            self._state = _IDLE
            self._mark = _AFTER_PREVIOUS
        else:
            self._state = _CLOSED
        if self._paused:
            self._queue.append((_E_DONE, None))
        else:
            self._on_done()


class HttptoolsResponseParser(_Base):
    """Response parser on llhttp; see :class:`~.interface.ResponseParser`."""

    _head: ResponseHead | None
    _parser: httptools.HttpResponseParser
    _request = False

    def __init__(self, handler: ResponseHandler, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self._on_interim = handler.on_interim_response
        self._on_head = handler.on_response_head
        self._on_body = handler.on_body
        self._on_done = handler.on_message_complete
        self._on_upgrade = handler.on_upgrade
        self._method: bytes | None = None
        self._reason = b""
        self._interim = False
        self._bounded = False  # delimiting a HEAD/CONNECT response head ourselves
        self._hbuf = b""
        self._parser = self._new_parser()

    def _new_parser(self) -> httptools.HttpResponseParser:
        p = httptools.HttpResponseParser(self)
        p.set_dangerous_leniencies(lenient_keep_alive=True)
        return p

    def expect_response(self, method: bytes) -> None:
        self._method = method

    @property
    def head_in_progress(self) -> bool:
        return self._state == _HEAD or bool(self._hbuf)

    @property
    def idle(self) -> bool:
        return self._state == _IDLE and not self._queue and not self._hbuf

    def feed(self, data: bytes) -> None:
        st = self._state
        if st >= _UPGRADED:
            self._after_end(st, data)
            return
        if st == _IDLE and (self._method == b"HEAD" or self._method == b"CONNECT"):
            self._bounded = True
        if self._bounded:
            self._feed_bounded(data)
        else:
            self._run(data)

    def feed_eof(self) -> None:
        if self._paused:
            self._eof_pending = True
            return
        st = self._state
        if st == _BODY and self._head is not None and self._head.body_until_eof:
            self._complete()
        elif st in (_HEAD, _BODY) or self._hbuf:
            self._fail(ProtocolError(502, "upstream closed before the response was complete", "UC"))

    def _dispatch(self, kind: int, arg: object) -> None:
        if kind == _E_BODY:
            self._on_body(cast(bytes, arg))
        elif kind == _E_HEAD:
            self._on_head(cast(ResponseHead, arg))
        elif kind == _E_DONE:
            self._on_done()
        elif kind == _E_INTERIM:
            self._on_interim(cast(ResponseHead, arg))
        elif kind == _E_UPGRADE:
            self._on_upgrade(cast(bytes, arg))
        else:
            raise cast(ProtocolError, arg)

    def _feed_bounded(self, data: bytes) -> None:
        """Give llhttp exactly one head at a time (HEAD and CONNECT responses)."""
        buf = self._hbuf + data
        while True:
            if buf and (buf[0] == 13 or buf[0] == 10):
                buf = buf.lstrip(b"\r\n")
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._hbuf = buf
                if len(buf) > self._limits.max_head_bytes:
                    self._hbuf = b""
                    self._fail(ProtocolError(502, "response header section too large", "UPE"))
                return
            self._hbuf = b""
            rest = buf[end + 4 :]
            method = self._method
            self._run(buf[: end + 4])
            st = self._state
            if st == _FAILED:
                return
            if st == _IDLE and self._method is not None:  # an interim response: next head
                buf = rest
                continue
            self._bounded = False
            head = self._head
            if st == _BODY and head is not None and (method == b"HEAD" or head.status < 300):
                # llhttp would wait for a body that is not there (HEAD) or take the
                # tunnel for a body (CONNECT 2xx): finish the message here.
                self._parser = self._new_parser()
                self._complete()
            if self._state == _UPGRADED:
                self._upgraded(rest)
            elif rest:
                self.feed(rest)
            return

    def _complete(self) -> None:
        head = self._head
        assert head is not None
        if self._trailers is not None:
            check_trailers(self._trailers, False, self._limits)
            head.trailers = self._trailers
        method = self._method
        self._method = None
        if head.upgrade is not None or (method == b"CONNECT" and head.status < 300):
            self._state = _UPGRADED
        elif head.keep_alive:
            self._state = _IDLE
            self._mark = _AFTER_PREVIOUS
        else:
            self._state = _CLOSED
        if self._paused:
            self._queue.append((_E_DONE, None))
        else:
            self._on_done()

    # -- llhttp callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._state >= _UPGRADED:
            raise _DISCARD
        if self._method is None:
            raise ProtocolError(502, "response data without a request", "UPE")
        if self._mark == 0:
            self._start_off = 0
            self._state = _HEAD
            self._chunks = None
            self._headers = []
        else:
            self._begin()
        self._reason = b""

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_headers_complete(self) -> None:
        p = self._parser
        data = self._data
        if self._start_off == 0 and self._chunks is None and data[0] > 13:
            end = data.find(b"\r\n\r\n") + 4
            self._head_end = end
            raw: bytes | None = data if end == len(data) else data[:end]
        else:
            raw = self._raw_head()
        if raw is not None:
            size = len(raw)
            version = raw[5:8]  # llhttp requires the line to start with HTTP/d.d
        else:
            version = _VERSIONS.get(p.get_http_version(), b"?")
            size = _approx_size(len(self._reason) + 13, self._headers)
        status = p.get_status_code()
        method = self._method
        assert method is not None
        head = make_response_head(
            status, self._reason, version, self._headers, raw, size, method, self._limits
        )
        self._trailers = None
        if status < 200 and status != 101:
            self._interim = True  # llhttp completes 1xx messages itself: no body
            if self._paused:
                self._queue.append((_E_INTERIM, head))
            else:
                self._on_interim(head)
            return
        self._head = head
        self._state = _BODY
        self._body_in_feed = 0
        self._stall = 0
        if self._paused:
            self._queue.append((_E_HEAD, head))
        else:
            self._on_head(head)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._state = _IDLE
            # The next head follows this one directly, if we knew where this one was.
            self._mark = self._head_end if self._start_off >= 0 else _UNKNOWN
            return
        self._complete()
