"""Tap, top and explain against a real control plane and real sidecars (mTLS).

benigno v1 and v2 (service benigno, port 5000) each behind a sidecar; magnanimo's
sidecar calls benigno through an explicit outbound port. Traffic runs in a background
thread while tap and top watch it through the control plane's API and the CLI.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ndjson import StreamReader
from tests.support.processes import ControlPlane
from tests.support.proxy import Sidecar, Upstream, free_port, get, request
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

MAGNANIMO = "spiffe://gossamer.local/ns/default/sa/magnanimo"
BENIGNO = "spiffe://gossamer.local/ns/default/sa/benigno"


@dataclass
class Traffic:
    """Requests through magnanimo's outbound port until stopped (bounded in time)."""

    port: int
    paths: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def run(self) -> None:
        deadline = threading.Event()
        timer = threading.Timer(120, deadline.set)  # a bound even if a test forgets
        timer.start()
        try:
            while not self.stop.is_set() and not deadline.is_set():
                for p in self.paths:
                    get(self.port, p, host="benigno", X_Secret="hunter2")
                    self.sent += 1
                self.stop.wait(0.02)
        finally:
            timer.cancel()


@dataclass
class Mesh:
    cp: ControlPlane
    v1: Sidecar
    v2: Sidecar
    magnanimo: Sidecar
    port: int  # magnanimo's outbound port to benigno:5000
    http_proxy: int  # magnanimo's HTTP proxy port (any service)

    def apply(self, text: str) -> None:
        self.cp.cli("apply", "-f", "-", input=text, check=True)

    def api(self, endpoint: str, /, **params: str) -> httpx.Response:
        return httpx.get(self.cp.api + endpoint, params=params, timeout=30)

    def traffic(self, *paths: str) -> tuple[Traffic, threading.Thread]:
        t = Traffic(self.port, list(paths))
        thread = threading.Thread(target=t.run, daemon=True)
        thread.start()
        return t, thread


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir: Path = tmp_path_factory.mktemp("tapx")
    cp = ControlPlane(workdir / "state", "sqlite://").start()
    apps = [Upstream("benigno-v1").start(), Upstream("benigno-v2").start()]
    sidecars: list[Sidecar] = []

    def sidecar(name: str, *args: str) -> Sidecar:
        s = Sidecar(workdir, None, "--xds", cp.xds, "--id", name, *args, name=name, env=cp.env())
        sidecars.append(s)
        return s.start()

    try:
        v1, v2 = (
            sidecar(
                f"benigno-{v}",
                *("--service", "benigno", "--workload", f"benigno-{v}"),
                *("--label", f"version={v}"),
                *("--inbound", f"5000:{app.port}:{free_port()}"),
            )
            for v, app in (("v1", apps[0]), ("v2", apps[1]))
        )
        port, http_proxy = free_port(), free_port()
        magnanimo = sidecar(
            "magnanimo",
            *("--service", "magnanimo", "--outbound", f"benigno:5000={port}"),
            *("--http-proxy-port", str(http_proxy)),
        )
        m = Mesh(cp, v1, v2, magnanimo, port, http_proxy)
        wait_for(lambda: get(port, "/hello", host="benigno").status == 200, 30, message="benigno")
        yield m
    finally:
        for s in sidecars:
            s.stop()
        cp.stop()
        for app in apps:
            app.stop()


