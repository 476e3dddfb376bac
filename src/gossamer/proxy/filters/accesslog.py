"""Access logs: one JSON object per request, in a file (or stdout/stderr).

The format is Envoy's `json_format`: each key's value is a command operator
(`%RESPONSE_CODE%`), or a literal string without `%`. Operators are parsed once when the
config is compiled (`compile_format` raises ValueError for one we do not honour, which
becomes a NACK); at the end of a request `AccessLogger.log` looks values up on the
exchange and appends a line to a buffered file that the runtime flushes every second
(as Envoy's file logger does), so a request costs no system call of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from gossamer.protocols.http1 import RequestHead


class Exchange(Protocol):
    """What the logger reads from the connection (io/http.HttpDownstream)."""

    head: RequestHead | None
    peer_ip: str
    peer_identity: str | None
    rx: int
    tx: int


class Record:
    """The end of one exchange, as the HTTP protocol hands it over."""

    __slots__ = (
        "cluster",
        "duration",
        "exchange",
        "flags",
        "start",
        "status",
        "trace_id",
        "upstream",
    )

    def __init__(
        self,
        exchange: Exchange,
        start: float,
        duration: float,
        status: int,
        flags: str,
        trace_id: str | None,
        cluster: str,
        upstream: str,
    ) -> None:
        self.exchange = exchange
        self.start = start
        self.duration = duration
        self.status = status
        self.flags = flags
        self.trace_id = trace_id
        self.cluster = cluster
        self.upstream = upstream


Getter = Callable[[Record], Any]


def _req(name: str) -> Getter:
    lower = name.lower()
    if lower == ":method":
        return lambda r: _text(r.exchange.head.method if r.exchange.head else None)
    if lower == ":path":
        return lambda r: _text(r.exchange.head.path if r.exchange.head else None)
    if lower == ":authority":
        return lambda r: _text(
            (r.exchange.head.authority or r.exchange.head.host) if r.exchange.head else None
        )
    key = lower.encode()
    return lambda r: _text(r.exchange.head.get(key) if r.exchange.head else None)


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


def _start_time(r: Record) -> str:
    t = r.start
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def _upstream_san(r: Record) -> str | None:
    """The upstream's verified SPIFFE ID (mTLS to another sidecar), if still connected."""
    up = getattr(r.exchange, "upstream", None)
    transport = getattr(up, "transport", None)
    if transport is None:
        return None
    from gossamer.proxy.io.tls import peer_identity

    return peer_identity(transport)


OPERATORS: dict[str, Getter] = {
    "START_TIME": _start_time,
    "TRACE_ID": lambda r: r.trace_id,
    "RESPONSE_CODE": lambda r: r.status,
    "RESPONSE_FLAGS": lambda r: r.flags or "-",
    "DURATION": lambda r: int(r.duration * 1000),
    "BYTES_RECEIVED": lambda r: r.exchange.rx,
    "BYTES_SENT": lambda r: r.exchange.tx,
    "DOWNSTREAM_REMOTE_ADDRESS": lambda r: r.exchange.peer_ip or None,
    "DOWNSTREAM_PEER_URI_SAN": lambda r: r.exchange.peer_identity,
    "UPSTREAM_PEER_URI_SAN": _upstream_san,
    "UPSTREAM_CLUSTER": lambda r: r.cluster or None,
    "UPSTREAM_HOST": lambda r: r.upstream or None,
}


def compile_format(fields: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Getter], ...]:
    """(key, operator or literal) pairs → (key, getter); ValueError names a bad one."""
    out = []
    for key, spec in fields:
        out.append((key, _getter(key, spec)))
    return tuple(out)


def _getter(key: str, spec: str) -> Getter:
    if "%" not in spec:
        return lambda r: spec
    if not (spec.startswith("%") and spec.endswith("%") and spec.count("%") == 2):
        raise ValueError(f"{key}: only one whole command operator per value, got {spec!r}")
    op = spec[1:-1]
    if op.startswith("REQ(") and op.endswith(")"):
        return _req(op[4:-1].split("?", 1)[0])
    getter = OPERATORS.get(op)
    if getter is None:
        raise ValueError(
            f"{key}: command operator %{op}% is not supported "
            f"(supported: REQ(...), {', '.join(sorted(OPERATORS))})"
        )
    return getter


class AccessLogger:
    __slots__ = ("fields", "file", "lines", "path")

    def __init__(self, path: str, fields: tuple[tuple[str, str], ...], file: IO[str]) -> None:
        self.path = path
        self.fields = tuple((_dumps(k) + ":", g) for k, g in compile_format(fields))
        self.file = file
        self.lines = 0

    def log(self, record: Record) -> None:
        # Formatted directly (a dict and json.dumps cost twice as much); absent values
        # (None) leave their key out.
        parts = []
        for prefix, getter in self.fields:
            value = getter(record)
            if value is None:
                continue
            parts.append(prefix + (str(value) if type(value) is int else _dumps(value)))
        self.file.write("{" + ",".join(parts) + "}\n")
        self.lines += 1


_dumps = json.JSONEncoder(ensure_ascii=True).encode
