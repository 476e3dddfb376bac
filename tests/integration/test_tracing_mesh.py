"""Tracing through the canary topology with real processes (control plane, ingress
gateway, magnanimo and benigno under `gossamer run`, mTLS STRICT): a request through
ingress -> magnanimo -> benigno is one trace whose hops are linked by their parent ids,
fetched from the control plane's built-in collector, then the same received by an
external Zipkin-format receiver; access log lines carry the trace id and identities."""

from __future__ import annotations

import dataclasses
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gossamer.demo.runner import Demo
from gossamer.demo.scenarios import CANARY
from tests.support.processes import run_cli
from tests.support.wait import wait_for
from tests.support.zipkin import ZipkinReceiver

pytestmark = pytest.mark.integration

MESH = """
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {{name: default}}
spec:
  tracing: {{sampling: 100{backend}}}
  accessLogs: {{enabled: true, path: {log}}}
"""
MAGNANIMO = "spiffe://gossamer.local/ns/default/sa/magnanimo"
INGRESS = "spiffe://gossamer.local/ns/default/sa/ingress"


@dataclasses.dataclass
class Mesh:
    demo: Demo
    gateway: int
    log: Path

    def call(self, **headers: str) -> str:
        rid = str(uuid.uuid4())
        r = httpx.get(
            f"http://127.0.0.1:{self.gateway}/route1/hw2",
            headers={"x-request-id": rid, **headers},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return rid


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    state = Path(tmp_path_factory.mktemp("mesh"))
    log = state / "access.log"
    scenario = dataclasses.replace(CANARY, setup=MESH.format(backend="", log=log))
    demo = Demo(scenario, out=io.StringIO())
    try:
        port = demo.start_mesh(state)
        m = Mesh(demo, port, log)
        wait_for(lambda: _ok(m), 30, message="traffic through the ingress")
        yield m
    finally:
        demo.stop_all()


def _ok(m: Mesh) -> bool:
    m.call()
    return True


def _hops(spans: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["localEndpoint"]["serviceName"], s["kind"]): s for s in spans}


def assert_linked(spans: list[dict[str, Any]], parent: str | None) -> None:
    hops = _hops(spans)
    assert set(hops) == {
        ("ingress", "SERVER"),
        ("magnanimo", "SERVER"),
        ("magnanimo", "CLIENT"),
        ("benigno", "SERVER"),
    }, sorted(hops)
    assert len(spans) == 4 and len({s["traceId"] for s in spans}) == 1
    ingress = hops["ingress", "SERVER"]
    assert ingress.get("parentId") == parent
    server = hops["magnanimo", "SERVER"]
    client = hops["magnanimo", "CLIENT"]
    benigno = hops["benigno", "SERVER"]
    assert server["parentId"] == ingress["id"]
    assert client["parentId"] == server["id"]
    assert benigno["parentId"] == client["id"]
    # Each hop says who called it, as mTLS proved it.
    assert server["tags"]["peer.identity"] == INGRESS
    assert benigno["tags"]["peer.identity"] == MAGNANIMO
    assert benigno["tags"]["gossamer.workload"] in ("benigno-v1", "benigno-v2")
    assert client["remoteEndpoint"]["serviceName"] == "benigno"
    assert all(s["tags"]["http.status_code"] == "200" for s in spans)


def _trace_of(api: str, rid: str) -> list[dict[str, Any]] | None:
    """The built-in collector's trace whose ingress span carries this request id."""
    for item in httpx.get(f"{api}/api/v1/traces?service=ingress&limit=100").json()["items"]:
        trace = httpx.get(f"{api}/api/v1/traces/{item['traceId']}").json()
        spans: list[dict[str, Any]] = trace["spans"]
        if any(s["tags"].get("guid:x-request-id") == rid for s in spans) and len(spans) >= 4:
            return spans
    return None


def test_one_linked_trace_in_the_builtin_collector(mesh: Mesh) -> None:
    rid = mesh.call()  # no trace headers: the ingress starts the trace
    spans = wait_for(lambda: _trace_of(mesh.demo.api, rid), 20, message="the trace")
    assert_linked(spans, None)
    trace_id = spans[0]["traceId"]
    items = httpx.get(f"{mesh.demo.api}/api/v1/traces?service=benigno").json()["items"]
    (item,) = [i for i in items if i["traceId"] == trace_id]
    assert item["rootService"] == "ingress" and item["spans"] == 4
    assert item["services"] == ["ingress", "magnanimo", "benigno"] and item["error"] is False

    # A caller's W3C context is continued: the ingress span's parent is the caller's.
    trace, parent = uuid.uuid4().hex, "00f067aa0ba902b7"
    mesh.call(traceparent=f"00-{trace}-{parent}-01")
    url = f"{mesh.demo.api}/api/v1/traces/{trace}"
    got = wait_for(
        lambda: (r := httpx.get(url)).status_code == 200 and len(r.json()["spans"]) >= 4 and r,
        20,
        message="the continued trace",
    )
    assert_linked(got.json()["spans"], parent)

    # The CLI shows both.
    env = {"GOSSAMER_CP": mesh.demo.api}
    out = run_cli("traces", "--service", "benigno", env=env, check=True).stdout
    assert trace_id in out and trace in out and "ingress" in out
    out = run_cli("traces", trace, env=env, check=True).stdout
    assert "benigno" in out and "magnanimo client" in out and MAGNANIMO in out

    # Access log lines of that request, from every hop, with who called whom.
    def lines() -> list[dict[str, Any]] | None:
        found = [json.loads(x) for x in mesh.log.read_text().splitlines() if trace in x]
        return found if len(found) >= 4 else None

    logged = wait_for(lines, 10, message="access log lines")
    inbound = [x for x in logged if x["direction"] == "inbound"]
    assert {x["destination"] for x in inbound} >= {MAGNANIMO, INGRESS}
    benigno = [x for x in inbound if x["destination"].endswith("/sa/benigno")]
    assert benigno and benigno[0]["source"] == MAGNANIMO and benigno[0]["status"] == 200
    assert all(x["method"] == "GET" and "durationMs" in x and "bytesSent" in x for x in logged)
    outbound = [x for x in logged if x["direction"] == "outbound"]
    assert outbound and outbound[0]["source"] == MAGNANIMO
    assert outbound[0]["destination"].endswith("/sa/benigno")


def test_an_external_zipkin_receives_the_spans(mesh: Mesh) -> None:
    zipkin = ZipkinReceiver().start()
    try:
        mesh.demo.apply(MESH.format(backend=f", backend: {{zipkin: '{zipkin.url}'}}", log=mesh.log))

        def linked() -> list[dict[str, Any]] | None:
            mesh.call()  # until every sidecar has the new config
            for spans in zipkin.traces().values():
                if len(spans) == 4:
                    return spans
            return None

        spans = wait_for(linked, 30, interval=0.3, message="a whole trace at the receiver")
        assert_linked(spans, None)
        assert all(a is None for a in zipkin.authorization)  # no token to a third party
    finally:
        zipkin.stop()
