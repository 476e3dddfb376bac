"""The built-in trace collector: Zipkin v2 spans in, recent traces in bounded memory.

Sidecars export here when the Mesh's tracing backend is `builtin` (the default), so
traces work without any other infrastructure. Only the most recent traces are kept
(`max_traces`, oldest dropped first) and each trace holds at most `max_spans`; it is a
debugging aid, not storage (use an external Zipkin/Jaeger for that).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

MAX_TRACES = 1000
MAX_SPANS = 256
MAX_BATCH = 5000

_HEX16 = re.compile(r"[0-9a-f]{16}")
_TRACE_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")
KINDS = frozenset({"CLIENT", "SERVER", "PRODUCER", "CONSUMER"})


class SpanError(ValueError):
    """A span the collector refuses; the message names the span and the field."""


def _norm_trace_id(value: str) -> str:
    # A 64-bit id and its zero-padded 128-bit form are the same trace.
    return value.rjust(32, "0")


def validate_span(i: int, span: Any) -> dict[str, Any]:
    """Check one Zipkin v2 span (the fields we read); returns it, trace id normalised."""
    where = f"spans[{i}]"
    if not isinstance(span, dict):
        raise SpanError(f"{where}: must be an object")
    trace_id = span.get("traceId")
    if not isinstance(trace_id, str) or not _TRACE_ID.fullmatch(trace_id.lower()):
        raise SpanError(f"{where}.traceId: must be 16 or 32 lower-hex digits, got {trace_id!r}")
    span_id = span.get("id")
    if not isinstance(span_id, str) or not _HEX16.fullmatch(span_id.lower()):
        raise SpanError(f"{where}.id: must be 16 lower-hex digits, got {span_id!r}")
    parent = span.get("parentId")
    if parent is not None and (not isinstance(parent, str) or not _HEX16.fullmatch(parent)):
        raise SpanError(f"{where}.parentId: must be 16 lower-hex digits, got {parent!r}")
    kind = span.get("kind")
    if kind is not None and kind not in KINDS:
        raise SpanError(f"{where}.kind: must be one of {', '.join(sorted(KINDS))}, got {kind!r}")
    for name in ("timestamp", "duration"):
        value = span.get(name)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise SpanError(f"{where}.{name}: must be a non-negative integer (µs), got {value!r}")
    for name in ("localEndpoint", "remoteEndpoint", "tags"):
        value = span.get(name)
        if value is not None and not isinstance(value, dict):
            raise SpanError(f"{where}.{name}: must be an object")
    tags = span.get("tags") or {}
    if not all(isinstance(v, str) for v in tags.values()):
        raise SpanError(f"{where}.tags: values must be strings")
    out = dict(span)
    out["traceId"] = _norm_trace_id(trace_id.lower())
    out["id"] = span_id.lower()
    return out


@dataclass
class Trace:
    trace_id: str
    spans: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        spans = self.spans
        ids = {s["id"] for s in spans}
        roots = [s for s in spans if s.get("parentId") not in ids] or spans
        root = min(roots, key=lambda s: s.get("timestamp") or 0)
        start = min((s.get("timestamp") or 0) for s in spans)
        end = max((s.get("timestamp") or 0) + (s.get("duration") or 0) for s in spans)
        services = list(
            dict.fromkeys(
                name
                for s in sorted(spans, key=lambda s: s.get("timestamp") or 0)
                if (name := (s.get("localEndpoint") or {}).get("serviceName"))
            )
        )
        return {
            "traceId": self.trace_id,
            "rootService": (root.get("localEndpoint") or {}).get("serviceName"),
            "rootName": root.get("name"),
            "startUs": start,
            "durationUs": end - start,
            "spans": len(spans),
            "services": services,
            "error": any("error" in (s.get("tags") or {}) for s in spans),
        }


class TraceStore:
    def __init__(self, max_traces: int = MAX_TRACES, max_spans: int = MAX_SPANS) -> None:
        self.max_traces = max_traces
        self.max_spans = max_spans
        self.traces: OrderedDict[str, Trace] = OrderedDict()
        self.received = 0
        self.dropped = 0  # spans past a trace's bound

    def add(self, payload: Any) -> int:
        """A Zipkin v2 JSON array: all its spans are stored, or none (SpanError)."""
        if not isinstance(payload, list):
            raise SpanError("the body must be a JSON array of Zipkin v2 spans")
        if len(payload) > MAX_BATCH:
            raise SpanError(f"at most {MAX_BATCH} spans per request, got {len(payload)}")
        spans = [validate_span(i, s) for i, s in enumerate(payload)]
        for span in spans:
            trace = self.traces.get(span["traceId"])
            if trace is None:
                trace = self.traces[span["traceId"]] = Trace(span["traceId"])
                while len(self.traces) > self.max_traces:
                    self.traces.popitem(last=False)
            if len(trace.spans) >= self.max_spans:
                self.dropped += 1
                continue
            # A span sent twice (a retried export) replaces its first copy.
            trace.spans = [s for s in trace.spans if s["id"] != span["id"] or _kind(s, span)]
            trace.spans.append(span)
        self.received += len(spans)
        return len(spans)

    def list(self, service: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        items = []
        for trace in self.traces.values():
            summary = trace.summary()
            if service is not None and service not in summary["services"]:
                continue
            items.append(summary)
        items.sort(key=lambda s: s["startUs"], reverse=True)
        return items[:limit]

    def get(self, trace_id: str) -> dict[str, Any] | None:
        trace = self.traces.get(_norm_trace_id(trace_id.lower()))
        if trace is None:
            return None
        spans = sorted(trace.spans, key=lambda s: s.get("timestamp") or 0)
        return {"traceId": trace.trace_id, "spans": spans}


def _kind(a: dict[str, Any], b: dict[str, Any]) -> bool:
    # Zipkin's shared spans: a client and a server half may carry the same id.
    return bool(a.get("kind") != b.get("kind"))