def test_tap_cli_shows_requests_while_traffic_runs(mesh: Mesh) -> None:
    traffic, thread = mesh.traffic("/hello")
    try:
        out = mesh.cp.cli("tap", "svc/benigno", "--max", "6", "--duration", "30", check=True)
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 6, out.stdout + out.stderr
        for line in lines:
            assert " GET benigno/hello 200 " in line or " GET " in line, line
            assert f"{MAGNANIMO} -> {BENIGNO}" in line, line
        assert "6 requests (limit)" in out.stderr
        # The records, as JSON: inbound at benigno's sidecars, header values redacted.
        out = mesh.cp.cli("tap", "svc/benigno", "--max", "4", "-o", "json", check=True)
        records = [json.loads(line) for line in out.stdout.splitlines()]
        requests = [r for r in records if r["type"] == "request"]
        assert len(requests) == 4 and records[-1]["type"] == "end"
        assert records[-1]["reason"] == "limit" and records[-1]["count"] == 4
        for r in requests:
            assert r["direction"] == "inbound" and r["path"] == "/hello" and r["status"] == 200
            assert r["source"]["identity"] == MAGNANIMO
            assert r["destination"]["service"] == "benigno"
            assert r["destination"]["workload"] in ("benigno-v1", "benigno-v2")
            assert r["proxy"] in ("benigno-v1", "benigno-v2")
            assert r["headers"]["x-secret"] == "<redacted>"
            assert r["latencyMs"] > 0
        assert "hunter2" not in out.stdout
        # Opted in: the values.
        out = mesh.cp.cli(
            "tap", "workload/magnanimo", "--show-headers", "--max", "2", "-o", "json", check=True
        )
        requests = [json.loads(x) for x in out.stdout.splitlines()][:-1]
        assert [r["direction"] for r in requests] == ["outbound", "outbound"]
        assert requests[0]["headers"]["x-secret"] == "hunter2"
        assert requests[0]["destination"]["identity"] == BENIGNO
    finally:
        traffic.stop.set()
        thread.join(10)


def test_top_shows_the_busiest_path(mesh: Mesh) -> None:
    traffic, thread = mesh.traffic("/busy", "/busy", "/busy", "/rare")
    try:
        out = mesh.cp.cli(
            "top", "svc/benigno", "--once", "--duration", "3", "-o", "json", check=True
        )
        body = json.loads(out.stdout)
        first, second = body["items"][:2]
        assert (first["path"], second["path"]) == ("/busy", "/rare"), body
        assert first["count"] > second["count"] > 0
        assert first["successRate"] == 1.0 and first["latencyMs"]["p50"] > 0
        # The table, as a script sees it.
        out = mesh.cp.cli("top", "svc/benigno", "--once", "--duration", "2", check=True)
        header, row = out.stdout.splitlines()[:2]
        assert header.split()[:5] == ["PATH", "METHOD", "DIR", "COUNT", "SUCCESS"]
        assert row.split()[:3] == ["/busy", "GET", "in"] and "100.0%" in row
    finally:
        traffic.stop.set()
        thread.join(10)


def test_tap_api_ends_with_the_reader_and_bounds(mesh: Mesh) -> None:
    def taps() -> int:
        return sum(int(s.get("/ready").json()["taps"]) for s in (mesh.v1, mesh.v2))

    reader = StreamReader(mesh.cp.api + "/api/v1/tap", {"target": "svc/benigno"})
    assert reader.status == 200
    wait_for(lambda: taps() == 2, 10, message="both benigno sidecars tapped")
    reader.close()
    wait_for(lambda: taps() == 0, 10, message="the sidecars' taps to end with the reader")
    # duration bounds it: an end line, with nothing to see.
    reader = StreamReader(
        mesh.cp.api + "/api/v1/tap", {"target": "svc/benigno", "path": "/none", "duration": "1"}
    )
    end = reader.wait_done()[-1]
    assert end["type"] == "end" and end["reason"] == "duration" and end["count"] == 0
    assert sorted(end["proxies"]) == ["benigno-v1", "benigno-v2"]


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({}, 400, "target"),
        ({"target": "pod/x"}, 400, "target"),
        ({"target": "svc/benigno", "limit": "0"}, 400, "limit"),
        ({"target": "svc/benigno", "duration": "soon"}, 400, "duration"),
        ({"target": "svc/benigno", "path": "hello"}, 400, "path"),
        ({"target": "svc/nope"}, 404, "service default/nope not found"),
        ({"target": "workload/nope"}, 404, "workload default/nope not found"),
    ],
)
def test_tap_api_refuses_bad_parameters(
    mesh: Mesh, params: dict[str, str], status: int, words: str
) -> None:
    r = mesh.api("/api/v1/tap", **params)
    assert r.status_code == status and words in r.json()["error"], r.text
    if params.get("target") != "svc/benigno":  # the CLI says the same, and exits 1
        out = mesh.cp.cli("tap", params.get("target", "svc/"))
        assert out.returncode == 1 and "error: " in out.stderr and words in out.stderr


