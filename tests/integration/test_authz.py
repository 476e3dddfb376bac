"""Authorization end to end: a real control plane pushes TrafficPermissions and the Mesh
default to real sidecars, which enforce them on their inbound listeners (HTTP and TCP) on
the identity proven by mTLS. Two client sidecars call in: bookbuyer (namespace
bookbuyer) and bookthief (namespace bookthief), through explicit outbound ports.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import ControlPlane
from tests.support.proxy import Sidecar, TcpEcho, Upstream, free_port, get, request
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

BUYER = "spiffe://gossamer.local/ns/bookbuyer/sa/bookbuyer"
THIEF = "spiffe://gossamer.local/ns/bookthief/sa/bookthief"
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
  - targetRef: {kind: Namespace, name: bookbuyer}
    default:
      action: ALLOW
      rules: [{methods: [GET], paths: [{type: PathPrefix, value: /api}]}]
  - targetRef: {kind: Mesh}
    default:
      action: DENY
      rules: [{paths: [{type: Exact, value: /api/secret}]}]
  - targetRef: {kind: ServiceAccount, name: bookthief, namespace: bookthief}
    default: {action: DENY}
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
metadata: {name: echo-buyer}
spec:
  targetRef: {kind: Service, name: echo}
  from:
  - targetRef: {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}
    default: {action: ALLOW}
"""


@dataclass
class Client:
    """A client sidecar: its explicit outbound ports to backend (HTTP) and echo (TCP)."""

    sidecar: Sidecar
    http: int
    tcp: int


@dataclass
class Mesh:
    cp: ControlPlane
    app: Upstream
    echo: TcpEcho
    backend: Sidecar
    buyer: Client
    thief: Client

    def apply(self, text: str) -> None:
        self.cp.cli("apply", "-f", "-", input=text, check=True)

    def status(self, client: Client, path: str = "/api/x", method: str = "GET") -> int:
        raw = f"{method} {path} HTTP/1.1\r\nHost: backend\r\ncontent-length: 0\r\n\r\n"
        return request(client.http, raw.encode()).status

    def metric(self, name: str, source: str) -> float:
        text = self.backend.get("/stats/prometheus").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{")
            and 'destination="default/backend"' in line
            and f'source="{source}"' in line
        )

    @staticmethod
    def echo_works(client: Client) -> bool:
        with socket.create_connection(("127.0.0.1", client.tcp), 3) as s:
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
    sidecars: list[Sidecar] = []

    def sidecar(name: str, *args: str) -> Sidecar:
        # cp.env(): the sidecar finds the admin token and mints its data-plane token.
        s = Sidecar(
            workdir, None, "--xds", cp.xds, "--id", name, *args, name=name, env=cp.env()
        ).start()
        sidecars.append(s)
        return s

    def client(name: str) -> Client:
        http, tcp = free_port(), free_port()
        s = sidecar(
            name,
            *("--namespace", name, "--service", name),
            *("--outbound", f"backend.default:8080={http}"),
            *("--outbound", f"echo.default:9000={tcp}"),
        )
        return Client(s, http, tcp)

    try:
        backend = sidecar(
            "backend", "--service", "backend", "--inbound", f"8080:{app.port}:{free_port()}"
        )
        sidecar("echo", "--service", "echo", "--inbound", f"9000:{echo.port}:{free_port()}:tcp")
        m = Mesh(cp, app, echo, backend, client("bookbuyer"), client("bookthief"))
        for c in (m.buyer, m.thief):
            wait_for(lambda c=c: m.status(c) == 200, 30, message="backend reachable over mTLS")
        yield m
    finally:
        for s in sidecars:
            s.stop()
        cp.stop()
        app.stop()
        echo.stop()


def test_default_allow_without_policies(mesh: Mesh) -> None:
    assert mesh.status(mesh.thief, "/anything", "DELETE") == 200
    wait_for(lambda: mesh.echo_works(mesh.thief), 10, message="TCP through mTLS")


def test_default_deny_refuses_with_a_reason_and_counts(mesh: Mesh) -> None:
    mesh.apply(DENY_BY_DEFAULT)
    wait_for(lambda: mesh.status(mesh.buyer) == 403, 10, message="default deny enforced")
    before_app = mesh.app.requests
    before = mesh.metric("gossamer_authz_denied_total", BUYER)
    r = get(mesh.buyer.http, "/api/x", host="backend")
    assert r.status == 403
    assert r.headers["x-gossamer-authz"] == "denied policy=default-deny"
    assert r.body.startswith(f"RBAC: access denied for {BUYER} GET /api/x".encode())
    assert b"denies by default" in r.body
    assert mesh.app.requests == before_app  # never reached the app
    assert mesh.metric("gossamer_authz_denied_total", BUYER) == before + 1
    # TCP: the connection is closed before a byte reaches the app.
    accepted = mesh.echo.accepted
    wait_for(lambda: not mesh.echo_works(mesh.buyer), 10, message="TCP denied")
    assert mesh.echo.accepted == accepted


def test_allow_rules_by_identity_and_deny_wins(mesh: Mesh) -> None:
    mesh.apply(ALLOW_API)
    wait_for(lambda: mesh.status(mesh.buyer) == 200, 10, message="allow rule enforced")
    assert mesh.status(mesh.buyer, "/api") == 200
    assert mesh.status(mesh.buyer, "/apis") == 403  # PathPrefix matches whole segments
    assert mesh.status(mesh.buyer, "/api/x", "POST") == 403
    r = get(mesh.buyer.http, "/api/secret", host="backend")
    assert r.status == 403
    assert r.headers["x-gossamer-authz"] == "denied policy=default/backend-api"
    r = get(mesh.thief.http, "/api/x", host="backend")
    assert r.status == 403
    assert r.headers["x-gossamer-authz"] == "denied policy=default/backend-api"
    assert mesh.metric("gossamer_authz_denied_total", THIEF) >= 1


def test_shadow_counts_but_does_not_deny(mesh: Mesh) -> None:
    mesh.apply(SHADOW)

    def shadowed() -> bool:
        return (
            mesh.status(mesh.buyer, "/api/books") == 200
            and mesh.metric("gossamer_authz_shadow_denied_total", BUYER) > 0
        )

    wait_for(shadowed, 10, message="shadow denial counted")
    before = mesh.metric("gossamer_authz_shadow_denied_total", BUYER)
    assert mesh.status(mesh.buyer, "/api/books/1") == 200
    assert mesh.metric("gossamer_authz_shadow_denied_total", BUYER) == before + 1
    assert mesh.status(mesh.buyer, "/api/other") == 200
    assert mesh.metric("gossamer_authz_shadow_denied_total", BUYER) == before + 1
    assert "shadow authz would deny" in mesh.backend.output()


def test_tcp_allowed_for_one_identity(mesh: Mesh) -> None:
    mesh.apply(ALLOW_TCP)
    wait_for(lambda: mesh.echo_works(mesh.buyer), 10, message="TCP allowed for bookbuyer")
    assert not mesh.echo_works(mesh.thief)
    # Deleting the permission closes the port again (default deny).
    mesh.cp.cli("delete", "trafficpermission", "echo-buyer", check=True)
    wait_for(lambda: not mesh.echo_works(mesh.buyer), 10, message="TCP denied again")
