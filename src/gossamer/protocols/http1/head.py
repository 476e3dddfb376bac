"""Parsed message heads, parser limits, and the header analysis both backends share.

A head keeps the header list exactly as received (names in their original case, wire
order) so the proxy can forward it unchanged, plus the handful of facts the proxy needs
pre-digested (framing, keep-alive, host, upgrade, expect). Computing those facts and
enforcing the semantic rules happens once, in :func:`make_request_head` /
:func:`make_response_head`, which both backends call: agreement between backends on
anything above the byte grammar comes from sharing this code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gossamer.protocols.http1 import _grammar as g
from gossamer.protocols.http1.errors import ProtocolError

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits; a head over them is refused before it is forwarded.

    ``max_request_line`` bounds the request target (the only unbounded part of a request
    line: llhttp only knows methods from its table and versions are three bytes), so it is
    checked identically by both backends while the target streams in.
    ``max_head_bytes`` bounds the whole head (request/status line and header section, as
    received); ``max_headers`` the number of field lines. Trailers get the same two limits.
    """

    max_request_line: int = 8 * 1024
    max_head_bytes: int = 64 * 1024
    max_headers: int = 100


DEFAULT_LIMITS: Final = Limits()

# Bits of ``RequestHead.flags`` / ``ResponseHead.flags``: what the serialiser must edit,
# found during the one pass over the fields so that it need not look at them again.
DIRTY: Final = 1  # any of the F_* bits below: the field block cannot be forwarded as is
HAS_XFF: Final = 2  # x-forwarded-for present
HAS_XFP: Final = 4  # x-forwarded-proto present
F_CONN: Final = 8  # Connection present (its tokens name more fields to drop)
F_HOP: Final = 16  # Keep-Alive, Trailer, Proxy-Authorization or Proxy-Authenticate present
F_TE: Final = 32  # Transfer-Encoding not exactly "chunked": re-emit canonically
F_CL: Final = 64  # Content-Length not canonical (leading zeros, OWS): re-emit
F_UPGRADE: Final = 128  # Upgrade present
F_TE_FIELD: Final = 256  # TE present with more than "trailers"
F_ABSOLUTE: Final = 512  # absolute-form target: Host must be replaced by its authority
F_PROXY_CONN: Final = 1024  # Proxy-Connection present (F_CONN: Connection present)


class RequestHead:
    """A request line and header section.

    ``target`` is the request-target as received. ``path`` is its origin-form (``target``
    itself unless it was absolute-form, e.g. ``GET http://benigno:5000/x`` from an app using
    ``HTTP_PROXY`` gives ``path == b"/x"``); ``authority`` is the host[:port] of an
    absolute-form or CONNECT target, else None. ``version`` is ``b"1.1"`` or ``b"1.0"``.
    ``raw`` is the exact head bytes when the backend saw them contiguously (always for the
    pure backend; for httptools unless the head followed another request in the same read),
    which lets the serialiser forward unchanged field lines as one slice.
    ``upgrade`` is the Upgrade value when this is an upgrade request (Upgrade + Connection:
    upgrade); CONNECT is recognised by its method. ``trailers`` is set before
    ``on_message_complete`` for chunked bodies that carried any.
    """

    __slots__ = (
        "authority",
        "chunked",
        "connection",
        "content_length",
        "expect_continue",
        "flags",
        "headers",
        "host",
        "keep_alive",
        "method",
        "path",
        "raw",
        "request_id",
        "target",
        "te",
        "trailers",
        "upgrade",
        "version",
    )

    def __init__(
        self, method: bytes, target: bytes, version: bytes, headers: Headers, raw: bytes | None
    ) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.raw = raw
        self.path = target
        self.authority: bytes | None = None
        self.host: bytes | None = None
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = True
        self.upgrade: bytes | None = None
        self.expect_continue = False
        self.te: bytes | None = None
        self.connection: tuple[bytes, ...] | None = None  # lower-cased Connection tokens
        self.request_id: bytes | None = None
        self.flags = 0
        self.trailers: Headers | None = None

    @property
    def is_connect(self) -> bool:
        return self.method == b"CONNECT"

    def get(self, name: bytes) -> bytes | None:
        """First value of a header (``name`` lower-case); a linear scan, for rare headers."""
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"<RequestHead {self.method!r} {self.target!r} HTTP/{self.version.decode()}>"


