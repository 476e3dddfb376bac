"""Resilience policies end to end, under real faults.

A real control plane; upstream replicas as their own processes (tests/support/replica.py,
so one can be SIGKILLed), registered as Workloads; a client sidecar whose HTTP proxy
port carries the calls; a "front" sidecar whose inbound side gets the server-side
policies (fault injection, rate limiting). Each test applies its policies through the
CLI, waits until the sidecar's config carries them, and removes them at the end.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import ControlPlane, Process
from tests.support.proxy import Sidecar, free_port, get, read_response, request
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


@dataclass
class Replica:
    name: str
    port: int
    workdir: Path
    process: Process | None = None

    def start(self, mode: str = "ok") -> Replica:
        args = [sys.executable, "-m", "tests.support.replica", "--port", str(self.port)]
        args += ["--name", self.name, "--mode", mode]
        log = self.workdir / f"replica-{self.name}.log"
        self.process = Process(f"replica-{self.name}", args, log).start()
        wait_for(lambda: self._up(), 10, message=f"replica {self.name} listening")
        return self

    def _up(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/__stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def mode(self, mode: str) -> None:
        httpx.get(f"http://127.0.0.1:{self.port}/__mode/{mode}", timeout=2).raise_for_status()

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/__stats", timeout=2).json()
        return data

    def kill(self) -> None:
        assert self.process is not None
        self.process.signal(signal.SIGKILL)
        self.process.stop()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class Mesh:
    cp: ControlPlane
    workdir: Path
    replicas: dict[str, Replica]
    client: Sidecar
    http_proxy: int
    front: Sidecar
    front_port: int
    applied: list[tuple[str, str]] = field(default_factory=list)

    def apply(self, text: str) -> None:
        self.cp.cli("apply", "-f", "-", input=text, check=True)
        for doc in text.split("\n---\n"):
            kind = doc.split("kind:", 1)[1].split("\n", 1)[0].strip()
            name = doc.split("name:", 1)[1].split("\n", 1)[0].strip().strip("}").strip()
            self.applied.append((kind, name))

    def cleanup(self) -> None:
        for kind, name in reversed(self.applied):
            self.cp.cli("delete", kind.lower(), name, check=True)
        self.applied.clear()

    def wait_config(self, sidecar: Sidecar, check: Callable[[str], bool], what: str) -> None:
        """Until the sidecar's config dump (whitespace removed) passes `check`."""
        wait_for(lambda: check("".join(sidecar.get("/config_dump").text.split())), 20, message=what)

    def call(self, host: str, path: str = "/", **headers: str) -> Any:
        return get(self.http_proxy, f"http://{host}{path}", host=host, **headers)

    def cluster_stats(self, sidecar: Sidecar, cluster: str) -> dict[str, Any]:
        stats: dict[str, Any] = sidecar.stats()["clusters"].get(cluster, {})
        return stats


def workload(name: str, app: str, port: int) -> str:
    return f"""apiVersion: gossamer.io/v1alpha1
kind: Workload
metadata: {{name: {name}, labels: {{app: {app}}}}}
spec: {{ports: [{{port: 80, targetPort: {port}}}]}}
---
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("resilience")
    cp = ControlPlane(workdir / "state", "sqlite://").start()
    replicas: dict[str, Replica] = {}
    sidecars: list[Sidecar] = []
    try:
        for name in ("a", "b", "c", "stall", "broken", "front"):
            replicas[name] = Replica(name, free_port(), workdir).start()
        # PERMISSIVE: the tests call the front sidecar's inbound port in plaintext.
        docs = """apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {mtls: {mode: PERMISSIVE}}
