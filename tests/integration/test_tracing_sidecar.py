"""Tracing and access logs in one sidecar, from a static config: trace headers read and
written (W3C, B3 single and multi), spans exported to a Zipkin-format receiver, a full
export queue that does not slow requests, and access log lines with their fields."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.proxy import (
    Sidecar,
    Upstream,
    free_port,
    get,
    http_listener,
    route_config,
    static_cluster,
    to_cluster,
    vhost,
)
from tests.support.wait import wait_for
from tests.support.zipkin import ZipkinReceiver

pytestmark = pytest.mark.integration

ZIPKIN_TYPE = "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig"
FILE_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
LOG_FORMAT = {
    "time": "%START_TIME%",
    "traceId": "%TRACE_ID%",
    "source": "%DOWNSTREAM_REMOTE_ADDRESS%",
    "sourceIdentity": "%DOWNSTREAM_PEER_URI_SAN%",
    "destination": "%UPSTREAM_CLUSTER%",
    "upstreamHost": "%UPSTREAM_HOST%",
    "method": "%REQ(:METHOD)%",
    "authority": "%REQ(:AUTHORITY)%",
    "path": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "durationMs": "%DURATION%",
    "bytesReceived": "%BYTES_RECEIVED%",
    "bytesSent": "%BYTES_SENT%",
    "direction": "inbound",
}


def config(app: int, zipkin: int, port: int, sampling: float, log: Path) -> dict[str, Any]:
    routes = route_config("r", vhost("all", ["*"], {**to_cluster("app"), "name": "to-app"}))
    tracing = {
        "random_sampling": {"value": sampling},
        "provider": {
            "name": "envoy.tracers.zipkin",
            "typed_config": {
                "@type": ZIPKIN_TYPE,
                "collector_cluster": "zipkin",
                "collector_endpoint": "/api/v2/spans",
                "collector_endpoint_version": "HTTP_JSON",
            },
        },
        "custom_tags": [{"tag": "team", "literal": {"value": "blue"}}],
    }
    access_log = [
        {
            "name": "file",
            "typed_config": {
                "@type": FILE_LOG_TYPE,
                "path": str(log),
                "log_format": {"json_format": LOG_FORMAT},
            },
        }
    ]
    listener = http_listener(
        "inbound", port, routes=routes, direction="INBOUND", tracing=tracing, access_log=access_log
    )
    return {
        "listeners": [listener],
        "clusters": [static_cluster("app", app), static_cluster("zipkin", zipkin)],
    }


@pytest.fixture
def app() -> Iterator[Upstream]:
    up = Upstream("app").start()
    yield up
    up.stop()


@pytest.fixture
def zipkin() -> Iterator[ZipkinReceiver]:
    z = ZipkinReceiver().start()
    yield z
    z.stop()


def start(
    tmp_path: Path, app: Upstream, zipkin: ZipkinReceiver, sampling: float = 100.0, **env: str
) -> tuple[Sidecar, int, Path]:
    port = free_port()
    log = tmp_path / "access.log"
    sidecar = Sidecar(tmp_path, config(app.port, zipkin.port, port, sampling, log), env=env)
    sidecar.start()
    return sidecar, port, log


def sent(app: Upstream) -> dict[str, str]:
    """The trace headers the app received on its last request."""
    names = {"traceparent", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid"}
    names |= {"x-b3-sampled", "x-b3-flags", "tracestate"}
    return {k.lower(): v for k, v in app.seen[-1].headers if k.lower() in names}


def test_w3c_context_is_continued_and_the_span_exported(
    tmp_path: Path, app: Upstream, zipkin: ZipkinReceiver
) -> None:
    sidecar, port, log = start(tmp_path, app, zipkin)
    try:
        r = get(
            port,
            "/hello?x=1",
            host="benigno",
            traceparent=f"00-{TRACE}-{PARENT}-01",
            tracestate="vendor=abc",
        )
        assert r.status == 200
        h = sent(app)
        version, trace_id, span_id, flags = h["traceparent"].split("-")
        assert (version, trace_id, flags) == ("00", TRACE, "01")
        assert span_id != PARENT
        assert h["tracestate"] == "vendor=abc"  # passed on as received
        assert h["x-b3-traceid"] == TRACE and h["x-b3-spanid"] == span_id
        assert h["x-b3-parentspanid"] == PARENT and h["x-b3-sampled"] == "1"
        spans = wait_for(lambda: zipkin.traces().get(TRACE), 10, message="the span")
        (span,) = spans
        assert span["id"] == span_id and span["parentId"] == PARENT
        assert span["kind"] == "SERVER" and span["name"] == "get /hello"
        tags = span["tags"]
        assert tags["http.status_code"] == "200" and tags["http.method"] == "GET"
        assert tags["http.path"] == "/hello" and tags["gossamer.route"] == "to-app"
        assert tags["upstream_cluster"] == "app" and tags["team"] == "blue"
        assert span["duration"] >= 1 and span["timestamp"] > 1.6e15
        assert zipkin.authorization == [None]  # the token is for the built-in collector only
        # The access log: one JSON line with the fields an operator needs.
        line = wait_for(lambda: log.read_text().splitlines(), 10, message="the access log")[0]
        entry = json.loads(line)
        assert entry["traceId"] == TRACE and entry["method"] == "GET"
        assert entry["path"] == "/hello?x=1" and entry["authority"] == "benigno"
        assert entry["status"] == 200 and entry["flags"] == "-"
        assert entry["destination"] == "app" and entry["upstreamHost"] == f"127.0.0.1:{app.port}"
        assert entry["source"] == "127.0.0.1" and entry["direction"] == "inbound"
        assert entry["bytesSent"] == len(r.body) and entry["bytesReceived"] == 0
        assert isinstance(entry["durationMs"], int) and entry["time"].endswith("Z")
        assert "sourceIdentity" not in entry  # plaintext: no peer certificate
    finally:
        sidecar.process.stop()


def test_b3_single_and_multi_are_read_and_written(
    tmp_path: Path, app: Upstream, zipkin: ZipkinReceiver
) -> None:
    sidecar, port, _ = start(tmp_path, app, zipkin)
    try:
        short = "a3ce929d0e0e4736"  # a 64-bit B3 trace id: padded to 128 bits
        get(port, "/one", b3=f"{short}-{PARENT}-1")
        h = sent(app)
        tid, sid, sampled, parent = h["b3"].split("-")
        assert (tid, sampled, parent) == ("0" * 16 + short, "1", PARENT)
        assert h["traceparent"] == f"00-{tid}-{sid}-01" and "x-b3-traceid" not in h

        get(port, "/two", x_b3_traceid=TRACE, x_b3_spanid=PARENT, x_b3_sampled="1")
        h = sent(app)
        assert h["x-b3-traceid"] == TRACE and h["x-b3-parentspanid"] == PARENT
        assert h["traceparent"].startswith(f"00-{TRACE}-{h['x-b3-spanid']}-")
        assert "b3" not in h

        # A caller's "not sampled" is kept: headers go on, no span is exported.
        get(port, "/three", x_b3_traceid=TRACE[::-1], x_b3_spanid=PARENT, x_b3_sampled="0")
        assert sent(app)["x-b3-sampled"] == "0"
        assert sent(app)["traceparent"].endswith("-00")
        wait_for(lambda: len(zipkin.spans) >= 2, 10, message="two spans")
        time.sleep(1.5)  # one export interval: a third span would have arrived by now
        assert {s["name"] for s in zipkin.spans} == {"get /one", "get /two"}
        by_trace = zipkin.traces()
        assert by_trace[tid][0]["parentId"] == PARENT
    finally:
        sidecar.process.stop()


def test_a_new_trace_starts_at_the_sampling_rate(
    tmp_path: Path, app: Upstream, zipkin: ZipkinReceiver
) -> None:
    sidecar, port, _ = start(tmp_path, app, zipkin, sampling=0.0)
    try:
        get(port, "/x")
        h = sent(app)
        _, trace_id, _, flags = h["traceparent"].split("-")
        assert len(trace_id) == 32 and flags == "00" and "x-b3-parentspanid" not in h
        get(port, "/y", traceparent=f"00-{TRACE}-{PARENT}-01")  # the caller decided: kept
        wait_for(lambda: zipkin.spans, 10, message="the caller-sampled span")
        assert [s["traceId"] for s in zipkin.spans] == [TRACE]
    finally:
        sidecar.process.stop()


def test_a_full_export_queue_drops_spans_and_never_slows_requests(
    tmp_path: Path, app: Upstream
) -> None:
    # A collector that takes 10 s to answer: the exporter's one batch in flight waits,
    # the queue (50 spans here) fills and spans are dropped; requests go on as fast.
    slow = ZipkinReceiver(delay=10.0).start()
    sidecar, port, _ = start(tmp_path, app, slow, GOSSAMER_SPAN_QUEUE="50")
    try:
        latencies = []
        deadline = time.monotonic() + 20
        for _ in range(400):
            t0 = time.perf_counter()
            assert get(port, "/fast").status == 200
            latencies.append(time.perf_counter() - t0)
            assert time.monotonic() < deadline
        latencies.sort()
        assert latencies[-1] < 1.0, latencies[-5:]  # never waited for the collector
        tele = sidecar.get("/listeners").json()
        exporters = [e for w in _workers(tele) for e in w["telemetry"]["exporters"]]
        assert sum(e["dropped"] for e in exporters) > 0, exporters
        assert max(e["pending"] for e in exporters) <= 50
    finally:
        sidecar.process.stop()
        slow.stop()


def _workers(describe: Any) -> list[dict[str, Any]]:
    if isinstance(describe, list):
        return describe
    if "workers" in describe:
        return list(describe["workers"])
    return [describe]


def test_unsupported_tracing_and_log_formats_are_refused(
    tmp_path: Path, app: Upstream, zipkin: ZipkinReceiver
) -> None:
    from gossamer.proxy.static import StaticConfigError, load_file

    port = free_port()
    cfg = config(app.port, zipkin.port, port, 100.0, tmp_path / "a.log")
    hcm = cfg["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"][0]["typed_config"]["log_format"]["json_format"]["x"] = "%UPSTREAM_FOO%"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    with pytest.raises(StaticConfigError, match=r"%UPSTREAM_FOO% is not supported"):
        load_file(path)
    cfg = config(app.port, zipkin.port, port, 100.0, tmp_path / "a.log")
    hcm = cfg["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["tracing"]["provider"]["typed_config"]["collector_endpoint_version"] = "GRPC"
    path.write_text(json.dumps(cfg))
    with pytest.raises(StaticConfigError, match=r"collector_endpoint_version: only HTTP_JSON"):
        load_file(path)
