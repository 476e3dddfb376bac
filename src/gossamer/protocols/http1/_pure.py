"""The pure-Python backend: our own strict parser, not h11.

h11's state machine models a whole client/server connection: it will not parse a second
pipelined request until a response to the first has been *sent through it*, it parses
responses only as the client role of a connection that sent the request, normalises
header names, unfolds obsolete line folding instead of rejecting it, and reports one
generic error class. A proxy holds two half-connections and forwards bytes, so here is a
small parser over ``bytes.find`` and a few compiled regular expressions instead. It mirrors
llhttp's strict grammar (``_grammar``) so both backends accept and reject the same input.

Heads are delimited by the first ``\\r\\n\\r\\n`` and validated whole, so ``raw`` is always
available. Body bytes are passed on as slices of the input (the whole input object when a
read is all body), never copied into a buffer.
"""

from __future__ import annotations

from typing import Final, NoReturn

from gossamer.protocols.http1 import _grammar as g
from gossamer.protocols.http1.errors import ProtocolError
from gossamer.protocols.http1.head import (
    DEFAULT_LIMITS,
    Headers,
    Limits,
    RequestHead,
    ResponseHead,
    check_trailers,
    make_request_head,
    make_response_head,
)
from gossamer.protocols.http1.interface import RequestHandler, ResponseHandler

# States; >= _UPGRADED means no more HTTP on this connection. _COMPLETE: the message has
# been read but on_message_complete not yet delivered (the handler paused).
_IDLE, _HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _BODY_EOF = range(8)
_COMPLETE, _UPGRADED, _CLOSED, _FAILED = range(8, 12)


def _field_error(block: bytes, request: bool) -> ProtocolError:
    """Say which rule a header block broke (error path only)."""
    status = 400 if request else 502
    flags = "DPE" if request else "UPE"
    for i, line in enumerate(block.split(b"\r\n")[:-1]):
        if g.FIELD_LINES.fullmatch(line + b"\r\n"):
            continue
        if line[:1] in (b" ", b"\t"):
            reason = "whitespace before the first header" if i == 0 else "obsolete line folding"
        elif b":" not in line:
            reason = "header line without a colon"
        else:
            name, _, value = line.partition(b":")
            if name[-1:] in (b" ", b"\t"):
                reason = "whitespace before colon"
            elif not g.TOKEN.fullmatch(name):
                reason = "invalid character in header name"
            elif b"\r" in value or b"\n" in value:
                reason = "bare CR or LF in header value"
            else:
                reason = "control character in header value"
        return ProtocolError(status, reason, flags)
    return ProtocolError(status, "bare CR or LF in header section", flags)


def _fields(block: bytes, request: bool) -> Headers:
    if not g.FIELD_LINES.fullmatch(block):
        raise _field_error(block, request)
    headers: Headers = g.FIELD_LINE.findall(block)
    return headers


