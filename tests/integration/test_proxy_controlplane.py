"""Sidecars configured by a real control plane (`gossamer controlplane run`).

The canary topology: magnanimo's sidecar (HTTP proxy port and an explicit outbound port)
calls benigno, whose two versions each have a sidecar in front of their app. Load runs
through both hops while the mesh changes and while the control plane dies.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import ControlPlane
from tests.support.proxy import Sidecar, Upstream, free_port, get, request
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

SERVICES = """
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {name: benigno-v1}
spec: {selector: {app: benigno, version: v1}}
---
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {name: benigno-v2}
spec: {selector: {app: benigno, version: v2}}
"""


def split(v1: int, v2: int) -> str:
    return f"""
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: benigno-split}}
spec:
  parentRefs: [{{group: "", kind: Service, name: benigno, port: 5000}}]
  rules:
  - backendRefs:
    - {{name: benigno-v1, port: 5000, weight: {v1}}}
    - {{name: benigno-v2, port: 5000, weight: {v2}}}
"""


@dataclass
class Mesh:
    cp: ControlPlane
    workdir: Path
    apps: dict[str, Upstream]
    sidecars: dict[str, Sidecar]
    http_proxy: int
    outbound: int

    def apply(self, text: str) -> None:
        self.cp.cli("apply", "-f", "-", input=text, check=True)

    def benigno(self, name: str, version: str, app: Upstream) -> Sidecar:
        sidecar = Sidecar(
            self.workdir,
            None,
            "--xds",
            self.cp.xds,
            "--id",
            name,
            "--service",
            "benigno",
            "--label",
            f"version={version}",
            "--inbound",
            f"5000:{app.port}:{free_port()}",
            name=name,
            env=self.cp.env(),  # finds the admin token: mints a data-plane token
        ).start()
        self.sidecars[name] = sidecar
        return sidecar

    def servers(self, n: int = 40) -> dict[str, int]:
        seen: dict[str, int] = {}
        for _ in range(n):
            r = get(self.http_proxy, "/who", host="benigno:5000")
            if r.status == 200:
                server = r.json()["server"]
                seen[server] = seen.get(server, 0) + 1
        return seen


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("proxy-cp")
    cp = ControlPlane(workdir / "state", "sqlite://", "--workload-grace", "5").start()
    apps = {
        "v1": Upstream("v1").start(),
        "v2": Upstream("v2").start(),
        "v1b": Upstream("v1b").start(),
    }
    m = Mesh(cp, workdir, apps, {}, free_port(), free_port())
    try:
        m.apply(SERVICES + "---" + split(50, 50))
        m.benigno("benigno-v1-1", "v1", apps["v1"])
        m.benigno("benigno-v2-1", "v2", apps["v2"])
        m.sidecars["magnanimo"] = Sidecar(
            workdir,
            None,
            "--xds",
            cp.xds,
            "--id",
            "magnanimo-1",
            "--service",
            "magnanimo",
            "--http-proxy-port",
            str(m.http_proxy),
            "--outbound",
            f"benigno:5000={m.outbound}",
            "--workers",
            "2",
            name="magnanimo",
            env=cp.env(),  # finds the admin token: mints a data-plane token
        ).start()
        wait_for(lambda: set(m.servers(20)) == {"v1", "v2"}, 20, message="traffic to both versions")
        yield m
    finally:
        for sidecar in m.sidecars.values():
            sidecar.stop()
        cp.stop()
        for app in apps.values():
            app.stop()


def test_sidecar_gets_its_config_and_traffic_flows(mesh: Mesh) -> None:
    ready = mesh.sidecars["magnanimo"].get("/ready").json()
    assert ready["xds"]["connected"] and ready["config"]["source"] == "xds"
    assert set(ready["config"]["listeners"]) == {"outbound:http", "outbound:benigno:5000"}
    # HTTP proxy (absolute form, as with HTTP_PROXY), origin form with Host, explicit port.
    r = request(
        mesh.http_proxy, b"GET http://benigno:5000/abs HTTP/1.1\r\nHost: benigno:5000\r\n\r\n"
    )
    assert r.status == 200 and r.json()["target"] == "/abs"
    assert get(mesh.http_proxy, "/host", host="benigno.default:5000").status == 200
    assert get(mesh.outbound, "/explicit", host="anything").status == 200
    # A host outside the mesh: egress is REGISTRY_ONLY by default.
    blocked = get(mesh.http_proxy, "/", host="nobody:80")
    assert (
        blocked.status == 502 and blocked.headers["x-gossamer-egress"] == "blocked host=nobody:80"
    )
    # Two hops: the inbound sidecar saw the outbound sidecar as its client.
    headers = dict(r.json()["headers"])
    assert headers["x-forwarded-for"] == "127.0.0.1, 127.0.0.1"
    # The control plane sees all three proxies connected and ACKing.
    listing = json.loads(mesh.cp.cli("get", "proxies", "-o", "json", check=True).stdout)
    assert {p["name"] for p in listing} >= {"magnanimo-1", "benigno-v1-1", "benigno-v2-1"}
    assert all(p["state"] == "connected" for p in listing)
    # Each sidecar announces its admin port: where the control plane scrapes and taps.
    announced = {p["name"]: f"http://{p['address']}:{p['adminPort']}" for p in listing}
    assert announced["magnanimo-1"] == mesh.sidecars["magnanimo"].admin


def test_golden_metrics_from_the_sidecars_to_the_api(mesh: Mesh) -> None:
    """Sidecar series with identities, then the control plane's aggregation and its API."""
    for _ in range(40):
        assert get(mesh.http_proxy, "/golden", host="benigno:5000").status == 200
    # The callee's sidecar names its caller from the mTLS peer certificate.
    inbound = mesh.sidecars["benigno-v1-1"].get("/stats/prometheus").text
    assert (
        'direction="inbound",source_namespace="default",source_service="magnanimo",'
        'source_workload="unknown",source_version="unknown",destination_namespace="default",'
        'destination_service="benigno",destination_workload="benigno-v1-1",'
        'destination_version="v1",route="inbound",code="200",class="2xx"}'
    ) in inbound
    # The caller's names the endpoint that served it (EDS metadata).
    outbound = mesh.sidecars["magnanimo"].get("/stats/prometheus").text
    assert 'direction="outbound",source_namespace="default",source_service="magnanimo"' in outbound
    assert 'destination_workload="benigno-v2-1",destination_version="v2"' in outbound
    api = mesh.cp.api

    def benigno() -> dict[str, Any] | None:
        # Traffic goes on while we wait: a proxy's first scrape is only its baseline.
        for _ in range(10):
            get(mesh.http_proxy, "/golden", host="benigno:5000")
        body = httpx.get(f"{api}/api/v1/stats", params={"name": "benigno"}, timeout=5).json()
        assert body["kind"] == "StatList" and body["window"] == "1m"
        items = body["items"]
        ok = items and items[0]["requests"] >= 40 and set(items[0]["versions"]) == {"v1", "v2"}
        edges = httpx.get(f"{api}/api/v1/stats", params={"kind": "edge"}, timeout=5).json()
        pairs = {(e["source"]["name"], e["destination"]["name"]) for e in edges["items"]}
        callers = pairs >= {("magnanimo", "benigno-v1"), ("magnanimo", "benigno-v2")}
        return items[0] if ok and callers else None

    item = wait_for(benigno, 20, interval=0.5, message="benigno's golden metrics and edges")
    assert item["successRate"] == 1.0 and item["latencyMs"]["p99"] >= item["latencyMs"]["p50"]
    series = httpx.get(
        f"{api}/api/v1/stats/series", params={"kind": "service", "name": "benigno"}, timeout=5
    ).json()
    assert series["step"] == 10 and len(series["points"]) == 60
    assert any(p["versions"].get("v1", {}).get("rps") for p in series["points"])
    with httpx.stream("GET", f"{api}/api/v1/stats/stream", timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "event: stats"
        event = json.loads(next(lines).removeprefix("data: "))
    assert {"time", "services", "workloads", "edges"} <= set(event)
    bad = httpx.get(f"{api}/api/v1/stats", params={"window": "5m"}, timeout=5)
    assert bad.status_code == 400 and "window" in bad.json()["error"]
    unknown = httpx.get(
        f"{api}/api/v1/stats/series", params={"kind": "workload", "name": "nobody"}, timeout=5
    )
    assert unknown.status_code == 404
    metrics = httpx.get(f"{api}/metrics", timeout=5).text
    assert "gossamer_cp_xds_streams 3" in metrics
    assert 'gossamer_cp_api_requests_total{method="GET",code="200"}' in metrics


def start_load(mesh: Mesh, seconds: float, progress: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.loadgen",
            "--port",
            str(mesh.http_proxy),
            "--host",
            "benigno:5000",
            "--path",
            "/load",
            "--proxy",
            "--connections",
            "8",
            "--duration",
            str(seconds),
            "--max-requests",
            "400000",
            "--progress",
            str(progress),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def progress(path: Path) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads(path.read_text())
        return result
    except (OSError, ValueError):
        return {}


def finish(load: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = load.communicate(timeout=60)
    result: dict[str, Any] = json.loads(out)
    return result


def only(mesh: Mesh, path: Path, servers: set[str]) -> bool:
    """The last second of load went only to these servers."""
    recent = progress(path).get("recent", {})
    return bool(recent) and set(recent) <= servers


def test_route_and_endpoint_changes_under_load_fail_nothing(mesh: Mesh, tmp_path: Path) -> None:
    accepted_before = {k: a.accepted for k, a in mesh.apps.items()}
    flags_before = mesh.sidecars["magnanimo"].stats()["listeners"]["outbound:http"][
        "response_flags"
    ]
    status = tmp_path / "progress.json"
    load = start_load(mesh, 20, status)
    try:
        wait_for(lambda: progress(status).get("requests", 0) > 200, 10, message="load to start")
        mesh.apply(split(100, 0))
        wait_for(lambda: only(mesh, status, {"v1"}), 8, message="all traffic on v1")
        # An endpoint change: a second v1 replica registers, then is deleted.
        extra = mesh.benigno("benigno-v1-2", "v1", mesh.apps["v1b"])
        wait_for(
            lambda: only(mesh, status, {"v1", "v1b"}) and "v1b" in progress(status)["recent"], 10
        )
        mesh.cp.cli("delete", "workload", "benigno-v1-2", check=True)
        wait_for(lambda: only(mesh, status, {"v1"}), 8, message="the deleted endpoint unused")
        mesh.apply(split(0, 100))
        wait_for(lambda: only(mesh, status, {"v2"}), 8, message="all traffic on v2")
        mesh.apply(split(50, 50))
        wait_for(
            lambda: only(mesh, status, {"v1", "v2"}) and len(progress(status)["recent"]) == 2, 8
        )
    finally:
        result = finish(load)
    extra.stop()
    del mesh.sidecars["benigno-v1-2"]
    assert result["errors"] == 0, result["error_kinds"]
    assert result["connects"] == 8  # no client connection was dropped
    assert result["requests"] > 2000
    # The inbound sidecars kept their pooled connections to the apps: no churn.
    for name in ("v1", "v2"):
        assert mesh.apps[name].accepted - accepted_before[name] <= 16, name
    magnanimo = mesh.sidecars["magnanimo"].stats()["listeners"]["outbound:http"]
    assert magnanimo["response_flags"] == flags_before  # no local reply, no error


def test_control_plane_killed_under_load_then_back(mesh: Mesh, tmp_path: Path) -> None:
    status = tmp_path / "progress.json"
    load = start_load(mesh, 24, status)
    sidecar = mesh.sidecars["magnanimo"]
    try:
        wait_for(lambda: progress(status).get("requests", 0) > 200, 10, message="load to start")
        mesh.cp.kill()  # SIGKILL, by PID
        wait_for(lambda: not sidecar.get("/ready").json()["xds"]["connected"], 10)
        ready = sidecar.get("/ready")
        assert ready.status_code == 200  # still serving the last config
        assert "unreachable" in ready.json()["xds"]["note"]
        # The outage itself: traffic keeps flowing while the control plane is down.
        at_kill = progress(status).get("requests", 0)
        wait_for(lambda: progress(status).get("requests", 0) > at_kill + 3000, 15)
        requests_during = progress(status).get("requests", 0)
        mesh.cp.start()  # same ports, same state
        wait_for(lambda: sidecar.get("/ready").json()["xds"]["connected"], 15, message="reconnect")
        mesh.apply(split(0, 100))
        wait_for(lambda: only(mesh, status, {"v2"}), 10, message="the change after the restart")
    finally:
        result = finish(load)
    mesh.apply(split(50, 50))
    assert result["errors"] == 0, result["error_kinds"]
    assert result["connects"] == 8
    assert result["requests"] > requests_during > 0


def test_state_of_the_world_sidecar_follows_the_same_changes(mesh: Mesh) -> None:
    """Sidecars default to incremental ADS; the state-of-the-world variant must behave the
    same: first config, a split change (RDS) and an endpoint change (EDS)."""
    port = free_port()
    sidecar = Sidecar(
        mesh.workdir,
        None,
        "--xds",
        mesh.cp.xds,
        "--xds-protocol",
        "sotw",
        "--id",
        "magnanimo-sotw",
        "--service",
        "magnanimo",
        "--http-proxy-port",
        str(port),
        name="magnanimo-sotw",
        env=mesh.cp.env(),
    ).start()

    def servers() -> set[str]:
        seen = set()
        for _ in range(20):
            r = get(port, "/who", host="benigno:5000")
            assert r.status == 200
            seen.add(r.json()["server"])
        return seen

    try:
        wait_for(lambda: servers() == {"v1", "v2"}, 10, message="both versions")
        mesh.apply(split(100, 0))
        wait_for(lambda: servers() == {"v1"}, 10, message="the split change")
        extra = mesh.benigno("benigno-v1-3", "v1", mesh.apps["v1b"])
        wait_for(lambda: servers() == {"v1", "v1b"}, 10, message="the new endpoint")
        extra.stop()
        del mesh.sidecars["benigno-v1-3"]
        mesh.cp.cli("delete", "workload", "benigno-v1-3", check=True)
        wait_for(lambda: servers() == {"v1"}, 10, message="the endpoint removed")
        listing = json.loads(mesh.cp.cli("get", "proxies", "-o", "json", check=True).stdout)
        kinds = {p["name"]: p["streamKind"] for p in listing}
        assert kinds["magnanimo-sotw"] == "sotw" and kinds["magnanimo-1"] == "delta"
    finally:
        mesh.apply(split(50, 50))
        sidecar.stop()
