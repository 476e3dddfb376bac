"""The built-in collector: span validation, grouping, summaries, bounds."""

from __future__ import annotations

from typing import Any

import pytest

from gossamer.controlplane.collector import SpanError, TraceStore


def span(trace: str, sid: str, parent: str | None, service: str, ts: int, **kw: Any) -> Any:
    out = {
        "traceId": trace,
        "id": sid,
        "name": f"get /{service}",
        "kind": "SERVER",
        "timestamp": ts,
        "duration": 100,
        "localEndpoint": {"serviceName": service},
        **kw,
    }
    if parent:
        out["parentId"] = parent
    return out


T1 = "a" * 32


def test_groups_summarises_and_fetches() -> None:
    store = TraceStore()
    store.add(
        [
            span(T1, "1" * 16, None, "ingress", 1000, duration=900),
            span(T1, "2" * 16, "1" * 16, "magnanimo", 1100),
        ]
    )
    store.add([span(T1, "3" * 16, "2" * 16, "benigno", 1200, tags={"error": "500"})])
    store.add([span("b" * 16, "4" * 16, None, "other", 5000)])  # 64-bit id: padded
    items = store.list()
    assert [i["traceId"] for i in items] == ["0" * 16 + "b" * 16, T1]  # newest first
    first = items[1]
    assert first["rootService"] == "ingress" and first["rootName"] == "get /ingress"
    assert first["spans"] == 3 and first["services"] == ["ingress", "magnanimo", "benigno"]
    assert first["startUs"] == 1000 and first["durationUs"] == 900 and first["error"] is True
    assert [i["traceId"] for i in store.list(service="benigno")] == [T1]
    assert len(store.list(limit=1)) == 1
    trace = store.get(T1)
    assert trace is not None and [s["id"] for s in trace["spans"]] == ["1" * 16, "2" * 16, "3" * 16]
    assert store.get("b" * 16) is not None and store.get("c" * 32) is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({}, "spans[0].traceId"),
        ({"traceId": "xyz"}, "spans[0].traceId"),
        ({"id": "1"}, "spans[0].id: must be 16"),
        ({"parentId": 5}, "spans[0].parentId"),
        ({"kind": "SIDEWAYS"}, "spans[0].kind"),
        ({"timestamp": -1}, "spans[0].timestamp"),
        ({"tags": {"a": 1}}, "spans[0].tags"),
    ],
)
def test_bad_spans_refused_whole(bad: dict[str, Any], message: str) -> None:
    store = TraceStore()
    good = span(T1, "1" * 16, None, "a", 1)
    broken = {**span(T1, "2" * 16, None, "a", 1), **bad}
    if bad == {}:
        broken.pop("traceId")
    with pytest.raises(SpanError, match=message.replace("[", r"\[").replace("]", r"\]")):
        store.add([broken, good])
    assert store.list() == []  # nothing of the batch was kept
    with pytest.raises(SpanError, match="JSON array"):
        store.add({"spans": []})


def test_bounded() -> None:
    store = TraceStore(max_traces=3, max_spans=2)
    for i in range(5):
        store.add([span(f"{i:032x}", f"{j + 1:016x}", None, "s", i) for j in range(3)])
    assert len(store.traces) == 3 and store.get(f"{0:032x}") is None
    trace = store.get(f"{4:032x}")
    assert trace is not None and len(trace["spans"]) == 2
    assert store.dropped == 5
