"""Aggregation of scraped sidecar metrics: deltas, sides, windows, percentiles, memory."""

from __future__ import annotations

from gossamer.controlplane.metrics import prom
from gossamer.controlplane.metrics.aggregate import HISTORY, STEP, Aggregator, quantile
from gossamer.proxy.filters.stats import Identity, Labels, Stats, prometheus

PEER = "spiffe://gossamer.local/ns/default/sa/magnanimo"


def benigno(version: str) -> tuple[Stats, Labels]:
    """An inbound benigno sidecar of one version (the callee's view)."""
    labels = Labels(
        Identity("default", "benigno", f"benigno-{version}", version),
        {"inbound:15006": "inbound"},
        {"local:5000": ("default", "benigno")},
    )
    return Stats(), labels


def caller() -> tuple[Stats, Labels]:
    labels = Labels(
        Identity("default", "magnanimo", "magnanimo-1", "unknown"),
        {"outbound:http": "outbound"},
        {"benigno-v1": ("default", "benigno-v1"), "benigno-v2": ("default", "benigno-v2")},
    )
    return Stats(), labels


def serve(stats: Stats, n: int, status: int = 200, seconds: float = 0.004) -> None:
    rs = stats.listener("inbound:15006").for_series(("local:5000", "inbound", PEER, "", ""))
    for _ in range(n):
        rs.record(status, seconds)


def scrape(agg: Aggregator, node: str, pair: tuple[Stats, Labels], now: float) -> None:
    stats, labels = pair
    agg.ingest(node, prometheus(stats.snapshot(), labels=labels), now)


def test_prom_reader_reads_chosen_families_and_unescapes() -> None:
    text = '# HELP x\nx{a="1",b="q\\"uote"} 3\ny{a="2"} 4\nx 5\n'
    assert list(prom.samples(text, ("x",))) == [("x", 'a="1",b="q\\"uote"', 3.0)]
    assert prom.labels('a="1",b="q\\"uote"') == {"a": "1", "b": 'q"uote'}


def test_service_versions_split_success_and_latency() -> None:
    agg = Aggregator(started=1000.0)
    v1, v2 = benigno("v1"), benigno("v2")
    for node, pair in (("b1", v1), ("b2", v2)):
        scrape(agg, node, pair, 1000.0)  # baselines: nothing counted yet
    serve(v1[0], 90)
    serve(v2[0], 7)
    serve(v2[0], 3, status=503, seconds=0.2)
    scrape(agg, "b1", v1, 1031.0)
    scrape(agg, "b2", v2, 1031.0)
    [svc] = agg.services(1031.0, "1m")
    assert svc["name"] == "benigno" and svc["requests"] == 100
    assert svc["successRate"] == 0.97
    assert svc["rps"] == round(100 / 31.0, 3)  # since the aggregator started
    assert svc["versions"]["v1"] == {"requests": 90, "rps": round(90 / 31, 3), "successRate": 1.0}
    assert svc["versions"]["v2"]["successRate"] == 0.7
    lat = svc["latencyMs"]
    assert lat is not None and 2.5 <= lat["p50"] <= 5.0 and 100 <= lat["p99"] <= 250
    workloads = {w["name"]: w for w in agg.workloads(1031.0, "1m")}
    assert workloads["benigno-v2"]["version"] == "v2"
    assert workloads["benigno-v2"]["service"] == "benigno"
    # 10 minutes later with no traffic the numbers are gone, and so is the entity.
    agg.prune(1031.0 + HISTORY * STEP + STEP)
    assert agg.services(1031.0 + HISTORY * STEP + STEP, "10m") == []


def test_counter_reset_and_forgotten_proxy() -> None:
    agg = Aggregator(started=0.0)
    pair = benigno("v1")
    scrape(agg, "b1", pair, 100.0)
    serve(pair[0], 10)
    scrape(agg, "b1", pair, 102.0)
    fresh = (Stats(), pair[1])  # the sidecar restarted: its counters start again
    serve(fresh[0], 3)
    scrape(agg, "b1", fresh, 104.0)
    assert agg.services(104.0, "1m")[0]["requests"] == 13
    agg.prune(104.0, live=[])
    assert "b1" not in agg.proxies


def test_edges_from_the_callers_outbound_side() -> None:
    agg = Aggregator(started=0.0)
    pair = caller()
    scrape(agg, "m", pair, 100.0)
    ls = pair[0].listener("outbound:http")
    ls.for_series(("benigno-v1", "r", "", "benigno-v1", "v1")).record(200, 0.001)
    ls.for_series(("benigno-v2", "r", "", "benigno-v2", "v2")).record(200, 0.001)
    scrape(agg, "m", pair, 102.0)
    edges = agg.edges(102.0, "1m")
    assert [(e["source"]["name"], e["destination"]["name"]) for e in edges] == [
        ("magnanimo", "benigno-v1"),
        ("magnanimo", "benigno-v2"),
    ]
    assert agg.edges(102.0, "1m", name="magnanimo>benigno-v2")[0]["requests"] == 1
    # No inbound data for benigno-v1: its service numbers come from the callers.
    assert agg.services(102.0, "1m", name="benigno-v1")[0]["requests"] == 1
    series = agg.series("edge", "magnanimo>benigno-v1", 102.0, "1m")
    assert series is not None and series["step"] == 10 and len(series["points"]) == 6
    assert sum(p["rps"] for p in series["points"]) > 0
    assert agg.series("service", "nothing", 102.0, "1m") is None


def test_quantile_interpolates_like_prometheus() -> None:
    hist = [0.0] * 15
    hist[4] = 10  # (0.005, 0.01]
    assert quantile(0.5, hist) == 0.0075
    assert quantile(0.5, [0.0] * 15) is None


def test_a_workload_is_listed_once_from_its_own_sidecar() -> None:
    agg = Aggregator(started=0.0)
    callee, call = benigno("v1"), caller()
    scrape(agg, "b1", callee, 100.0)
    scrape(agg, "m", call, 100.0)
    serve(callee[0], 5)
    ls = call[0].listener("outbound:http")
    ls.for_series(("benigno-v1", "r", "", "benigno-v1", "v1")).record(200, 0.001)
    scrape(agg, "b1", callee, 102.0)
    scrape(agg, "m", call, 102.0)
    workloads = agg.workloads(102.0, "1m")
    assert [(w["name"], w["service"], w["requests"]) for w in workloads] == [
        ("benigno-v1", "benigno", 5)
    ]
    series = agg.series("workload", "benigno-v1", 102.0, "10s")
    assert series is not None and sum(p["rps"] for p in series["points"]) > 0