def test_tap_cli_refuses_a_zero_max(mesh: Mesh) -> None:
    out = mesh.cp.cli("tap", "svc/benigno", "--max", "0")
    assert out.returncode == 1 and "error: limit: must be > 0" in out.stderr


# --- explain -------------------------------------------------------------------------------

CANARY = Path(__file__).parents[2] / "examples" / "canary" / "canary-90-10.yaml"
NO_SECRETS = """
apiVersion: gossamer.io/v1alpha1
kind: TrafficPermission
metadata: {name: no-secrets}
spec:
  targetRef: {kind: Service, name: benigno}
  from:
  - targetRef: {kind: Mesh}
    default:
      action: DENY
      rules: [{paths: [{type: PathPrefix, value: /secret}]}]
"""
GHOST = """
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {name: ghost}
spec:
  selector: {app: ghost}
  ports: [{port: 7000}]
"""


def explain(mesh: Mesh, *args: str) -> dict[str, Any]:
    out = mesh.cp.cli("explain", *args, "-o", "json", check=True)
    body: dict[str, Any] = json.loads(out.stdout)
    return body


def steps(body: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    return [s for s in body["steps"] if s["stage"] == stage]


def test_explain_a_route_with_a_split(mesh: Mesh) -> None:
    mesh.cp.cli("apply", "-f", str(CANARY), check=True)
    args = ("--from", "workload/magnanimo", "--to", "benigno:5000", "--path", "/hello")
    body = wait_for(
        lambda: (b := explain(mesh, *args))["backends"] and len(b["backends"]) == 2 and b,
        15,
        message="the canary route in the explanation",
    )
    assert body["outcome"] == "routed"
    assert body["source"]["proxy"] == "magnanimo" and not body["source"]["synthetic"]
    (listener,) = steps(body, "listener")
    assert listener["decision"] == "outbound:benigno:5000"
    route = steps(body, "route")[0]
    assert route["resource"] == "HTTPRoute default/benigno-canary"
    (split,) = steps(body, "split")
    assert "90%" in split["decision"] and "10%" in split["decision"]
    assert [(b["service"], b["weight"], b["healthyEndpoints"]) for b in body["backends"]] == [
        ("benigno-v1", 90, 1),
        ("benigno-v2", 10, 1),
    ]
    assert body["backends"][0]["endpoints"][0]["workload"] == "benigno-v1"
    (mtls,) = steps(body, "mtls")
    assert mtls["decision"].startswith("mTLS") and BENIGNO in mtls["detail"]
    assert steps(body, "authz")[0]["decision"] == "allowed"
    assert "HTTPRoute default/benigno-canary" in body["summary"]
    # The text, for an operator.
    out = mesh.cp.cli("explain", *args, check=True).stdout
    assert "outcome: routed" in out and "from: HTTPRoute default/benigno-canary" in out
    assert "benigno-v1" in out and "90%" in out


def test_explain_a_request_denied_by_a_traffic_permission(mesh: Mesh) -> None:
    mesh.apply(NO_SECRETS)
    args = ("--from", "svc/magnanimo", "--to", "benigno:5000", "--path", "/secret/x")
    body = wait_for(
        lambda: (b := explain(mesh, *args))["outcome"] == "denied" and b,
        15,
        message="the denial in the explanation",
    )
    (authz,) = steps(body, "authz")
    assert authz["resource"] == "TrafficPermission default/no-secrets"
    assert MAGNANIMO in authz["detail"] and "403" in authz["detail"]
    assert "denied" in body["summary"] and "TrafficPermission default/no-secrets" in body["summary"]
    # The data plane agrees, with the same policy.
    r = wait_for(
        lambda: (x := get(mesh.port, "/secret/x", host="benigno")).status == 403 and x,
        15,
        message="the sidecar to deny",
    )
    assert r.headers["x-gossamer-authz"] == "denied policy=default/no-secrets"
    # Another path is allowed.
    assert explain(mesh, "--from", "svc/magnanimo", "--to", "benigno:5000")["outcome"] == "routed"


def test_explain_a_service_with_no_healthy_endpoints(mesh: Mesh) -> None:
    mesh.apply(GHOST)
    args = ("--from", "svc/magnanimo", "--to", "ghost:7000", "--flags", "UH")
    body = wait_for(
        lambda: (b := explain(mesh, *args))["outcome"] == "no-healthy-endpoints" and b,
        15,
        message="ghost in the explanation",
    )
    assert steps(body, "listener")[0]["decision"] == "outbound:http"
    assert steps(body, "route")[0]["resource"] == "Service default/ghost"
    (endpoints,) = steps(body, "endpoints")
    assert "no endpoints at all" in endpoints["detail"] and "UH" in endpoints["detail"]
    assert body["backends"][0]["healthyEndpoints"] == 0
    (flag,) = steps(body, "flags")
    assert flag["decision"] == "UH" and "No healthy upstream" in flag["detail"]
    assert "no healthy endpoint" in body["summary"]
    # The data plane agrees: 503 UH.
    raw = b"GET http://ghost:7000/ HTTP/1.1\r\nHost: ghost:7000\r\n\r\n"
    r = wait_for(
        lambda: (x := request(mesh.http_proxy, raw)).status == 503 and x, 15, message="503 UH"
    )
    assert r.headers["x-gossamer-flags"] == "UH"
    # A source with no sidecar: explained as its sidecar would be configured.
    out = mesh.cp.cli("explain", "--from", "svc/ghost", "--to", "benigno:5000", check=True)
    assert "no sidecar of the source is connected" in out.stdout
    body = explain(mesh, "--from", "svc/ghost", "--to", "benigno:5000")
    assert body["source"]["synthetic"] and body["outcome"] == "routed"


def test_explain_a_host_nobody_serves(mesh: Mesh) -> None:
    body = explain(mesh, "--from", "svc/magnanimo", "--to", "nowhere.example:81")
    assert body["outcome"] in ("no-route", "direct-response", "routed")
    assert body["summary"]


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"destination": "benigno:5000"}, 400, "source: required"),
        ({"source": "svc/magnanimo"}, 400, "destination: required"),
        ({"source": "pod/x", "destination": "benigno:5000"}, 400, "source: expected"),
        ({"source": "svc/magnanimo", "destination": "benigno:99999"}, 400, "destination"),
        ({"source": "svc/magnanimo", "destination": "b:1", "path": "x"}, 400, "path"),
        ({"source": "svc/magnanimo", "destination": "b:1", "flags": "ZZ"}, 400, "flags"),
        ({"source": "svc/magnanimo", "destination": "b:1", "header": "bad"}, 400, "header"),
        ({"source": "svc/nope", "destination": "benigno:5000"}, 404, "service default/nope"),
        ({"source": "workload/nope", "destination": "b:1"}, 404, "workload default/nope"),
    ],
)
def test_explain_refuses_bad_parameters(
    mesh: Mesh, params: dict[str, str], status: int, words: str
) -> None:
    r = mesh.api("/api/v1/explain", **params)
    assert r.status_code == status and words in r.json()["error"], r.text
