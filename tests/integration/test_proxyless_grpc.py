"""A real grpcio proxyless client (`xds:///greeter`) against a running control plane:
a 90/10 split observed, a change to 50/50 observed without restarting the client, and
a config the client rejects shows up as a NACK in `gossamer get proxies`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.cli.bootstrap import grpc_bootstrap
from tests.support import greeter
from tests.support.processes import ControlPlane
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def resources(v1_port: int, v2_port: int, w1: int, w2: int, path_regex: str = "") -> str:
    match = (
        f"\n    matches: [{{method: {{type: RegularExpression, service: '{path_regex}'}}}}]"
        if path_regex
        else ""
    )
    return f"""
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {{name: greeter}}
spec: {{selector: {{app: greeter}}, ports: [{{port: 50051, protocol: grpc}}]}}
---
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {{name: greeter-v1}}
spec: {{selector: {{app: greeter, version: v1}}, ports: [{{port: 50051, protocol: grpc}}]}}
---
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {{name: greeter-v2}}
spec: {{selector: {{app: greeter, version: v2}}, ports: [{{port: 50051, protocol: grpc}}]}}
---
apiVersion: gossamer.io/v1alpha1
kind: Workload
metadata: {{name: greeter-v1, labels: {{app: greeter, version: v1}}}}
spec: {{ports: [{{port: 50051, targetPort: {v1_port}, protocol: grpc}}]}}
---
apiVersion: gossamer.io/v1alpha1
kind: Workload
metadata: {{name: greeter-v2, labels: {{app: greeter, version: v2}}}}
spec: {{ports: [{{port: 50051, targetPort: {v2_port}, protocol: grpc}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: greeter}}
spec:
  parentRefs: [{{group: "", kind: Service, name: greeter, port: 50051}}]
  rules:
  - backendRefs:
    - {{name: greeter-v1, port: 50051, weight: {w1}}}
    - {{name: greeter-v2, port: 50051, weight: {w2}}}{match}
"""


class Client:
    def __init__(self, xds: str, node_id: str) -> None:
        env = {
            **os.environ,
            "GRPC_XDS_BOOTSTRAP_CONFIG": json.dumps(grpc_bootstrap(xds, node_id, "default")),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.greeter", "xds:///greeter"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=Path(__file__).parent.parent.parent,
        )

    def calls(self, n: int) -> dict[str, int]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        counts: dict[str, int] = json.loads(self.proc.stdout.readline())
        return counts

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def greeters() -> Iterator[tuple[int, int]]:
    s1, p1 = greeter.serve(b"v1")
    s2, p2 = greeter.serve(b"v2")
    yield p1, p2
    s1.stop(None)
    s2.stop(None)


def test_split_followed_changed_and_nack_reported(
    control_plane: ControlPlane, greeters: tuple[int, int], tmp_path: Path
) -> None:
    v1, v2 = greeters
    manifest = tmp_path / "greeter.yaml"
    manifest.write_text(resources(v1, v2, 90, 10))
    control_plane.cli("apply", "-f", str(manifest), check=True)
    xds = json.loads((control_plane.state_dir / "controlplane.json").read_text())["xds"]
    client = Client(xds, "grpc-client-1")
    try:
        counts = client.calls(1000)
        assert set(counts) == {"v1", "v2"}, counts
        # 90/10 over 1,000 calls: sd ≈ 9.5, so ±50 is over 5 sd.
        assert 850 <= counts["v1"] <= 950, counts

        manifest.write_text(resources(v1, v2, 50, 50))
        control_plane.cli("apply", "-f", str(manifest), check=True)

        def even() -> dict[str, int] | None:
            c = client.calls(400)
            return c if 150 <= c.get("v1", 0) <= 250 and c.get("v2", 0) >= 150 else None

        wait_for(even, timeout=20, interval=0, message="a 50/50 split")

        # Python's re accepts a lookahead; the client's RE2 does not: it NACKs the route.
        manifest.write_text(
            resources(v1, v2, 50, 50, path_regex="(?=helloworld)\\\\w+\\\\.Greeter")
        )
        control_plane.cli("apply", "-f", str(manifest), check=True)

        def nacked() -> str | None:
            out = control_plane.cli("get", "proxies", "-o", "json", check=True).stdout
            proxy = next(p for p in json.loads(out) if p["name"] == "grpc-client-1")
            return proxy["nack"]["error"] if proxy["state"] == "nacking" else None

        error = wait_for(nacked, timeout=20, message="the NACK in `gossamer get proxies`")
        assert "regex" in error.lower() or "RE2" in error, error
        table = control_plane.cli("get", "proxies", check=True).stdout
        assert "NACKING" in table and "grpc-client-1" in table
        # The client keeps its last good config: calls still work, still split.
        counts = client.calls(200)
        assert counts.get("v1", 0) + counts.get("v2", 0) == 200, counts
    finally:
        client.close()


def test_clients_keep_their_config_across_a_control_plane_restart(
    control_plane: ControlPlane, greeters: tuple[int, int], tmp_path: Path
) -> None:
    v1, v2 = greeters
    manifest = tmp_path / "greeter.yaml"
    manifest.write_text(resources(v1, v2, 100, 0))
    control_plane.cli("apply", "-f", str(manifest), check=True)
    client = Client(control_plane.xds, "grpc-client-2")
    try:
        assert client.calls(50) == {"v1": 50}
        control_plane.kill()
        assert client.calls(50) == {"v1": 50}  # the last config keeps working
        control_plane.start()

        def reconnected() -> bool:
            out = control_plane.cli("get", "proxies", "-o", "json", check=True).stdout
            return any(
                p["name"] == "grpc-client-2" and p["state"] == "connected" and p["types"]
                for p in json.loads(out)
            )

        wait_for(reconnected, timeout=30, message="the client to reconnect")
        assert client.calls(50) == {"v1": 50}  # the same config, nothing empty between
        manifest.write_text(resources(v1, v2, 0, 100))
        control_plane.cli("apply", "-f", str(manifest), check=True)

        def moved() -> bool:
            return client.calls(20) == {"v2": 20}

        wait_for(moved, timeout=30, interval=0.1, message="the client to follow the new route")
    finally:
        client.close()


def test_proxyless_client_retries_as_the_retry_policy_says(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    server, port = greeter.serve(b"ok", fail_first=2)  # 2 of every 3 calls: UNAVAILABLE
    manifest = tmp_path / "greeter.yaml"
    manifest.write_text(resources(port, port, 100, 0))
    control_plane.cli("apply", "-f", str(manifest), check=True)
    client = Client(control_plane.xds, "grpc-client-3")
    try:
        counts = client.calls(30)
        assert counts.get("error:UNAVAILABLE", 0) >= 15, counts  # no retries yet
        control_plane.cli(
            "apply",
            "-f",
            "-",
            input="""apiVersion: gossamer.io/v1alpha1
kind: RetryPolicy
metadata: {name: greeter-retries}
spec:
  to:
  - targetRef: {kind: Service, name: greeter}
    default:
      numRetries: 2
      retryOn: [unavailable]
      backoff: {baseInterval: 5ms, maxInterval: 20ms}""",
            check=True,
        )
        wait_for(lambda: client.calls(30) == {"ok": 30}, 20, message="gRPC's own retries")
        out = control_plane.cli("get", "proxies", "-o", "json", check=True).stdout
        proxy = next(p for p in json.loads(out) if p["name"] == "grpc-client-3")
        assert proxy["state"] == "connected" and proxy["nack"] is None
    finally:
        client.close()
        control_plane.cli("delete", "retrypolicy", "greeter-retries")
        server.stop(None)
