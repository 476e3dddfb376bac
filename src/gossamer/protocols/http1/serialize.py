"""Heads for the next hop, and chunked framing.

Requests go upstream as HTTP/1.1 with the hop-by-hop fields removed (RFC 9110 §7.6.1:
Connection and every field it names, Keep-Alive, Proxy-Connection, TE unless "trailers",
Trailer, Transfer-Encoding, Upgrade unless this is an upgrade request,
Proxy-Authorization), the framing re-stated (Content-Length kept, chunked stays chunked:
``on_body`` delivers de-chunked bytes, which the proxy re-chunks with
:func:`encode_chunk`), and the proxy's own fields added. Every other field keeps its name,
value and place as received. Responses get the same treatment toward the client.

Cost: the parser already noted which kinds of field need an edit (``head.flags``). With
none, the received field block is reused as one slice. With some (``Connection:
keep-alive`` from most client libraries, an absolute-form target from apps using
``HTTP_PROXY``, ``x-forwarded-for`` from the previous hop), the affected lines are found
in ``raw.lower()`` with ``bytes.find`` and cut out of, or appended to, the received bytes;
only when the raw head is unknown is the block rebuilt field by field.

Fields named by Connection are dropped, except framing, Host and the x-forwarded-* and
x-request-id fields: "Connection: Content-Length" or "Connection: X-Forwarded-For" is a
classic way to make a proxy strip what the next hop relies on.
"""

from __future__ import annotations

import re
from binascii import hexlify
from collections.abc import Collection, Iterable, Sequence
from random import getrandbits
from typing import Final

from gossamer.protocols.http1.head import (
    DIRTY,
    F_ABSOLUTE,
    F_CL,
    F_CONN,
    F_HOP,
    F_PROXY_CONN,
    F_TE,
    F_TE_FIELD,
    F_UPGRADE,
    HAS_XFF,
    HAS_XFP,
    Headers,
    RequestHead,
    ResponseHead,
    connection_tokens,
)

_CRLF: Final = b"\r\n"
_SEP: Final = b": "
_CHUNKED_LINE: Final = b"transfer-encoding: chunked\r\n"
_CLOSE_LINE: Final = b"connection: close\r\n"
_KEEP_ALIVE_LINE: Final = b"connection: keep-alive\r\n"
_UPGRADE_LINE: Final = b"connection: upgrade\r\n"
_TE_TRAILERS_LINE: Final = b"te: trailers\r\n"
_REQUEST_HOP: Final = (b"keep-alive", b"trailer", b"proxy-authorization")
_RESPONSE_HOP: Final = (b"keep-alive", b"trailer", b"proxy-authenticate")
# Never dropped because Connection names them (see the module docstring).
_PROTECTED: Final = frozenset(
    (
        b"",
        b"close",
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-request-id",
    )
)
_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)

# The flag bits that decide which lines are cut (the plan cache key).
_EDIT_BITS: Final = F_CONN | F_PROXY_CONN | F_HOP | F_TE | F_CL | F_TE_FIELD | F_UPGRADE

LAST_CHUNK: Final = b"0\r\n\r\n"


def new_request_id() -> bytes:
    """A random UUID4 as 32 hex digits.

    From ``random`` (reseeded in forked workers), not ``os.urandom``: a request id needs
    uniqueness for correlation, not secrecy, and this avoids a syscall per request.
    """
    return hexlify((getrandbits(128) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16, "big"))


# -- editing a field block --------------------------------------------------------------

Cutter = re.Pattern[bytes]
# A regex matching the lines to cut (each with the CRLF before it), per (flags, Connection
# tokens, direction, upgrade): the same few combinations recur on every connection, so each
# is compiled once; splitting the block on it removes them all in one call.
_PLANS: dict[tuple[int, tuple[bytes, ...] | None, bool, bool], Cutter | None] = {}
_CUTTERS: dict[tuple[bytes, ...], Cutter] = {}
_CACHE_MAX: Final = 1024
_BY_FLAG: Final = (
    (F_CONN, b"connection"),
    (F_PROXY_CONN, b"proxy-connection"),
    (F_TE, b"transfer-encoding"),
    (F_CL, b"content-length"),
    (F_TE_FIELD, b"te"),
)
# Connection tokens that name fields whose presence the flags already tell.
_FLAGGED: Final = frozenset(
    (
        *(b"connection", b"proxy-connection", b"keep-alive", b"trailer"),
        *(b"proxy-authorization", b"proxy-authenticate", b"te", b"upgrade"),
    )
)
# The end of the last x-forwarded-for line of a block.
_LAST_XFF: Final = re.compile(rb"(?s:.*)\r\nx-forwarded-for:[^\r]*", re.IGNORECASE)