---
"""
        docs += "".join(workload(f"echo-{n}", "echo", replicas[n].port) for n in ("a", "b", "c"))
        docs += workload("stall-1", "stall", replicas["stall"].port)
        docs += workload("broken-1", "broken", replicas["broken"].port)
        cp.cli("apply", "-f", "-", input=docs.rstrip("-\n"), check=True)
        http_proxy = free_port()
        client = Sidecar(
            workdir,
            None,
            "--xds",
            cp.xds,
            "--id",
            "client-1",
            "--service",
            "client",
            "--http-proxy-port",
            str(http_proxy),
            name="client",
            env=cp.env(),  # finds the admin token: mints a data-plane token
        ).start()
        sidecars.append(client)
        front_port = free_port()
        front = Sidecar(
            workdir,
            None,
            "--xds",
            cp.xds,
            "--id",
            "front-1",
            "--service",
            "front",
            "--inbound",
            f"80:{replicas['front'].port}:{front_port}",
            name="front",
            env=cp.env(),
        ).start()
        sidecars.append(front)
        m = Mesh(cp, workdir, replicas, client, http_proxy, front, front_port)

        def echo_ready() -> bool:
            seen = {m.call("echo").json().get("server") for _ in range(6)}
            return seen == {"a", "b", "c"}

        wait_for(echo_ready, 20, message="traffic to the three echo replicas")
        wait_for(lambda: get(front_port, "/").status == 200, 20, message="front's inbound")
        yield m
    finally:
        for sidecar in sidecars:
            sidecar.stop()
        cp.stop()
        for replica in replicas.values():
            replica.stop()


@pytest.fixture
def policies(mesh: Mesh) -> Iterator[Mesh]:
    try:
        yield mesh
    finally:
        mesh.cleanup()
        for replica in mesh.replicas.values():
            if replica.process is None or not replica.process.alive():
                replica.start()
            else:
                replica.mode("ok")


def run_load(mesh: Mesh, seconds: float, progress: Path) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.support.loadgen", "--port", str(mesh.http_proxy)]
    args += ["--host", "echo:80", "--path", "/load", "--proxy", "--connections", "8"]
    args += ["--duration", str(seconds), "--max-requests", "400000"]
    args += ["--progress", str(progress)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def progress(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def test_killed_replica_during_load_gives_no_client_errors(policies: Mesh) -> None:
    mesh = policies
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: RetryPolicy
metadata: {name: echo-retries}
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Service, name: echo}
    default:
      numRetries: 3
      retryOn: [connect-failure, reset, gateway-error]
      backoff: {baseInterval: 5ms, maxInterval: 50ms}""")
    mesh.wait_config(mesh.client, lambda t: '"num_retries":3' in t, "the retry policy")
    path = mesh.workdir / "kill-progress.json"
    load = run_load(mesh, 20, path)
    try:
        wait_for(lambda: progress(path).get("requests", 0) > 500, 15, message="load running")
        wait_for(lambda: {"a", "b", "c"} <= set(progress(path).get("recent", {})), 10)
        mesh.replicas["c"].kill()
        # Afterwards only a and b answer, and the client never saw an error.
        wait_for(
            lambda: (
                bool(progress(path).get("recent")) and set(progress(path)["recent"]) <= {"a", "b"}
            ),
            10,
            message="traffic only to the live replicas",
        )
    finally:
        out, _ = load.communicate(timeout=60)
    result = json.loads(out)
    assert result["requests"] > 1000, result
    assert result["errors"] == 0, result["error_kinds"]
    assert set(result["servers"]) == {"a", "b", "c"}


def test_failing_replica_is_ejected_within_ten_requests_and_returns(policies: Mesh) -> None:
    mesh = policies
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: echo-outliers}
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Service, name: echo}
    default:
      outlierDetection:
        consecutive5xx: 3
        interval: 1s
        baseEjectionTime: 2s
        maxEjectionPercent: 50""")
    mesh.wait_config(mesh.client, lambda t: '"consecutive_5xx":3' in t, "outlier detection")
    mesh.replicas["b"].mode("fail")
    statuses = [mesh.call("echo").status for _ in range(10)]
    assert statuses.count(500) <= 3, statuses  # ejected after its third failure
    after = [mesh.call("echo") for _ in range(30)]
    assert all(r.status == 200 for r in after)
    assert {r.json()["server"] for r in after} == {"a", "c"}
    assert mesh.cluster_stats(mesh.client, "echo.default:80")["outlier_ejections"] >= 1
    # Recovered: back in rotation once its ejection is over (2 s).
    mesh.replicas["b"].mode("ok")
    wait_for(
        lambda: "b" in {mesh.call("echo").json().get("server") for _ in range(6)},
        10,
        message="b back in rotation",
    )


def _send(port: int, host: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def test_stalled_upstream_times_out_and_the_breaker_fails_fast(policies: Mesh) -> None:
    mesh = policies
    mesh.replicas["stall"].mode("stall")
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: TimeoutPolicy
metadata: {name: stall-timeouts}
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Service, name: stall}
    default: {requestTimeout: 1500ms}
---
apiVersion: gossamer.io/v1alpha1
kind: CircuitBreakerPolicy
metadata: {name: stall-limits}
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Service, name: stall}
    default:
      connectionLimits: {maxPendingRequests: 10}""")
    mesh.wait_config(mesh.client, lambda t: '"max_pending_requests":10' in t, "the breaker")
    mesh.wait_config(mesh.client, lambda t: '"timeout":1.5' in t, "the timeout")
    started = time.monotonic()
    r = mesh.call("stall")
    took = time.monotonic() - started
    assert r.status == 504 and r.headers["x-gossamer-flags"] == "UT"
    assert 1.4 <= took < 2.0, took  # the limit, within one timer tick
    # Ten requests stall upstream; the eleventh is refused at once.
    socks = [_send(mesh.http_proxy, "stall") for _ in range(10)]
    try:
        wait_for(
            lambda: (
                mesh.cluster_stats(mesh.client, "stall.default:80").get("upstream_rq_pending") == 10
            ),
            5,
            message="ten requests pending",
        )
        started = time.monotonic()
        r = mesh.call("stall")
        took = time.monotonic() - started
        assert r.status == 503 and took < 0.2, (r.status, took)
        assert r.headers["x-gossamer-flags"] == "UO"
        assert r.headers["x-gossamer-overloaded"] == "true"
        for sock in socks:
            assert read_response(sock, timeout=5).status == 504
    finally:
        for sock in socks:
            sock.close()
    stats = mesh.cluster_stats(mesh.client, "stall.default:80")
    assert stats["circuit_breaker_overflow"] >= 1 and stats["upstream_rq_pending"] == 0