class _Base:
    backend: Final = "pure"
    _head: RequestHead | ResponseHead | None

    def __init__(self, limits: Limits, request: bool) -> None:
        self._limits = limits
        self._request = request
        self._buf = b""
        self._scan_from = 0  # where to resume searching a buffered, incomplete element
        self._state = _IDLE
        self._remaining = 0
        self._paused = False
        self._error: ProtocolError | None = None
        self._eof_pending = False
        self._announce = False  # on_upgrade not yet called
        self._head = None
        self._method: bytes | None = None  # responses: method of the outstanding request
        self._on_upgrade = _noop_bytes
        self._on_body = _noop_bytes
        self._on_done = _noop

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def head_in_progress(self) -> bool:
        return self._state == _HEAD

    @property
    def idle(self) -> bool:
        return self._state == _IDLE and not self._buf

    @property
    def upgraded(self) -> bool:
        return self._state == _UPGRADED

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        data, self._buf = self._buf, b""
        self._run(data)
        if not self._paused and self._eof_pending:
            self._eof_pending = False
            self.feed_eof()

    def feed(self, data: bytes) -> None:
        st = self._state
        if st >= _UPGRADED and not self._announce:
            if st == _UPGRADED:
                if data:
                    if self._paused:
                        self._buf += data
                    else:
                        self._on_upgrade(data)
            elif st == _FAILED and self._error is not None:
                raise self._error
            return
        if self._buf:
            data = self._buf + data
            self._buf = b""
        if self._paused:
            self._buf = data
            return
        self._run(data)

    def feed_eof(self) -> None:
        if self._paused:
            self._eof_pending = True
            return
        st = self._state
        if st == _BODY_EOF:
            self._done()
        elif _HEAD <= st < _UPGRADED:
            if self._request:
                self._fail(ProtocolError(400, "connection closed before the request was complete"))
            else:
                self._fail(
                    ProtocolError(502, "upstream closed before the response was complete", "UC")
                )

    def _fail(self, err: ProtocolError) -> NoReturn:
        self._state = _FAILED
        self._error = err
        self._buf = b""
        raise err

    def _start(self, raw: bytes) -> None:
        raise NotImplementedError

    def _done(self) -> None:
        raise NotImplementedError

    def _partial_head(self, part: bytes) -> None:
        limits = self._limits
        # Only the target is unbounded in a request line; 32 covers method and version.
        if self._request and len(part) > limits.max_request_line + 32 and b"\r\n" not in part:
            self._fail(ProtocolError(414, "request target too long"))
        if len(part) > limits.max_head_bytes:
            self._fail(
                ProtocolError(431, "request header section too large")
                if self._request
                else ProtocolError(502, "response header section too large", "UPE")
            )
        self._state = _HEAD
        self._buf = part
        self._scan_from = max(len(part) - 3, 0)

    def _body_metadata_too_large(self) -> NoReturn:
        self._fail(self._error_at("chunk metadata or trailers too large"))

    def _run(self, data: bytes) -> None:
        try:
            self._loop(data)
        except ProtocolError as err:
            if self._state != _FAILED:
                self._state = _FAILED
                self._error = err
                self._buf = b""
            raise

    def _loop(self, data: bytes) -> None:
        # One loop over the states, on purpose: no per-state call on the hot path.
        pos = 0
        n = len(data)
        scan_from = self._scan_from
        self._scan_from = 0
        while True:
            st = self._state
            if st == _BODY:
                avail = n - pos
                if avail <= 0:
                    return
                rem = self._remaining
                if avail < rem:
                    self._remaining = rem - avail
                    self._on_body(data if pos == 0 else data[pos:])
                    return
                chunk = data if (pos == 0 and rem == n) else data[pos : pos + rem]
                pos += rem
                self._remaining = 0
                self._state = _COMPLETE
                self._on_body(chunk)
            elif st == _COMPLETE:
                self._done()
            elif st in (_IDLE, _HEAD):
                if pos >= n:
                    return
                if st == _IDLE:
                    c = data[pos]
                    if c == 13 or c == 10:  # empty lines before a message are ignored
                        rest = data[pos:].lstrip(b"\r\n")
                        pos = n - len(rest)
                        continue
                    if self._method is None and not self._request:
                        self._fail(ProtocolError(502, "response data without a request", "UPE"))
                end = data.find(b"\r\n\r\n", max(pos, scan_from))
                scan_from = 0
                if end < 0:
                    self._partial_head(data[pos:] if pos else data)
                    return
                raw = data if (pos == 0 and end + 4 == n) else data[pos : end + 4]
                pos = end + 4
                self._start(raw)
            elif st == _CHUNK_SIZE:
                i = data.find(b"\r\n", max(pos, scan_from))
                scan_from = 0
                if i < 0:
                    if n - pos > self._limits.max_head_bytes:
                        self._body_metadata_too_large()
                    self._buf = data[pos:]
                    self._scan_from = max(n - pos - 1, 0)
                    return
                m = g.CHUNK_LINE.fullmatch(data, pos, i)
                if m is None:
                    self._fail(self._error_at("invalid chunk size line"))
                size = int(m.group(1), 16)
                if size > g.MAX_U64:
                    self._fail(self._error_at("chunk size overflow"))
                pos = i + 2
                if size:
                    self._remaining = size
                    self._state = _CHUNK_DATA
                else:
                    self._state = _TRAILERS
            elif st == _CHUNK_DATA:
                avail = n - pos
                if avail <= 0:
                    return
                rem = self._remaining
                if avail < rem:
                    self._remaining = rem - avail
                    self._on_body(data if pos == 0 else data[pos:])
                    return
                chunk = data if (pos == 0 and rem == n) else data[pos : pos + rem]
                pos += rem
                self._remaining = 0
                self._state = _CHUNK_END
                self._on_body(chunk)
            elif st == _CHUNK_END:
                avail = n - pos
                if avail >= 2:
                    if data[pos] != 13 or data[pos + 1] != 10:
                        self._fail(self._error_at("missing CRLF after chunk data"))
                    pos += 2
                    self._state = _CHUNK_SIZE
                    continue
                if avail == 1:
                    if data[pos] != 13:
                        self._fail(self._error_at("missing CRLF after chunk data"))
                    self._buf = data[pos:]
                return
            elif st == _TRAILERS:
                avail = n - pos
                if avail < 2:
                    if avail:
                        self._buf = data[pos:]
                    return
                if data[pos] == 13 and data[pos + 1] == 10:
                    pos += 2
                    self._done()  # nothing was delivered since the last pause check
                else:
                    end = data.find(b"\r\n\r\n", max(pos, scan_from))
                    scan_from = 0
                    if end < 0:
                        if avail > self._limits.max_head_bytes:
                            self._body_metadata_too_large()
                        self._buf = data[pos:]
                        self._scan_from = max(avail - 3, 0)
                        return
                    trailers = _fields(data[pos : end + 2], self._request)
                    check_trailers(trailers, self._request, self._limits)
                    pos = end + 4
                    head = self._head
                    assert head is not None
                    head.trailers = trailers
                    self._done()
            elif st == _BODY_EOF:
                if pos < n:
                    self._on_body(data if pos == 0 else data[pos:])
                return
            elif st == _UPGRADED:
                if self._announce:
                    self._announce = False
                    self._on_upgrade(data[pos:] if pos else data)
                elif pos < n:
                    self._on_upgrade(data[pos:] if pos else data)
                return
            else:  # _CLOSED: the rest is ignored; _FAILED cannot be reached here
                return
            if self._paused:
                self._buf = data[pos:] if pos else data
                return

    def _error_at(self, reason: str) -> ProtocolError:
        if self._request:
            return ProtocolError(400, reason)
        return ProtocolError(502, reason, "UPE")