def _cutter(names: tuple[bytes, ...]) -> Cutter | None:
    if not names:
        return None
    rx = _CUTTERS.get(names)
    if rx is None:
        alternatives = b"|".join(re.escape(n) for n in names)
        rx = re.compile(rb"\r\n(?:" + alternatives + rb"):[^\r]*", re.IGNORECASE)
        if len(_CUTTERS) < _CACHE_MAX:
            _CUTTERS[names] = rx
    return rx


def _plan(
    flags: int, connection: tuple[bytes, ...] | None, request: bool, keep_upgrade: bool
) -> tuple[bytes, ...]:
    """Lower-case names of the fields to cut from heads with these flags."""
    names = [name for bit, name in _BY_FLAG if flags & bit]
    if flags & F_HOP:
        names += _REQUEST_HOP if request else _RESPONSE_HOP
    if flags & F_UPGRADE and not keep_upgrade:
        names.append(b"upgrade")
    if connection:
        names += [t for t in connection if t not in _PROTECTED and t not in _FLAGGED]
    return tuple(dict.fromkeys(names))


def _planned_cutter(
    flags: int, connection: tuple[bytes, ...] | None, request: bool, keep_upgrade: bool
) -> Cutter | None:
    key = (flags, connection, request, keep_upgrade)
    try:
        return _PLANS[key]
    except KeyError:
        rx = _cutter(_plan(*key))
        if len(_PLANS) < _CACHE_MAX:
            _PLANS[key] = rx
        return rx


def _edit_raw(raw: bytes, le: int, cut: Cutter | None, append_xff: bytes | None) -> list[bytes]:
    """The field block of ``raw`` (from the CRLF ending the first line to the CRLF ending
    the last field) minus the lines ``cut`` matches, with ``append_xff`` added to the last
    x-forwarded-for line."""
    block = raw[le:-2]
    if append_xff is not None:
        m = _LAST_XFF.match(block)
        if m is not None:
            e = m.end()
            block = b"%s, %s%s" % (block[:e], append_xff, block[e:])
    if cut is None:
        return [block]
    return cut.split(block)


def _rebuild(headers: Headers, cut: Cutter | None, append_xff: bytes | None) -> list[bytes]:
    """The same block as :func:`_edit_raw`, from the parsed fields (no raw head)."""
    out: list[bytes] = []
    last_xff = -1
    if append_xff is not None:
        for i, (name, _) in enumerate(headers):
            if name.lower() == b"x-forwarded-for":
                last_xff = i
    for i, (name, value) in enumerate(headers):
        line = b"\r\n%s: %s" % (name, value)
        if cut is not None and cut.fullmatch(line):
            continue
        if i == last_xff:
            out += (line, b", ", append_xff or b"")
        else:
            out.append(line)
    out.append(_CRLF)
    return out


def _with(
    cut: Cutter | None,
    plan: tuple[bytes, ...],
    set_headers: Sequence[tuple[bytes, bytes]],
    remove_headers: Collection[bytes],
    extra: Iterable[bytes],
) -> Cutter | None:
    """``cut`` widened to the fields of set_headers, remove_headers and ``extra``."""
    names = (*plan, *remove_headers, *(name for name, _ in set_headers), *extra)
    return _cutter(tuple(dict.fromkeys(names))) if names else cut


# -- requests ---------------------------------------------------------------------------


