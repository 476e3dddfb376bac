"""Trace context parsing and writing (W3C, B3 single and multi), sampling, span records."""

from __future__ import annotations

import random

import pytest

from gossamer.proxy.filters.trace import (
    B3_MULTI,
    B3_SINGLE,
    CLIENT,
    NONE,
    SERVER,
    W3C,
    Tracer,
    extract,
    inject,
    parse_b3_single,
    parse_traceparent,
    zipkin_span,
)

TID = b"4bf92f3577b34da6a3ce929d0e0e4736"
SID = b"00f067aa0ba902b7"


class Sink:
    def __init__(self) -> None:
        self.spans: list[tuple[object, ...]] = []

    def add(self, span: tuple[object, ...]) -> None:
        self.spans.append(span)


def test_traceparent() -> None:
    ctx = parse_traceparent(b"00-" + TID + b"-" + SID + b"-01")
    assert ctx is not None
    assert (ctx.trace_id, ctx.span_id, ctx.sampled, ctx.style) == (TID, SID, True, W3C)
    ctx = parse_traceparent(b"00-" + TID.upper() + b"-" + SID + b"-00")
    assert ctx is not None and ctx.trace_id == TID and ctx.sampled is False
    # A future version may carry more fields; version 00 may not.
    assert parse_traceparent(b"01-" + TID + b"-" + SID + b"-01-xyz") is not None


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"00-" + TID + b"-" + SID,  # no flags
        b"ff-" + TID + b"-" + SID + b"-01",  # forbidden version
        b"00-" + b"0" * 32 + b"-" + SID + b"-01",  # zero trace id
        b"00-" + TID + b"-" + b"0" * 16 + b"-01",  # zero span id
        b"00-" + TID[:-1] + b"-" + SID + b"-01",  # short
        b"00-" + TID[:-1] + b"g-" + SID + b"-01",  # not hex
        b"00-" + TID + b"-" + SID + b"-01-extra",  # version 00 has four fields
    ],
)
def test_bad_traceparent_is_ignored(value: bytes) -> None:
    assert parse_traceparent(value) is None


def test_b3_single() -> None:
    ctx = parse_b3_single(TID + b"-" + SID + b"-1-" + b"a" * 16)
    assert ctx is not None and (ctx.trace_id, ctx.span_id, ctx.sampled) == (TID, SID, True)
    ctx = parse_b3_single(b"a3ce929d0e0e4736-" + SID)  # 64-bit id, no decision
    assert ctx is not None and ctx.trace_id == b"0" * 16 + b"a3ce929d0e0e4736"
    assert ctx.sampled is None
    ctx = parse_b3_single(b"0")  # a bare "do not sample"
    assert ctx is not None and ctx.trace_id is None and ctx.sampled is False
    ctx = parse_b3_single(TID + b"-" + SID + b"-d")  # debug means sampled
    assert ctx is not None and ctx.sampled is True
    assert parse_b3_single(TID + b"-" + SID + b"-x") is None
    assert parse_b3_single(TID + b"-zz") is None


def test_extract_prefers_w3c_then_b3_single_then_multi() -> None:
    w3c = (b"traceparent", b"00-" + TID + b"-" + SID + b"-01")
    single = (b"B3", b"a" * 32 + b"-" + b"b" * 16 + b"-0")
    multi = [(b"X-B3-TraceId", b"c" * 32), (b"X-B3-SpanId", b"d" * 16), (b"X-B3-Sampled", b"1")]
    ctx = extract([*multi, single, w3c])
    assert ctx is not None and ctx.style == W3C
    ctx = extract([*multi, single])
    assert ctx is not None and ctx.style == B3_SINGLE and ctx.sampled is False
    ctx = extract(multi)
    assert ctx is not None and ctx.style == B3_MULTI and ctx.trace_id == b"c" * 32
    ctx = extract([(b"x-b3-flags", b"1")])  # debug without ids: a decision only
    assert ctx is not None and ctx.trace_id is None and ctx.sampled is True
    # A malformed traceparent falls back to B3.
    ctx = extract([(b"traceparent", b"garbage"), single])
    assert ctx is not None and ctx.style == B3_SINGLE
    assert extract([(b"host", b"x")]) is None


def test_inject_writes_w3c_and_the_b3_style_received() -> None:
    multi = dict(inject(TID, SID, b"e" * 16, True, NONE))
    assert multi[b"traceparent"] == b"00-" + TID + b"-" + SID + b"-01"
    assert multi[b"x-b3-traceid"] == TID and multi[b"x-b3-spanid"] == SID
    assert multi[b"x-b3-parentspanid"] == b"e" * 16 and multi[b"x-b3-sampled"] == b"1"
    single = dict(inject(TID, SID, None, False, B3_SINGLE))
    assert single[b"b3"] == TID + b"-" + SID + b"-0"
    assert single[b"traceparent"].endswith(b"-00") and b"x-b3-traceid" not in single


def test_tracer_continues_or_starts_and_samples() -> None:
    sink = Sink()
    tracer = Tracer(0.0, SERVER, "benigno", (("gossamer.workload", "benigno-v1"),), sink)
    span = tracer.start([(b"traceparent", b"00-" + TID + b"-" + SID + b"-01")])
    assert span.trace_id == TID and span.parent_id == SID and span.sampled
    assert span.span_id != SID and len(span.span_id) == 16
    fresh = tracer.start([])  # rate 0: a new trace, not sampled
    assert len(fresh.trace_id) == 32 and fresh.parent_id is None and not fresh.sampled
    tracer.finish(fresh, 0.001, b"GET", b"/", b"h", 200, "", "r", "", None, "c")
    assert sink.spans == []
    half = Tracer(0.5, CLIENT, "magnanimo", (), sink, random.Random(1))
    sampled = sum(half.start([]).sampled for _ in range(2000))
    assert 850 < sampled < 1150


def test_zipkin_span_fields() -> None:
    sink = Sink()
    tracer = Tracer(1.0, CLIENT, "magnanimo", (("gossamer.workload", "magnanimo"),), sink)
    span = tracer.start([(b"b3", TID + b"-" + SID + b"-1")])
    tracer.finish(
        span,
        0.0123,
        b"GET",
        b"/hello?name=x",
        b"benigno:5000",
        503,
        "UH",
        "benigno-route",
        "127.0.0.1",
        "spiffe://gossamer.local/ns/default/sa/x",
        "benigno.default:5000",
    )
    (record,) = sink.spans
    z = zipkin_span(record)
    assert z["traceId"] == TID.decode() and z["parentId"] == SID.decode()
    assert z["id"] == span.span_id.decode() and z["kind"] == "CLIENT"
    assert z["name"] == "get /hello" and z["duration"] == 12300
    assert z["localEndpoint"] == {"serviceName": "magnanimo"}
    assert z["remoteEndpoint"] == {"ipv4": "127.0.0.1", "serviceName": "benigno"}
    tags = z["tags"]
    assert isinstance(tags, dict)
    assert tags["http.status_code"] == "503" and tags["response_flags"] == "UH"
    assert tags["error"] == "UH" and tags["http.url"] == "/hello?name=x"
    assert tags["peer.identity"].startswith("spiffe://")
    assert tags["gossamer.workload"] == "magnanimo" and tags["gossamer.route"] == "benigno-route"