def _noop() -> None:
    pass


def _noop_bytes(data: bytes) -> None:
    pass


class PureRequestParser(_Base):
    """Pure-Python request parser; see :class:`~.interface.RequestParser`."""

    _head: RequestHead | None

    def __init__(self, handler: RequestHandler, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits, True)
        self._on_head = handler.on_request_head
        self._on_body = handler.on_body
        self._on_done = handler.on_message_complete
        self._on_upgrade = handler.on_upgrade

    def _start(self, raw: bytes) -> None:
        head = _parse_request(raw, self._limits)
        self._head = head
        if head.method == b"CONNECT":
            self._state = _COMPLETE  # no body, whatever the fields say (as llhttp)
        elif head.chunked:
            self._state = _CHUNK_SIZE
        elif head.content_length:
            self._state = _BODY
            self._remaining = head.content_length
        else:
            self._state = _COMPLETE
        self._on_head(head)

    def _done(self) -> None:
        head = self._head
        assert head is not None
        if head.upgrade is not None or head.method == b"CONNECT":
            self._state = _UPGRADED
            self._announce = True
        elif head.keep_alive:
            self._state = _IDLE
        else:
            self._state = _CLOSED
        self._on_done()


def _parse_request(raw: bytes, limits: Limits) -> RequestHead:
    le = raw.find(b"\r\n")
    line = raw[:le]
    sp = line.find(b" ")
    method = line[:sp]
    if sp <= 0 or method not in g.HTTP_METHODS:
        raise ProtocolError(400, "invalid method")
    if method == b"PRI":
        raise ProtocolError(505, "HTTP/2 connection preface not supported")
    rest = line[sp + 1 :]
    if rest[:1] == b" ":
        rest = rest.lstrip(b" ")
    sp = rest.find(b" ")
    target = rest if sp < 0 else rest[:sp]
    if method == b"CONNECT":
        ok = g.CONNECT_TARGET.fullmatch(target) is not None
    else:
        ok = g.TARGET.fullmatch(target) is not None
    if not ok:
        raise ProtocolError(400, "invalid request target")
    if len(target) > limits.max_request_line:
        raise ProtocolError(414, "request target too long")
    if sp < 0:
        version = b"0.9"  # no version: HTTP/0.9, refused with 505 after the fields
    else:
        vpart = rest[sp + 1 :]
        if vpart[:1] == b" ":
            vpart = vpart.lstrip(b" ")
        if not g.VERSION.fullmatch(vpart):
            raise ProtocolError(400, "invalid HTTP version")
        version = vpart[5:]
        if version not in g.KNOWN_VERSIONS:
            raise ProtocolError(505, "HTTP version not supported")
    headers = _fields(raw[le + 2 : -2], True)
    return make_request_head(method, target, version, headers, raw, len(raw), limits)