def build_request_head(
    head: RequestHead,
    *,
    target: bytes | None = None,
    host: bytes | None = None,
    client_addr: bytes | None = None,
    proto: bytes | None = None,
    request_id: bool = True,
    set_headers: Sequence[tuple[bytes, bytes]] = (),
    add_headers: Sequence[tuple[bytes, bytes]] = (),
    remove_headers: Collection[bytes] = (),
) -> bytes:
    """The head to send upstream for ``head``.

    ``target``: the new request-target (prefix rewrite); by default the origin-form of the
    received one (``http://benigno:5000/x`` -> ``/x``), unchanged for CONNECT.
    ``host``: replaces Host; by default the authority of an absolute-form target (RFC 9112
    §3.2.2), else Host as received (pass it for HTTP/1.0 requests that lack one).
    ``client_addr``: appended to ``x-forwarded-for``. ``proto``: sets ``x-forwarded-proto``.
    ``request_id``: keep ``x-request-id`` or add a new one (stored in ``head.request_id``).
    ``set_headers`` replace every field of that name, ``add_headers`` are appended,
    ``remove_headers`` are dropped; names in these three must be lower-case.
    """
    method = head.method
    flags = head.flags
    if target is None:
        target = head.path if flags & F_ABSOLUTE else head.target
    if host is None and flags & F_ABSOLUTE:
        host = head.authority
    rid: bytes | None = None
    if request_id and head.request_id is None:
        rid = head.request_id = new_request_id()
    raw = head.raw
    xff_edit = client_addr is not None and flags & HAS_XFF
    xfp_edit = proto is not None and flags & HAS_XFP
    if (
        raw is not None
        and not flags & DIRTY
        and host is None
        and not xff_edit
        and not xfp_edit
        and not set_headers
        and not remove_headers
        and not add_headers
        and client_addr is not None
        and proto is not None
    ):
        # The usual proxy call on a clean head: one format around the received block.
        block = raw[raw.find(_CRLF) : -2]
        if rid is None:
            return b"%s %s HTTP/1.1%sx-forwarded-for: %s\r\nx-forwarded-proto: %s\r\n\r\n" % (
                method,
                target,
                block,
                client_addr,
                proto,
            )
        return (
            b"%s %s HTTP/1.1%sx-forwarded-for: %s\r\nx-forwarded-proto: %s\r\n"
            b"x-request-id: %s\r\n\r\n" % (method, target, block, client_addr, proto, rid)
        )
    upgrade = head.upgrade is not None
    if remove_headers and b"x-forwarded-for" in remove_headers:
        xff_edit = False  # removed, then added afresh below
    cut = None
    if flags & DIRTY:
        cut = _planned_cutter(flags & _EDIT_BITS, head.connection, True, upgrade)
    if host is not None or xfp_edit or set_headers or remove_headers:
        more = [b"host"] if host is not None else []
        if xfp_edit:
            more.append(b"x-forwarded-proto")
        plan = _plan(flags & _EDIT_BITS, head.connection, True, upgrade) if flags & DIRTY else ()
        cut = _with(cut, plan, set_headers, remove_headers, more)
    append_xff = client_addr if xff_edit else None
    if raw is not None:
        out = _edit_raw(raw, raw.find(_CRLF), cut, append_xff)
    else:
        out = _rebuild(head.headers, cut, append_xff)
    out[:0] = (method, b" ", target, b" HTTP/1.1")
    if host is not None:
        out += (b"host: ", host, _CRLF)
    if upgrade and flags & F_CONN:
        out.append(_UPGRADE_LINE)
    if flags & F_TE and head.chunked:
        out.append(_CHUNKED_LINE)
    if flags & F_CL and head.content_length is not None:
        out.append(b"content-length: %d\r\n" % head.content_length)
    if flags & F_TE_FIELD and head.te is not None and b"trailers" in connection_tokens(head.te):
        out.append(_TE_TRAILERS_LINE)
    for name, value in set_headers:
        out += (name, _SEP, value, _CRLF)
    for name, value in add_headers:
        out += (name, _SEP, value, _CRLF)
    if client_addr is not None and not xff_edit:
        out += (b"x-forwarded-for: ", client_addr, _CRLF)
    if proto is not None:
        out += (b"x-forwarded-proto: ", proto, _CRLF)
    if rid is not None:
        out += (b"x-request-id: ", rid, _CRLF)
    out.append(_CRLF)
    return b"".join(out)