def test_retries_of_a_permanently_failing_upstream_stay_within_the_budget(
    policies: Mesh,
) -> None:
    mesh = policies
    broken = mesh.replicas["broken"]
    broken.mode("fail")
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: RetryPolicy
metadata: {name: broken-retries}
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Service, name: broken}
    default:
      numRetries: 3
      retryOn: [5xx]
      backoff: {baseInterval: 1ms, maxInterval: 2ms}
      budget: {percent: 20, minRetriesPerSecond: 10, window: 10s}""")
    mesh.wait_config(mesh.client, lambda t: '"retry_on":["5xx"]' in t, "the retry policy")
    before = broken.stats()["requests"]
    sent, started = 0, time.monotonic()
    while time.monotonic() - started < 5.0 and sent < 400:  # ~50 requests/s for 5 s
        assert mesh.call("broken").status == 500
        sent += 1
        time.sleep(max(0.0, started + sent / 50 - time.monotonic()))
    upstream = broken.stats()["requests"] - before
    # Without a budget: 4 x sent. With it: sent + 20% + 10/s over the 10 s window.
    assert sent < upstream <= sent * 1.2 + 10 * 10 + 2, (sent, upstream)
    stats = mesh.cluster_stats(mesh.client, "broken.default:80")
    assert stats["retry_budget_exhausted"] > 0 and stats["upstream_rq_retry"] == upstream - sent
    assert {"2", "3", "4"} <= set(broken.stats()["attempts"])  # x-gossamer-attempt
    prom = mesh.client.get("/stats/prometheus").text
    assert 'gossamer_retries_total{cluster="broken.default:80"}' in prom


def test_fault_injection_aborts_half_the_requests(policies: Mesh) -> None:
    mesh = policies
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: FaultInjectionPolicy
metadata: {name: front-chaos}
spec:
  targetRef: {kind: Service, name: front}
  from:
  - targetRef: {kind: Mesh}
    default:
      abort: {httpStatus: 503, percentage: 50}""")
    mesh.wait_config(mesh.front, lambda t: '"abort_status":503' in t, "the fault filter")
    n = 400
    results = [get(mesh.front_port, "/") for _ in range(n)]
    aborted = [r for r in results if r.status == 503]
    assert all(r.headers["x-gossamer-flags"] == "FI" for r in aborted)
    assert all(r.status in (200, 503) for r in results)
    # Binomial(400, 0.5): sd = 10; +-40 is four of them.
    assert abs(len(aborted) - n / 2) <= 40, len(aborted)


