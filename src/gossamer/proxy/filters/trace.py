"""Distributed tracing, sans-IO: trace context headers in and out, one span per hop.

Formats read and written: W3C Trace Context (`traceparent`, `tracestate` passed on as
received) and B3, single (`b3`) and multi (`x-b3-*`). An incoming context is continued
(its sampling decision kept); without one a trace starts here and is sampled at the
listener's rate. The next hop gets W3C plus the B3 style the request came with (multi
when it came with none), so apps that forward either format keep the trace linked.

Trace ids are always 32 hex digits here (a 64-bit B3 id is left-padded): one trace keeps
one id across formats, which is what lets the collector group its spans.

Cost: a listener without tracing pays one attribute test per request. With tracing, a
request costs a header scan, two random ids, the header values and, when sampled, one
tuple appended to the exporter's bounded queue at the end; JSON is built off the request
path, by the exporter (io/exporter.py).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from typing import Final, Protocol, cast

# How the request carried its context (what the next hop gets besides W3C).
NONE: Final = 0
W3C: Final = 1
B3_SINGLE: Final = 2
B3_MULTI: Final = 3

SERVER: Final = "SERVER"
CLIENT: Final = "CLIENT"

_FIRST = frozenset(b"tTbBxX")  # first bytes of the trace header names
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
TRACE_HEADERS: Final = frozenset(
    {
        b"traceparent",
        b"b3",
        b"x-b3-traceid",
        b"x-b3-spanid",
        b"x-b3-parentspanid",
        b"x-b3-sampled",
        b"x-b3-flags",
    }
)


class SpanSink(Protocol):
    """Where finished spans go (io/exporter.SpanExporter): must never block."""

    def add(self, span: tuple[object, ...]) -> None: ...


def _is_hex(value: bytes, length: int) -> bool:
    return len(value) == length and not value.strip(b"0123456789abcdef")


class Context:
    """A trace context as received: ids are lower-case hex bytes."""

    __slots__ = ("sampled", "span_id", "style", "trace_id")

    def __init__(
        self, trace_id: bytes | None, span_id: bytes | None, sampled: bool | None, style: int
    ) -> None:
        self.trace_id = trace_id  # 32 hex digits; None: a bare sampling decision
        self.span_id = span_id
        self.sampled = sampled  # None: the caller did not decide
        self.style = style


def parse_traceparent(value: bytes) -> Context | None:
    """`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`; None when malformed (the
    W3C spec: a bad traceparent is ignored and a new trace starts)."""
    parts = value.strip().lower().split(b"-")
    if len(parts) < 4:
        return None
    version, trace_id, span_id, flags = parts[0], parts[1], parts[2], parts[3]
    if not _is_hex(version, 2) or version == b"ff" or (version == b"00" and len(parts) != 4):
        return None
    if not _is_hex(trace_id, 32) or trace_id == _ZERO_TRACE:
        return None
    if not _is_hex(span_id, 16) or span_id == _ZERO_SPAN or not _is_hex(flags, 2):
        return None
    return Context(trace_id, span_id, bool(int(flags, 16) & 1), W3C)


def _b3_sampled(value: bytes) -> bool | None:
    value = value.strip().lower()
    if value in (b"1", b"d", b"true"):
        return True
    if value in (b"0", b"false"):
        return False
    return None


def _b3_trace_id(value: bytes) -> bytes | None:
    value = value.strip().lower()
    if _is_hex(value, 32):
        return value if value != _ZERO_TRACE else None
    if _is_hex(value, 16):
        return None if value == _ZERO_SPAN else b"0" * 16 + value
    return None


def parse_b3_single(value: bytes) -> Context | None:
    """`{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`, or a bare decision `0|1|d`."""
    value = value.strip().lower()
    if value in (b"0", b"1", b"d"):
        return Context(None, None, _b3_sampled(value), B3_SINGLE)
    parts = value.split(b"-")
    if len(parts) < 2 or len(parts) > 4:
        return None
    trace_id = _b3_trace_id(parts[0])
    span_id = parts[1]
    if trace_id is None or not _is_hex(span_id, 16):
        return None
    sampled = _b3_sampled(parts[2]) if len(parts) > 2 else None
    if len(parts) > 2 and sampled is None:
        return None
    return Context(trace_id, span_id, sampled, B3_SINGLE)


def parse_b3_multi(
    trace_id: bytes | None, span_id: bytes | None, sampled: bytes | None, flags: bytes | None
) -> Context | None:
    decision = True if flags is not None and flags.strip() == b"1" else None
    if decision is None and sampled is not None:
        decision = _b3_sampled(sampled)
    if trace_id is None or span_id is None:
        return Context(None, None, decision, B3_MULTI) if decision is not None else None
    tid = _b3_trace_id(trace_id)
    sid = span_id.strip().lower()
    if tid is None or not _is_hex(sid, 16):
        return None
    return Context(tid, sid, decision, B3_MULTI)


def extract(headers: Sequence[tuple[bytes, bytes]]) -> Context | None:
    """The request's trace context: traceparent first, then b3, then x-b3-*."""
    traceparent = b3 = tid = sid = sampled = flags = None
    first = _FIRST
    for name, value in headers:
        if not name or name[0] not in first:
            continue  # most names: one byte test, no lower()
        n = name.lower()
        if n not in TRACE_HEADERS:
            continue
        if n == b"traceparent":
            traceparent = traceparent or value
        elif n == b"b3":
            b3 = b3 or value
        elif n == b"x-b3-traceid":
            tid = value
        elif n == b"x-b3-spanid":
            sid = value
        elif n == b"x-b3-sampled":
            sampled = value
        elif n == b"x-b3-flags":
            flags = value
    if traceparent is not None and (ctx := parse_traceparent(traceparent)) is not None:
        return ctx
    if b3 is not None and (ctx := parse_b3_single(b3)) is not None:
        return ctx
    if tid is not None or sampled is not None or flags is not None:
        return parse_b3_multi(tid, sid, sampled, flags)
    return None


