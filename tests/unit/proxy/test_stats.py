"""Stats: recording, merging worker snapshots, golden labels and the Prometheus rendering."""

from __future__ import annotations

from gossamer.proxy.filters.stats import (
    MAX_SERIES,
    Identity,
    Labels,
    Stats,
    merge,
    prometheus,
    summary,
)

OUT = "outbound:http"
PEER = "spiffe://gossamer.local/ns/shop/sa/magnanimo"


def test_record_merge_and_render() -> None:
    a, b = Stats(), Stats()
    for stats in (a, b):
        ls = stats.listener(OUT)
        ls.cx_total += 2
        ls.for_cluster("benigno").record(200, 0.003)
        ls.for_cluster("benigno").record(503, 0.0001)
        ls.flag("UF")
        stats.cluster("benigno").connect_fail += 1
    b.listener(OUT).for_cluster("benigno").record(404, 2.0)
    merged = merge([a.snapshot(), b.snapshot()])
    assert summary(merged)["listeners"][OUT]["requests"]["benigno"]["total"] == 5
    text = prometheus(merged, {"gossamer_ready": 1})
    assert 'listener="outbound:http",cluster="benigno",direction="unknown"' in text
    assert 'route="unknown",code="200",class="2xx"} 2' in text
    assert 'code="503",class="5xx"} 2' in text
    assert 'code="404",class="4xx"} 1' in text
    assert 'gossamer_response_flags_total{listener="outbound:http",flag="UF"} 2' in text
    assert 'gossamer_upstream_connect_failures_total{cluster="benigno"} 2' in text
    assert 'route="unknown",le="+Inf"} 5' in text
    assert "gossamer_ready 1" in text


def test_golden_labels_outbound_and_inbound() -> None:
    stats = Stats()
    stats.listener(OUT).for_series(
        ("benigno-v2.default:5000", "r0", "", "benigno-v2", "v2")
    ).record(200, 0.01)
    stats.listener("inbound:15006").for_series(("local:5000", "inbound", PEER, "", "")).record(
        500, 0.02
    )
    conn = stats.listener("outbound:db").for_connection(("db", "", "", "db-1", "v1"))
    conn.opened += 1
    conn.rx += 10
    labels = Labels(
        Identity("shop", "magnanimo", "magnanimo-1", "v1"),
        {OUT: "outbound", "inbound:15006": "inbound", "outbound:db": "outbound"},
        {"benigno-v2.default:5000": ("default", "benigno"), "local:5000": ("shop", "magnanimo")},
    )
    text = prometheus(stats.snapshot(), labels=labels)
    outbound = (
        'direction="outbound",source_namespace="shop",source_service="magnanimo",'
        'source_workload="magnanimo-1",source_version="v1",destination_namespace="default",'
        'destination_service="benigno",destination_workload="benigno-v2",'
        'destination_version="v2",route="r0",code="200",class="2xx"} 1'
    )
    assert outbound in text
    inbound = (
        'direction="inbound",source_namespace="shop",source_service="magnanimo",'
        'source_workload="unknown",source_version="unknown",destination_namespace="shop",'
        'destination_service="magnanimo",destination_workload="magnanimo-1",'
        'destination_version="v1",route="inbound",code="500",class="5xx"} 1'
    )
    assert inbound in text
    assert 'gossamer_tcp_connections_opened_total{listener="outbound:db"' in text
    assert 'destination_workload="db-1",destination_version="v1",route="unknown"} 10' in text


def test_label_cardinality_is_bounded() -> None:
    stats = Stats()
    ls = stats.listener("l")
    for i in range(MAX_SERIES + 50):
        ls.for_cluster(f"c{i}").record(200, 0.001)
    assert len(ls.requests) == MAX_SERIES + 1  # the rest is folded into "other"
    assert sum(ls.requests[("other",) * 5].classes) == 50


def test_idle_series_expire() -> None:
    ls = Stats().listener("l")
    busy, idle = ls.for_cluster("busy"), ls.for_cluster("idle")
    busy.record(200, 0.001)
    idle.record(200, 0.001)
    ls.expire(1000.0, idle=60)
    busy.record(200, 0.001)
    ls.expire(1030.0, idle=60)
    busy.record(200, 0.001)
    ls.expire(1061.0, idle=60)
    assert idle.expired and ("idle", "", "", "", "") not in ls.requests
    assert not busy.expired and ("busy", "", "", "", "") in ls.requests
    conn = ls.for_connection(("db", "", "", "", ""))
    conn.opened = conn.active = 1
    ls.expire(1100.0, idle=60)
    ls.expire(1200.0, idle=60)
    assert not conn.expired  # open connections never expire