def test_fault_injection_only_for_matching_requests_with_delay(policies: Mesh) -> None:
    mesh = policies
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: FaultInjectionPolicy
metadata: {name: front-chaos-gated}
spec:
  targetRef: {kind: Service, name: front}
  from:
  - targetRef: {kind: Mesh}
    default:
      delay: {value: 300ms, percentage: 100}
      headers: [{name: x-chaos, value: "on"}]""")
    mesh.wait_config(mesh.front, lambda t: '"delay":0.3' in t, "the fault filter")
    started = time.monotonic()
    assert get(mesh.front_port, "/").status == 200
    assert time.monotonic() - started < 0.25
    started = time.monotonic()
    assert get(mesh.front_port, "/", X_Chaos="on").status == 200
    assert time.monotonic() - started >= 0.3


def test_rate_limit_admits_ten_per_second(policies: Mesh) -> None:
    mesh = policies
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: front-limit}
spec:
  targetRef: {kind: Service, name: front}
  from:
  - targetRef: {kind: Mesh}
    default:
      local:
        http: {requests: 10, interval: 1s}""")
    mesh.wait_config(mesh.front, lambda t: '"max_tokens":10' in t, "the rate limit")
    time.sleep(1.1)  # a full bucket: the policy's own state, not a synchronisation
    seconds = 4
    args = [sys.executable, "-m", "tests.support.loadgen", "--port", str(mesh.front_port)]
    args += ["--connections", "4", "--duration", str(seconds), "--path", "/"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True).stdout
    result = json.loads(out)
    admitted = result["statuses"].get("200", 0)
    limited = result["statuses"].get("429", 0)
    assert limited > 100, result  # the client went well over the limit
    # A full bucket (10), then 10 per second: 10 +- 1 per second after the burst.
    rate = (admitted - 10) / seconds
    assert 9 <= rate <= 11, (admitted, rate)
    r = get(mesh.front_port, "/")
    if r.status == 200:
        r = next(x for x in (get(mesh.front_port, "/") for _ in range(20)) if x.status == 429)
    assert r.headers["x-gossamer-flags"] == "RL"
    assert 1 <= int(r.headers["retry-after"]) <= 1
    assert r.headers["x-ratelimit-limit"].startswith("10")
    assert r.headers["x-ratelimit-remaining"] == "0"


def test_active_health_checks_take_a_failing_replica_out_and_report_it(policies: Mesh) -> None:
    mesh = policies
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: HealthCheckPolicy
metadata: {name: echo-health}
spec:
  targetRef: {kind: Mesh}
  to:
  - targetRef: {kind: Service, name: echo}
    default:
      interval: 300ms
      timeout: 200ms
      unhealthyThreshold: 2
      healthyThreshold: 1
      http: {path: /healthz}""")
    mesh.wait_config(mesh.client, lambda t: '"path":"/healthz"' in t, "the health check")
    b = mesh.replicas["b"]
    wait_for(lambda: b.stats()["requests"] > 0, 5, message="checks reaching b")
    b.mode("fail")  # no client request goes to b: the checks alone find it out

    def endpoints() -> dict[str, dict[str, Any]]:
        out = mesh.cp.cli("get", "endpoints", "-o", "json", check=True).stdout
        return {e["workload"]: e for e in json.loads(out) if e["service"] == "echo"}

    wait_for(lambda: endpoints()["echo-b"]["health"] == "failing", 10, message="b reported")
    # Every sidecar that may call echo checks it (front-1 too: the policy is mesh-wide).
    assert endpoints()["echo-b"]["checks"]["client-1"] == "fail"
    assert endpoints()["echo-a"]["health"] == "healthy"
    table = mesh.cp.cli("get", "endpoints", check=True).stdout
    assert "FAILING" in table and "failing for client-1" in table
    assert {mesh.call("echo").json()["server"] for _ in range(30)} == {"a", "c"}
    b.mode("ok")
    wait_for(lambda: endpoints()["echo-b"]["health"] == "healthy", 10, message="b recovered")
    wait_for(
        lambda: "b" in {mesh.call("echo").json()["server"] for _ in range(6)},
        5,
        message="b back in rotation",
    )


def test_locality_prefers_the_callers_zone_and_fails_over_in_order(policies: Mesh) -> None:
    mesh = policies
    docs = []
    for name, zone in (("a", "a"), ("b", "b"), ("c", "c")):
        docs.append(f"""apiVersion: gossamer.io/v1alpha1
kind: Workload
metadata:
  name: zoned-{name}
  labels: {{app: zoned}}
spec: {{zone: {zone}, ports: [{{port: 80, targetPort: {mesh.replicas[name].port}}}]}}""")
    docs.append("""apiVersion: gossamer.io/v1alpha1
kind: LoadBalancerPolicy
metadata: {name: zoned-locality}
spec:
  to:
  - targetRef: {kind: Service, name: zoned}
    default:
      localityAware:
        failover: [{toZones: [c]}]