def inject(
    trace_id: bytes, span_id: bytes, parent_id: bytes | None, sampled: bool, style: int
) -> tuple[tuple[bytes, bytes], ...]:
    """Headers for the next hop (each replaces any field of its name)."""
    flag = b"1" if sampled else b"0"
    out = [(b"traceparent", b"00-%s-%s-0%s" % (trace_id, span_id, flag))]
    if style == B3_SINGLE:
        single = b"%s-%s-%s" % (trace_id, span_id, flag)
        out.append((b"b3", single + b"-" + parent_id if parent_id else single))
    else:
        out += [(b"x-b3-traceid", trace_id), (b"x-b3-spanid", span_id), (b"x-b3-sampled", flag)]
        if parent_id:
            out.append((b"x-b3-parentspanid", parent_id))
    return tuple(out)


# What the next hop must not receive as well as our headers (stale ids of another style).
REPLACED: Final = frozenset({b"x-b3-parentspanid", b"x-b3-flags"})


class Span:
    """One hop of one request, while it is in flight."""

    __slots__ = ("block", "parent_id", "sampled", "span_id", "start_us", "style", "trace_id")

    def __init__(
        self,
        trace_id: bytes,
        span_id: bytes,
        parent_id: bytes | None,
        sampled: bool,
        start_us: int,
        style: int,
        block: bytes,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.sampled = sampled
        self.start_us = start_us
        self.style = style
        # A trace started here: the header lines for the next hop, to append to a head
        # that carries no trace header (no field to replace: the fast path). b"" else.
        self.block = block

    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The next hop's headers as (name, value) pairs, each replacing its field."""
        return inject(self.trace_id, self.span_id, self.parent_id, self.sampled, self.style)


class _Unsampled(Span):
    """A trace that starts here and is not sampled: only the decision goes on (B3 can
    say "do not sample" without ids; W3C cannot, so no traceparent is sent)."""

    __slots__ = ()

    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        return ((b"b3", b"0"), (b"x-b3-sampled", b"0"))


UNSAMPLED: Final = _Unsampled(b"", b"", None, False, 0, NONE, b"b3: 0\r\nx-b3-sampled: 0\r\n")


class Tracer:
    """A listener's tracing: its sampling rate, who we are, where spans go."""

    __slots__ = ("_static", "kind", "local", "rate", "rng", "sink", "tags")

    def __init__(
        self,
        rate: float,
        kind: str,
        local: str,
        tags: tuple[tuple[str, str], ...],
        sink: SpanSink,
        rng: random.Random | None = None,
    ) -> None:
        self.rate = rate  # 0..1
        self.kind = kind
        self.local = local  # localEndpoint.serviceName
        self.tags = tags  # static tags: workload, namespace...
        self.sink = sink
        self.rng = rng or random.Random()
        self._static = "".join(f"{_dumps(k)}:{_dumps(v)}," for k, v in tags)

    def static_json(self) -> str:
        return self._static

    def start(self, headers: Sequence[tuple[bytes, bytes]]) -> Span | None:
        """The hop's span; UNSAMPLED (a trace starts here, not recorded: the next hops
        are told so); None when the caller decided "not sampled" (headers go on as they
        came: nothing is recorded anywhere, so ids need not change)."""
        ctx = extract(headers)
        if ctx is None:
            if self.rate < 1.0 and self.rng.random() >= self.rate:
                return UNSAMPLED
            getrandbits = self.rng.getrandbits
            span_id = b"%016x" % getrandbits(64)
            trace_id = b"%032x" % getrandbits(128)
            block = (
                b"traceparent: 00-%s-%s-01\r\nx-b3-traceid: %s\r\nx-b3-spanid: %s\r\n"
                b"x-b3-sampled: 1\r\n" % (trace_id, span_id, trace_id, span_id)
            )
            return Span(trace_id, span_id, None, True, int(time.time() * 1e6), NONE, block)
        sampled = ctx.sampled
        if sampled is False:
            return None
        if sampled is None:  # ids without a decision: ours, told to the next hops
            sampled = self.rate >= 1.0 or self.rng.random() < self.rate
        getrandbits = self.rng.getrandbits
        span_id = b"%016x" % getrandbits(64)
        now = int(time.time() * 1e6)
        if ctx.trace_id is None:  # a bare "sample this" (b3: 1 or d): a trace starts
            trace_id = b"%032x" % getrandbits(128)
            return Span(trace_id, span_id, None, sampled, now, ctx.style, b"")
        return Span(ctx.trace_id, span_id, ctx.span_id, sampled, now, ctx.style, b"")

    def finish(
        self,
        span: Span,
        duration: float,
        method: bytes,
        path: bytes,
        authority: bytes,
        status: int,
        flags: str,
        route: str,
        peer_ip: str,
        peer_identity: str | None,
        cluster: str,
        request_id: bytes | None = None,
    ) -> None:
        """The exchange ended: hand the span to the sink (a tuple; JSON comes later)."""
        if not span.sampled:
            return
        self.sink.add(
            (
                self,
                span.trace_id,
                span.span_id,
                span.parent_id,
                span.start_us,
                max(1, int(duration * 1e6)),
                method,
                path,
                authority,
                status,
                flags,
                route,
                peer_ip,
                peer_identity,
                cluster,
                request_id,
            )
        )


def zipkin_span(record: tuple[object, ...]) -> dict[str, object]:
    """A queued record as a Zipkin v2 span (JSON-ready)."""
    return cast(dict[str, object], json.loads(zipkin_json(record)))


_dumps = json.JSONEncoder(ensure_ascii=True).encode  # escapes what the request carried


def zipkin_json(record: tuple[object, ...]) -> str:
    """A queued record as one Zipkin v2 span in JSON, formatted directly (a dict and
    json.dumps cost twice as much, and this runs on the sidecar's only core too)."""
    (
        tracer,
        trace_id,
        span_id,
        parent_id,
        start_us,
        duration_us,
        method,
        path,
        authority,
        status,
        flags,
        route,
        peer_ip,
        peer_identity,
        cluster,
        request_id,
    ) = record
    assert isinstance(tracer, Tracer)
    assert isinstance(trace_id, bytes) and isinstance(span_id, bytes)
    assert isinstance(method, bytes) and isinstance(path, bytes) and isinstance(authority, bytes)
    path_text = path.decode("latin-1")
    bare = path_text.split("?", 1)[0]
    m = method.decode("latin-1")
    tags = tracer.static_json() + (
        f'"http.method":{_dumps(m)},"http.path":{_dumps(bare)},'
        f'"http.url":{_dumps(path_text[:256])},"http.host":{_dumps(authority.decode("latin-1"))},'
        f'"http.status_code":"{status}","component":"gossamer"'
    )
    if route:
        tags += f',"gossamer.route":{_dumps(route)}'
    if flags:
        tags += f',"response_flags":{_dumps(flags)}'
    if cluster:
        tags += f',"upstream_cluster":{_dumps(cluster)}'
    if peer_identity:
        tags += f',"peer.identity":{_dumps(peer_identity)}'
    if isinstance(request_id, bytes):  # as Envoy tags it
        tags += f',"guid:x-request-id":{_dumps(request_id.decode("latin-1"))}'
    if not isinstance(status, int) or status == 0 or status >= 500 or flags:
        tags += f',"error":{_dumps(str(flags or status))}'
    out = (
        f'{{"traceId":"{trace_id.decode()}","id":"{span_id.decode()}",'
        f'"name":{_dumps(f"{m} {bare}".lower()[:128])},"kind":"{tracer.kind}",'
        f'"timestamp":{start_us},"duration":{duration_us},'
        f'"localEndpoint":{{"serviceName":{_dumps(tracer.local)}}},"tags":{{{tags}}}'
    )
    if isinstance(parent_id, bytes):
        out += f',"parentId":"{parent_id.decode()}"'
    remote = []
    if peer_ip:
        remote.append(f'"{"ipv6" if ":" in str(peer_ip) else "ipv4"}":{_dumps(str(peer_ip))}')
    if tracer.kind == CLIENT and cluster:
        remote.append(f'"serviceName":{_dumps(_service_of(str(cluster)))}')
    if remote:
        out += f',"remoteEndpoint":{{{",".join(remote)}}}'
    return out + "}"


def otlp_json(records: Sequence[tuple[object, ...]]) -> str:
    """Records as one OTLP/HTTP JSON ExportTraceServiceRequest: a resource per local
    service (`service.name`), each hop's span with the same attributes as in Zipkin."""
    by_service: dict[str, list[dict[str, object]]] = {}
    for record in records:
        z = json.loads(zipkin_json(record))  # one source of truth for the fields
        attrs = [
            {"key": k, "value": {"stringValue": v}} for k, v in z["tags"].items() if k != "error"
        ]
        remote = z.get("remoteEndpoint") or {}
        if "ipv4" in remote or "ipv6" in remote:
            attrs.append({"key": "net.peer.ip", "value": {"stringValue": remote.get("ipv4", "")}})
        start = z["timestamp"] * 1000
        span: dict[str, object] = {
            "traceId": z["traceId"],
            "spanId": z["id"],
            "name": z["name"],
            "kind": 2 if z["kind"] == SERVER else 3,  # SPAN_KIND_SERVER, SPAN_KIND_CLIENT
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + z["duration"] * 1000),
            "attributes": attrs,
            # STATUS_CODE_ERROR for what Zipkin tags `error`; unset otherwise.
            "status": {"code": 2, "message": z["tags"]["error"]} if "error" in z["tags"] else {},
        }
        if "parentId" in z:
            span["parentSpanId"] = z["parentId"]
        service = z["localEndpoint"]["serviceName"]
        by_service.setdefault(service, []).append(span)
    resources = [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
            },
            "scopeSpans": [{"scope": {"name": "gossamer"}, "spans": spans}],
        }
        for service, spans in by_service.items()
    ]
    return json.dumps({"resourceSpans": resources}, separators=(",", ":"))


def _service_of(cluster: str) -> str:
    """`benigno.default:5000` (translate/routing.cluster_name) → `benigno`."""
    return cluster.split(":", 1)[0].split(".", 1)[0]
