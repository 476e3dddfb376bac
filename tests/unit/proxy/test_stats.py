"""Stats: recording, merging worker snapshots, and the Prometheus rendering."""

from __future__ import annotations

from gossamer.proxy.filters.stats import MAX_SERIES, Stats, merge, prometheus, summary


def test_record_merge_and_render() -> None:
    a, b = Stats(), Stats()
    for stats in (a, b):
        ls = stats.listener("outbound:http")
        ls.cx_total += 2
        ls.for_cluster("benigno").record(200, 0.003)
        ls.for_cluster("benigno").record(503, 0.0001)
        ls.flag("UF")
        stats.cluster("benigno").connect_fail += 1
    b.listener("outbound:http").for_cluster("benigno").record(404, 2.0)
    merged = merge([a.snapshot(), b.snapshot()])
    rs = merged["listeners"]["outbound:http"]["requests"]["benigno"]
    assert rs["classes"] == [0, 0, 2, 0, 1, 2]
    text = prometheus(merged, {"gossamer_ready": 1})
    assert (
        'gossamer_requests_total{listener="outbound:http",cluster="benigno",class="2xx"} 2' in text
    )
    assert 'gossamer_response_flags_total{listener="outbound:http",flag="UF"} 2' in text
    assert 'gossamer_upstream_connect_failures_total{cluster="benigno"} 2' in text
    labels = 'listener="outbound:http",cluster="benigno",le="+Inf"'
    assert f"gossamer_request_duration_seconds_bucket{{{labels}}} 5" in text
    assert "gossamer_ready 1" in text
    assert summary(merged)["listeners"]["outbound:http"]["requests"]["benigno"]["total"] == 5


def test_label_cardinality_is_bounded() -> None:
    stats = Stats()
    ls = stats.listener("l")
    for i in range(MAX_SERIES + 50):
        ls.for_cluster(f"c{i}").record(200, 0.001)
    assert len(ls.requests) == MAX_SERIES + 1  # the rest is folded into "other"
    assert sum(ls.requests["other"].classes) == 50