class ResponseHead:
    """A status line and header section; see :class:`RequestHead` for the shared fields.

    ``body_until_eof`` means the body is delimited by the upstream closing the connection
    (no Content-Length, not chunked): the proxy must close the client connection after it.
    """

    __slots__ = (
        "body_until_eof",
        "chunked",
        "connection",
        "content_length",
        "flags",
        "headers",
        "keep_alive",
        "raw",
        "reason",
        "status",
        "trailers",
        "upgrade",
        "version",
    )

    def __init__(
        self, status: int, reason: bytes, version: bytes, headers: Headers, raw: bytes | None
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.raw = raw
        self.content_length: int | None = None
        self.chunked = False
        self.keep_alive = True
        self.body_until_eof = False
        self.upgrade: bytes | None = None
        self.connection: tuple[bytes, ...] | None = None
        self.flags = 0
        self.trailers: Headers | None = None

    def get(self, name: bytes) -> bytes | None:
        for n, v in self.headers:
            if n.lower() == name:
                return v
        return None

    def __repr__(self) -> str:
        return f"<ResponseHead {self.status} {self.reason!r}>"


# Header classes the analysis cares about; every other name is forwarded untouched.
_HOST, _CL, _TE, _CONN, _PCONN, _UPGRADE, _EXPECT, _TE_HDR, _HOP, _XFF, _XFP, _XRID = range(1, 13)
_SPECIAL: Final[dict[bytes, int]] = {
    b"host": _HOST,
    b"content-length": _CL,
    b"transfer-encoding": _TE,
    b"connection": _CONN,
    # llhttp treats Proxy-Connection as Connection (keep-alive, upgrade); so do we.
    b"proxy-connection": _PCONN,
    b"upgrade": _UPGRADE,
    b"expect": _EXPECT,
    b"te": _TE_HDR,
    b"keep-alive": _HOP,
    b"trailer": _HOP,
    b"proxy-authorization": _HOP,
    b"proxy-authenticate": _HOP,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _XFP,
    b"x-request-id": _XRID,
}
# Names as received -> class, so the common names skip .lower(); Connection values ->
# tokens. Both bounded against floods of distinct names.
_SEEN: dict[bytes, int] = {}
_TOKENS: dict[bytes, tuple[bytes, ...]] = {}
_REASONS: set[bytes] = {b"", b"OK"}  # reason phrases already checked
_CACHE_MAX: Final = 2048


def _classify(name: bytes) -> int:
    code = _SPECIAL.get(name.lower(), 0)
    if len(_SEEN) < _CACHE_MAX:
        _SEEN[name] = code
    return code


def connection_tokens(value: bytes) -> tuple[bytes, ...]:
    """Lower-cased tokens of a Connection value.

    Leading OWS is dropped but only trailing spaces, mirroring llhttp (``upgrade\\t`` is not
    the ``upgrade`` token there), so both backends agree on what is an upgrade request.
    """
    tokens = _TOKENS.get(value)
    if tokens is None:
        tokens = tuple(t.lstrip(b" \t").rstrip(b" ").lower() for t in value.split(b","))
        if len(_TOKENS) < _CACHE_MAX:
            _TOKENS[value] = tokens
    return tokens


def _content_length(value: bytes, current: int | None, bad: int) -> int:
    if current is not None:
        raise ProtocolError(bad, "duplicate Content-Length", _flag(bad))
    digits = value.rstrip(b" \t")
    if not digits:
        raise ProtocolError(bad, "empty Content-Length", _flag(bad))
    if not digits.isdigit():
        raise ProtocolError(bad, "invalid Content-Length", _flag(bad))
    n = int(digits)
    if n > g.MAX_U64:
        raise ProtocolError(bad, "Content-Length overflow", _flag(bad))
    return n


def _flag(status: int) -> str:
    return "UPE" if status == 502 else "DPE"


def _te_elements(values: list[bytes]) -> list[bytes]:
    # Same trimming as llhttp's TE states: leading OWS, trailing spaces only.
    return [e.lstrip(b" \t").rstrip(b" ").lower() for e in b",".join(values).split(b",")]


def _add_te(te: list[bytes] | None, value: bytes, cl: int | None, bad: int) -> list[bytes]:
    """A Transfer-Encoding field, with the checks llhttp makes as it reads one."""
    if cl is not None:
        raise ProtocolError(bad, "Transfer-Encoding with Content-Length", _flag(bad))
    if not value:
        raise ProtocolError(bad, "empty Transfer-Encoding", _flag(bad))
    te = [value] if te is None else [*te, value]
    if bad == 400 and b"chunked" in _te_elements(te)[:-1]:
        raise ProtocolError(400, "chunked is not the final transfer-coding")
    return te


def _is_chunked_only(values: list[bytes]) -> bool:
    if len(values) != 1:
        return False
    if values[0] == b"chunked":
        return True
    elements = _te_elements(values)
    return elements[-1] == b"chunked" and not any(elements[:-1])


def _keep_alive(version: bytes, conn: tuple[bytes, ...] | None) -> bool:
    if version == b"1.1":
        return conn is None or b"close" not in conn
    return conn is not None and b"keep-alive" in conn and b"close" not in conn


def make_request_head(
    method: bytes,
    target: bytes,
    version: bytes,
    headers: Headers,
    raw: bytes | None,
    size: int,
    limits: Limits,
) -> RequestHead:
    """Analyse a parsed request head (both backends call this) and build it, or raise.

    One pass over the fields applies the checks llhttp also makes while reading them, in
    wire order, so both backends report the same first error; the semantic checks follow.
    ``size`` is the head's size on the wire.
    """
    seen = _SEEN
    hosts = 0
    host: bytes | None = None
    cl: int | None = None
    te: list[bytes] | None = None
    conn: tuple[bytes, ...] | None = None
    upgrade: bytes | None = None
    te_field: bytes | None = None
    request_id: bytes | None = None
    expect = False
    flags = 0
    for name, value in headers:
        code = seen.get(name)
        if code is None:
            code = _classify(name)
        if not code:
            continue
        if code == _HOST:
            hosts += 1
            host = value if hosts == 1 else host
        elif code == _CL:
            if te is not None:
                raise ProtocolError(400, "Content-Length with Transfer-Encoding")
            if cl is None and value.isdigit() and len(value) < 19 and value[0] != 48:
                cl = int(value)  # the canonical case, without overflow concerns
            else:
                cl = _content_length(value, cl, 400)
                if not value.isdigit() or (value[0] == 48 and len(value) > 1):
                    flags |= DIRTY | F_CL
        elif code in (_CONN, _PCONN):
            conn = connection_tokens(value) if conn is None else conn + connection_tokens(value)
            flags |= DIRTY | (F_CONN if code == _CONN else F_PROXY_CONN)
        elif code == _TE:
            te = _add_te(te, value, cl, 400)
            if value != b"chunked":
                flags |= DIRTY | F_TE
        elif code == _XFF:
            flags |= HAS_XFF
        elif code == _XFP:
            flags |= HAS_XFP
        elif code == _XRID:
            if request_id is None:
                request_id = value
        elif code == _UPGRADE:
            # llhttp only counts an Upgrade field with a non-empty value.
            if value and upgrade is None:
                upgrade = value
            flags |= DIRTY | F_UPGRADE
        elif code == _EXPECT:
            expect = expect or value.strip(b" \t").lower() == b"100-continue"
        elif code == _TE_HDR:
            te_field = value
            if value.strip(b" \t").lower() != b"trailers":
                flags |= DIRTY | F_TE_FIELD
        else:  # _HOP
            flags |= DIRTY | F_HOP
    if len(headers) > limits.max_headers:
        raise ProtocolError(431, "too many header fields")
    if size > limits.max_head_bytes:
        raise ProtocolError(431, "request header section too large")
    if version == b"1.1":
        if hosts != 1:
            raise ProtocolError(
                400, "missing Host header" if not hosts else "duplicate Host header"
            )
        keep_alive = conn is None or b"close" not in conn
    elif version == b"1.0":
        if hosts > 1:
            raise ProtocolError(400, "duplicate Host header")
        keep_alive = conn is not None and b"keep-alive" in conn and b"close" not in conn
    else:
        raise ProtocolError(505, "HTTP version not supported")
    chunked = False
    if te is not None:
        if not _is_chunked_only(te):
            raise ProtocolError(501, "unsupported transfer-coding")
        chunked = True
    authority: bytes | None = None
    path = target
    if method == b"CONNECT":
        if not g.AUTHORITY_HOST_PORT.fullmatch(target):
            raise ProtocolError(400, "CONNECT target must be host:port")
        authority = target
        path = b""
    elif target[:1] != b"/" and target[:1] != b"*":  # absolute-form, syntax checked already
        m = g.TARGET.fullmatch(target)
        if m is None or not m.group(1):
            raise ProtocolError(400, "absolute-form target without authority")
        authority = m.group(1).rpartition(b"@")[2]  # drop deprecated userinfo
        path = m.group(2) or b"/"
        if path[:1] == b"?":
            path = b"/" + path
        flags |= DIRTY | F_ABSOLUTE
    if upgrade is not None and (conn is None or b"upgrade" not in conn):
        upgrade = None
    if (upgrade is not None or method == b"CONNECT") and (chunked or cl):
        # httptools ends an upgrade request at its head (what follows is the new protocol),
        # and a refused upgrade could not recover the framing: refuse it here.
        raise ProtocolError(400, "upgrade or CONNECT request with a body")
    head = RequestHead.__new__(RequestHead)  # every slot is set below: skip __init__
    head.method = method
    head.target = target
    head.version = version
    head.headers = headers
    head.raw = raw
    head.path = path
    head.authority = authority
    head.host = host
    head.content_length = cl
    head.chunked = chunked
    head.keep_alive = keep_alive
    head.upgrade = upgrade
    head.expect_continue = expect
    head.te = te_field
    head.connection = conn
    head.request_id = request_id
    head.flags = flags
    head.trailers = None
    return head


def is_upgrade_request(head: RequestHead) -> bool:
    """Whether the parser stops after this request's message (CONNECT or Upgrade)."""
    return head.upgrade is not None or head.method == b"CONNECT"


def make_response_head(
    status: int,
    reason: bytes,
    version: bytes,
    headers: Headers,
    raw: bytes | None,
    size: int,
    method: bytes,
    limits: Limits,
) -> ResponseHead:
    """As :func:`make_request_head`, for a response to a ``method`` request; errors are 502."""
    seen = _SEEN
    cl: int | None = None
    te: list[bytes] | None = None
    conn: tuple[bytes, ...] | None = None
    upgrade: bytes | None = None
    flags = 0
    for name, value in headers:
        code = seen.get(name)
        if code is None:
            code = _classify(name)
        if not code:
            continue
        if code == _CL:
            if te is not None:
                raise ProtocolError(502, "Content-Length with Transfer-Encoding", "UPE")
            if cl is None and value.isdigit() and len(value) < 19 and value[0] != 48:
                cl = int(value)
            else:
                cl = _content_length(value, cl, 502)
                if not value.isdigit() or (value[0] == 48 and len(value) > 1):
                    flags |= DIRTY | F_CL
        elif code == _TE:
            te = _add_te(te, value, cl, 502)
            if value != b"chunked":
                flags |= DIRTY | F_TE
        elif code in (_CONN, _PCONN):
            conn = connection_tokens(value) if conn is None else conn + connection_tokens(value)
            flags |= DIRTY | (F_CONN if code == _CONN else F_PROXY_CONN)
        elif code == _UPGRADE:
            if value and upgrade is None:
                upgrade = value
            flags |= DIRTY | F_UPGRADE
        elif code == _TE_HDR:
            flags |= DIRTY | F_TE_FIELD
        elif code == _HOP:
            flags |= DIRTY | F_HOP
    if len(headers) > limits.max_headers:
        raise ProtocolError(502, "too many header fields in response", "UPE")
    if size > limits.max_head_bytes:
        raise ProtocolError(502, "response header section too large", "UPE")
    if version != b"1.1" and version != b"1.0":
        raise ProtocolError(502, "unsupported HTTP version in response", "UPE")
    if status < 100:
        raise ProtocolError(502, "invalid status code", "UPE")
    if reason not in _REASONS:
        if g.BAD_VALUE_CHAR.search(reason):
            raise ProtocolError(502, "control character in reason phrase", "UPE")
        if len(_REASONS) < _CACHE_MAX:
            _REASONS.add(reason)
    keep_alive = _keep_alive(version, conn)
    chunked = False
    until_eof = False
    if status < 200:
        if status == 101:
            if method == b"HEAD" or method == b"CONNECT":
                raise ProtocolError(502, "101 response to a HEAD/CONNECT request", "UPE")
            if upgrade is None or conn is None or b"upgrade" not in conn:
                raise ProtocolError(502, "101 response without Upgrade", "UPE")
        elif status > 103:
            # llhttp would read a body for these; no 1xx has one.
            raise ProtocolError(502, "unsupported informational status", "UPE")
    else:
        upgrade = None
        if te is not None:
            if not _is_chunked_only(te):
                raise ProtocolError(502, "unsupported transfer-coding in response", "UPE")
            chunked = True
        if (
            not chunked
            and cl is None
            and status != 204
            and status != 304
            and method != b"HEAD"
            and not (method == b"CONNECT" and status < 300)
        ):
            until_eof = True
            keep_alive = False
    head = ResponseHead.__new__(ResponseHead)
    head.status = status
    head.reason = reason
    head.version = version
    head.headers = headers
    head.raw = raw
    head.content_length = cl
    head.chunked = chunked
    head.keep_alive = keep_alive
    head.body_until_eof = until_eof
    head.upgrade = upgrade if status == 101 else None
    head.connection = conn
    head.flags = flags
    head.trailers = None
    return head


def check_trailers(trailers: Headers, request: bool, limits: Limits) -> None:
    """Trailer rules: no framing fields (llhttp refuses them in requests), same limits."""
    bad = 400 if request else 502
    if len(trailers) > limits.max_headers:
        raise ProtocolError(bad, "too many trailer fields", _flag(bad))
    for name, _ in trailers:
        n = name.lower()
        if n == b"content-length" or n == b"transfer-encoding":
            raise ProtocolError(bad, "framing field in trailers", _flag(bad))