---
apiVersion: gossamer.io/v1alpha1
kind: HealthCheckPolicy
metadata: {name: zoned-health}
spec:
  to:
  - targetRef: {kind: Service, name: zoned}
    default: {interval: 300ms, timeout: 200ms, unhealthyThreshold: 1, http: {path: /}}""")
    mesh.apply("\n---\n".join(docs))
    port = free_port()
    client = Sidecar(
        mesh.workdir,
        None,
        *("--xds", mesh.cp.xds, "--id", "zoned-client", "--service", "zclient"),
        *("--zone", "a", "--http-proxy-port", str(port)),
        name="zoned-client",
        env=mesh.cp.env(),
    ).start()
    try:
        mesh.wait_config(client, lambda t: '"zone_order":["a","c"]' in t, "the zone order")

        def servers(n: int = 12) -> set[str]:
            return {get(port, "http://zoned/", host="zoned").json()["server"] for _ in range(n)}

        wait_for(lambda: servers() == {"a"}, 10, message="only the caller's zone")
        mesh.replicas["a"].mode("fail")
        wait_for(lambda: servers() == {"c"}, 10, message="failover to zone c first")
        mesh.replicas["c"].mode("fail")
        wait_for(lambda: servers() == {"b"}, 10, message="then to the other zones")
        mesh.replicas["a"].mode("ok")
        wait_for(lambda: servers() == {"a"}, 10, message="back to the caller's zone")
    finally:
        client.stop()


def _post(port: int, host: str, body: bytes, chunked: bool = False) -> Any:
    head = f"POST http://{host}/upload HTTP/1.1\r\nHost: {host}\r\n"
    if chunked:
        half = len(body) // 2
        parts = [body[:half], body[half:]]
        data = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
        raw = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + data
    else:
        raw = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return request(port, raw)


def test_retries_replay_request_bodies_within_the_limit(policies: Mesh) -> None:
    mesh = policies
    broken = mesh.replicas["broken"]
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: RetryPolicy
metadata: {name: broken-writes}
spec:
  to:
  - targetRef: {kind: Service, name: broken}
    default:
      numRetries: 2
      retryOn: [5xx]
      retryNonIdempotent: true
      maxBodyBytes: 4096
      backoff: {baseInterval: 1ms}""")
    mesh.wait_config(mesh.client, lambda t: '"max_body_bytes":4096' in t, "the retry policy")
    broken.mode("flaky")  # every other request answers 503: each first try fails
    body = bytes(range(256)) * 12  # 3,072 bytes
    digest = hashlib.sha256(body).hexdigest()
    for chunked in (False, True):
        r = _post(mesh.http_proxy, "broken", body, chunked)
        assert r.status == 200, (chunked, r.status, r.body)
        assert r.json()["body"] == digest and r.json()["attempt"] == "2"
    # Over maxBodyBytes: not kept for replay, so the failed try is the answer.
    r = _post(mesh.http_proxy, "broken", body * 2)
    assert r.status == 503


def test_per_try_timeout_retries_a_stalled_try(policies: Mesh) -> None:
    mesh = policies
    stall = mesh.replicas["stall"]
    stall.mode("stall")
    mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: RetryPolicy
metadata: {name: stall-tries}
spec:
  to:
  - targetRef: {kind: Service, name: stall}
    default:
      numRetries: 2
      perTryTimeout: 300ms
      retryOn: [gateway-error]
      backoff: {baseInterval: 1ms}""")
    mesh.wait_config(mesh.client, lambda t: '"per_try_timeout":0.3' in t, "the per-try timeout")
    before = stall.stats()["requests"]
    started = time.monotonic()
    r = mesh.call("stall")
    took = time.monotonic() - started
    assert r.status == 504 and r.headers["x-gossamer-flags"] == "UT"
    assert r.body == b"upstream per-try timeout\n"
    assert 0.9 <= took < 1.5, took  # three tries of 0.3 s (+ one timer tick each)
    assert stall.stats()["requests"] - before == 3


def test_tcp_connection_rate_limit(policies: Mesh) -> None:
    mesh = policies
    listen = free_port()
    sidecar = Sidecar(
        mesh.workdir,
        None,
        *("--xds", mesh.cp.xds, "--id", "tcpfront-1", "--service", "tcpfront"),
        *("--inbound", f"80:{mesh.replicas['front'].port}:{listen}:tcp"),
        name="tcpfront",
        env=mesh.cp.env(),
    ).start()
    try:
        mesh.apply("""apiVersion: gossamer.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: tcpfront-limit}
spec:
  targetRef: {kind: Service, name: tcpfront}
  from:
  - targetRef: {kind: Mesh}
    default:
      local:
        tcp: {connections: 5, interval: 10s}""")
        mesh.wait_config(sidecar, lambda t: '"connection_limit":{"max_tokens":5' in t, "the limit")
        outcomes = []
        for _ in range(8):  # one request per connection, within one 10 s period
            try:
                outcomes.append(get(listen, "/").status)
            except (OSError, ValueError):
                outcomes.append(0)  # closed without an answer
        assert outcomes == [200] * 5 + [0] * 3, outcomes
        flags = sidecar.stats()["listeners"]["inbound:" + str(listen)]["response_flags"]
        assert flags.get("RL") == 3
    finally:
        sidecar.stop()
