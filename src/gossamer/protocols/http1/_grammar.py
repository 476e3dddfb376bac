"""Byte-level grammar shared by both backends.

The pure backend must accept exactly what llhttp (the httptools backend) accepts, and
reject what it rejects, so several rules below mirror llhttp's strict mode rather than
the RFC's full latitude; each such case says so.
"""

from __future__ import annotations

import re
from typing import Final

# RFC 9110 tchar.
TCHAR: Final = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
# Field values: HTAB, SP, VCHAR, obs-text. No other control characters (NUL, bare CR/LF, DEL).
_VCHARS: Final = rb"\t\x20-\x7e\x80-\xff"

# One field line, leading OWS excluded from the value; trailing OWS is kept (as llhttp does).
FIELD_LINES: Final = re.compile(rb"(?:[" + TCHAR + rb"]+:[ \t]*[" + _VCHARS + rb"]*\r\n)*")
FIELD_LINE: Final = re.compile(rb"([" + TCHAR + rb"]+):[ \t]*([" + _VCHARS + rb"]*)\r\n")
BAD_VALUE_CHAR: Final = re.compile(rb"[^" + _VCHARS + rb"]")
TOKEN: Final = re.compile(rb"[" + TCHAR + rb"]+")

# llhttp's method table for HTTP/x.x request lines (RTSP-only methods are refused).
HTTP_METHODS: Final = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE COPY LOCK MKCOL MOVE PROPFIND "
    b"PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY CHECKOUT MERGE "
    b"M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE PATCH PURGE MKCALENDAR LINK UNLINK SOURCE "
    b"QUERY PRI".split()
)

# Request targets, as llhttp validates them: origin-form and "*" take any VCHAR; absolute-form
# is scheme "://" authority-chars, then path/query; CONNECT starts straight in the authority.
_AUTH_CHARS: Final = rb"!$%&'()*+,\-.0-9:;=@A-Z\[\]_a-z~"
TARGET: Final = re.compile(
    rb"[/*][\x21-\x7e]*|[A-Za-z]+://([" + _AUTH_CHARS + rb"]*)([/?][\x21-\x7e]*)?"
)
CONNECT_TARGET: Final = re.compile(rb"[" + _AUTH_CHARS + rb"]*(?:[/?][\x21-\x7e]*)?")
# What we then require of a CONNECT target: host:port (reg-name, IPv4 or [IPv6]).
AUTHORITY_HOST_PORT: Final = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+):[0-9]{1,5}"
)

VERSION: Final = re.compile(rb"HTTP/([0-9])\.([0-9])")
# llhttp knows these versions; any other digit pair is "Invalid HTTP version" there (-> 505).
KNOWN_VERSIONS: Final = frozenset((b"0.9", b"1.0", b"1.1", b"2.0"))
STATUS_LINE: Final = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?")

# chunk = chunk-size *( ";" ext ) CRLF, with llhttp's idea of ext: a token name (possibly empty
# when followed by "=" or ";"), optional "=" token-or-quoted value.
_QDTEXT: Final = rb"\t \x21\x23-\x5b\x5d-\x7e\x80-\xff"
_QPAIR: Final = rb"\t \x21-\x7e\x80-\xff"
_EXT_VALUE: Final = rb"[" + TCHAR + rb"]*(?:\"(?:[" + _QDTEXT + rb"]|\\[" + _QPAIR + rb"])*\")?"
CHUNK_LINE: Final = re.compile(
    rb"([0-9A-Fa-f]+)(?:;(?:[" + TCHAR + rb"]*=" + _EXT_VALUE + rb"|[" + TCHAR + rb"]+|(?=;)))*"
)

MAX_U64: Final = (1 << 64) - 1
