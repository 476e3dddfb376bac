"""`gossamer top`'s aggregation and `gossamer tap`'s line."""

from __future__ import annotations

from gossamer.cli.tap import Top, tap_line


def rec(path: str, status: int = 200, ms: float = 1.0) -> dict[str, object]:
    return {"type": "request", "direction": "inbound", "method": "GET", "path": path,
            "status": status, "latencyMs": ms, "time": 1.0}  # fmt: skip


def test_busiest_first_with_success_and_latency() -> None:
    top = Top()
    for i in range(10):
        top.add(rec("/busy?x=1", 200 if i else 503, ms=float(i + 1)))
    top.add(rec("/rare"))
    headers, rows = top.table(5)
    assert headers[:5] == ["PATH", "METHOD", "DIR", "COUNT", "SUCCESS"]
    assert [r[0] for r in rows] == ["/busy", "/rare"]  # the query is not part of the path
    assert rows[0][3:] == ["10", "90.0%", "5.0ms", "10.0ms", "10.0ms"]
    body = top.to_json(1)
    assert body["total"] == 11 and len(body["items"]) == 1
    assert body["items"][0]["successRate"] == 0.9


def test_tap_line() -> None:
    r = {
        **rec("/hello"),
        **{"authority": "benigno:5000", "flags": "UH", "status": 503},
        "source": {"identity": "spiffe://td/ns/default/sa/a", "workload": None},
        "destination": {"identity": "spiffe://td/ns/default/sa/b", "workload": "b-v1"},
    }
    line = tap_line(r)
    assert " in  GET benigno:5000/hello 503 UH 1.0ms " in line
    assert line.endswith("spiffe://td/ns/default/sa/a -> spiffe://td/ns/default/sa/b (b-v1)")
