"""Authorization end to end: a real control plane pushes TrafficPermissions and the Mesh
default to real sidecars, which enforce them on their inbound listeners (HTTP and TCP).

Callers here reach the inbound ports in plaintext, so they have no identity: the
policies name callers by `Mesh` (everyone). Identity-based decisions (ServiceAccount,
Namespace) are covered with identities given directly in tests/unit/proxy/filters and
over mTLS in the bookstore scenario.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import ControlPlane
from tests.support.proxy import Sidecar, TcpEcho, Upstream, closed, free_port, get, request
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

DENY_BY_DEFAULT = """
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {defaultAccess: deny}
"""
ALLOW_API = """
apiVersion: gossamer.io/v1alpha1
kind: TrafficPermission
metadata: {name: backend-api}
spec:
  targetRef: {kind: Service, name: backend}
  from:
  - targetRef: {kind: Mesh}
    default:
      action: ALLOW
      rules: [{methods: [GET], paths: [{type: PathPrefix, value: /api}]}]
  - targetRef: {kind: Mesh}
    default:
      action: DENY
      rules: [{paths: [{type: Exact, value: /api/secret}]}]
"""
SHADOW = """
apiVersion: gossamer.io/v1alpha1
kind: TrafficPermission
metadata: {name: try-no-books}
spec:
  targetRef: {kind: Service, name: backend}
  mode: shadow
  from:
  - targetRef: {kind: Mesh}
    default:
      action: DENY
      rules: [{paths: [{type: PathPrefix, value: /api/books}]}]
"""
ALLOW_TCP = """
apiVersion: gossamer.io/v1alpha1
kind: TrafficPermission
metadata: {name: echo-open}
spec:
  targetRef: {kind: Service, name: echo}
  from:
  - targetRef: {kind: Mesh}
    default: {action: ALLOW}
"""


@dataclass
class Mesh:
    cp: ControlPlane
    app: Upstream
    echo: TcpEcho
    backend: Sidecar
    echo_sidecar: Sidecar
    http_port: int
    tcp_port: int

    def apply(self, text: str) -> None:
        self.cp.cli("apply", "-f", "-", input=text, check=True)

    def status(self, path: str = "/api/x", method: str = "GET") -> int:
        raw = f"{method} {path} HTTP/1.1\r\nHost: backend\r\ncontent-length: 0\r\n\r\n"
        return request(self.http_port, raw.encode()).status

    def metric(self, name: str) -> float:
        text = self.backend.get("/stats/prometheus").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") and 'destination="default/backend"' in line
        )

    def echo_works(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.tcp_port), 3) as s:
            s.settimeout(3)
            try:
                s.sendall(b"ping\n")
                data = b""
                while b"ping" not in data:
                    chunk = s.recv(100)
                    if not chunk:
                        return False
                    data += chunk
                return True
            except (ConnectionError, TimeoutError):
                return False


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir: Path = tmp_path_factory.mktemp("authz")
    cp = ControlPlane(workdir / "state", "sqlite://").start()
    app = Upstream("backend").start()
    echo = TcpEcho("echo").start()
    http_port, tcp_port = free_port(), free_port()
    sidecars: list[Sidecar] = []
    try:
        backend = Sidecar(
            workdir,
            None,
            *("--xds", cp.xds, "--id", "backend-1", "--service", "backend"),
            *("--inbound", f"8080:{app.port}:{http_port}"),
            name="backend",
        ).start()
        sidecars.append(backend)
        echo_sidecar = Sidecar(
            workdir,
            None,
            *("--xds", cp.xds, "--id", "echo-1", "--service", "echo"),
            *("--inbound", f"9000:{echo.port}:{tcp_port}:tcp"),
            name="echo",
        ).start()
        sidecars.append(echo_sidecar)
        m = Mesh(cp, app, echo, backend, echo_sidecar, http_port, tcp_port)
        wait_for(lambda: m.status() == 200, 20, message="backend reachable through its sidecar")
        yield m
    finally:
        for sidecar in sidecars:
            sidecar.stop()
        cp.stop()
        app.stop()
        echo.stop()


def test_default_allow_without_policies(mesh: Mesh) -> None:
    assert mesh.status("/anything", "DELETE") == 200
    assert mesh.echo_works()


def test_default_deny_refuses_with_a_reason_and_counts(mesh: Mesh) -> None:
    mesh.apply(DENY_BY_DEFAULT)
    wait_for(lambda: mesh.status() == 403, 10, message="default deny enforced")
    before_app = mesh.app.requests
    before = mesh.metric("gossamer_authz_denied_total")
    r = get(mesh.http_port, "/api/x", host="backend")
    assert r.status == 403
    assert r.headers["x-gossamer-authz"] == "denied policy=default-deny"
    assert r.body.startswith(b"RBAC: access denied for an unauthenticated caller GET /api/x")
    assert b"denies by default" in r.body
    assert mesh.app.requests == before_app  # never reached the app
    assert mesh.metric("gossamer_authz_denied_total") == before + 1
    # TCP: the connection is closed before a byte reaches the app.
    accepted = mesh.echo.accepted
    with socket.create_connection(("127.0.0.1", mesh.tcp_port), 3) as s:
        assert closed(s, 3)
    assert mesh.echo.accepted == accepted


def test_allow_rules_and_deny_wins(mesh: Mesh) -> None:
    mesh.apply(ALLOW_API)
    wait_for(lambda: mesh.status("/api/x") == 200, 10, message="allow rule enforced")
    assert mesh.status("/api") == 200
    assert mesh.status("/apis") == 403  # PathPrefix matches whole segments
    assert mesh.status("/api/x", "POST") == 403
    r = get(mesh.http_port, "/api/secret", host="backend")
    assert r.status == 403
    assert r.headers["x-gossamer-authz"] == "denied policy=default/backend-api"


def test_shadow_counts_but_does_not_deny(mesh: Mesh) -> None:
    mesh.apply(SHADOW)

    def shadowed() -> bool:
        return (
            mesh.status("/api/books") == 200
            and mesh.metric("gossamer_authz_shadow_denied_total") > 0
        )

    wait_for(shadowed, 10, message="shadow denial counted")
    before = mesh.metric("gossamer_authz_shadow_denied_total")
    assert mesh.status("/api/books/1") == 200
    assert mesh.metric("gossamer_authz_shadow_denied_total") == before + 1
    assert mesh.status("/api/other") == 200
    assert mesh.metric("gossamer_authz_shadow_denied_total") == before + 1
    assert "shadow authz would deny" in mesh.backend.output()


def test_tcp_allowed_by_permission(mesh: Mesh) -> None:
    mesh.apply(ALLOW_TCP)
    wait_for(mesh.echo_works, 10, message="TCP allowed")
    # Deleting the permission closes the port again (default deny).
    mesh.cp.cli("delete", "trafficpermission", "echo-open", check=True)
    wait_for(lambda: not mesh.echo_works(), 10, message="TCP denied again")