# -- responses --------------------------------------------------------------------------


def downstream_chunked(head: ResponseHead, client_version: bytes = b"1.1") -> bool:
    """Whether the body going to the client must be re-chunked with :func:`encode_chunk`
    (chunked upstream, HTTP/1.1 client); otherwise write the body bytes as they come."""
    return head.chunked and client_version != b"1.0"


def response_keeps_alive(head: ResponseHead, keep_alive: bool, client_version: bytes) -> bool:
    """Whether the client connection can stay open after this response."""
    if not keep_alive or head.body_until_eof:
        return False
    return not (head.chunked and client_version == b"1.0")  # no framing left for 1.0


def build_response_head(
    head: ResponseHead,
    *,
    keep_alive: bool = True,
    client_version: bytes = b"1.1",
    set_headers: Sequence[tuple[bytes, bytes]] = (),
    add_headers: Sequence[tuple[bytes, bytes]] = (),
    remove_headers: Collection[bytes] = (),
) -> bytes:
    """The head to send to the client for an upstream response ``head``.

    ``keep_alive``: whether the proxy means to keep the client connection open (False adds
    ``connection: close``; it is forced False for bodies delimited by the upstream's close,
    and for chunked bodies to an HTTP/1.0 client, which get de-chunked bytes and a close).
    ``client_version`` is the client's request version. Header edits as in
    :func:`build_request_head`. Interim (1xx) heads get no connection or framing fields.
    """
    status = head.status
    flags = head.flags
    connection_line = b""
    if status >= 200:
        if not response_keeps_alive(head, keep_alive, client_version):
            connection_line = _CLOSE_LINE
        elif client_version == b"1.0":
            connection_line = _KEEP_ALIVE_LINE
    raw = head.raw
    dechunk = head.chunked and client_version == b"1.0"
    if (
        raw is not None
        and not flags & DIRTY
        and not dechunk
        and not set_headers
        and not remove_headers
        and raw.startswith(b"HTTP/1.1 ")
    ):
        if not add_headers:
            if not connection_line:
                return raw
            return b"%s%s\r\n" % (raw[:-2], connection_line)
        out = [raw[:-2], connection_line]
    else:
        upgrade = head.upgrade is not None
        cut = None
        if flags & DIRTY:
            cut = _planned_cutter(flags & _EDIT_BITS, head.connection, False, upgrade)
        if dechunk or set_headers or remove_headers:
            plan = (
                _plan(flags & _EDIT_BITS, head.connection, False, upgrade) if flags & DIRTY else ()
            )
            more = [b"transfer-encoding"] if dechunk else []
            cut = _with(cut, plan, set_headers, remove_headers, more)
        if raw is not None:
            le = raw.find(_CRLF)
            out = _edit_raw(raw, le, cut, None)
            first = raw[:le] if raw.startswith(b"HTTP/1.1 ") else None
        else:
            out = _rebuild(head.headers, cut, None)
            first = None
        out.insert(0, first or b"HTTP/1.1 %d %s" % (status, head.reason))
        if upgrade and flags & F_CONN:
            out.append(_UPGRADE_LINE)
        if flags & F_TE and head.chunked and not dechunk:
            out.append(_CHUNKED_LINE)
        if flags & F_CL and head.content_length is not None:
            out.append(b"content-length: %d\r\n" % head.content_length)
        for name, value in set_headers:
            out += (name, _SEP, value, _CRLF)
        out.append(connection_line)
    for name, value in add_headers:
        out += (name, _SEP, value, _CRLF)
    out.append(_CRLF)
    return b"".join(out)


# -- chunked framing --------------------------------------------------------------------


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body; empty data gives b"" (an empty chunk would end it)."""
    if not data:
        return b""
    return b"%x\r\n%b\r\n" % (len(data), data)


def last_chunk(trailers: Headers | None = None) -> bytes:
    """The end of a chunked body, with trailer fields if any."""
    if not trailers:
        return LAST_CHUNK
    out = [b"0\r\n"]
    for name, value in trailers:
        out += (name, _SEP, value, _CRLF)
    out.append(_CRLF)
    return b"".join(out)