class PureResponseParser(_Base):
    """Pure-Python response parser; see :class:`~.interface.ResponseParser`."""

    _head: ResponseHead | None

    def __init__(self, handler: ResponseHandler, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits, False)
        self._on_interim = handler.on_interim_response
        self._on_head = handler.on_response_head
        self._on_body = handler.on_body
        self._on_done = handler.on_message_complete
        self._on_upgrade = handler.on_upgrade

    def expect_response(self, method: bytes) -> None:
        self._method = method

    def _start(self, raw: bytes) -> None:
        method = self._method
        if method is None:
            raise ProtocolError(502, "response data without a request", "UPE")
        le = raw.find(b"\r\n")
        m = g.STATUS_LINE.fullmatch(raw, 0, le)
        if m is None:
            raise ProtocolError(502, "invalid status line", "UPE")
        version = m.group(1)
        if version not in g.KNOWN_VERSIONS:
            raise ProtocolError(502, "unsupported HTTP version in response", "UPE")
        status = int(m.group(2))
        headers = _fields(raw[le + 2 : -2], False)
        head = make_response_head(
            status, m.group(3) or b"", version, headers, raw, len(raw), method, self._limits
        )
        if status < 200 and status != 101:
            self._state = _IDLE
            self._on_interim(head)
            return
        self._head = head
        if (
            status in (101, 204, 304)
            or method == b"HEAD"
            or (method == b"CONNECT" and status < 300)
        ):
            self._state = _COMPLETE
        elif head.chunked:
            self._state = _CHUNK_SIZE
        elif head.content_length:
            self._state = _BODY
            self._remaining = head.content_length
        elif head.content_length == 0:
            self._state = _COMPLETE
        else:
            self._state = _BODY_EOF
        self._on_head(head)

    def _done(self) -> None:
        head = self._head
        assert head is not None
        method = self._method
        self._method = None
        if head.upgrade is not None or (method == b"CONNECT" and head.status < 300):
            self._state = _UPGRADED
            self._announce = True
        elif head.keep_alive:
            self._state = _IDLE
        else:
            self._state = _CLOSED
        self._on_done()
