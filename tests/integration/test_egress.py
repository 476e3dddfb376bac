"""Egress end to end: a sidecar's outbound HTTP proxy (as apps use it via HTTP_PROXY) and
an explicit outbound port, configured by a real control plane, calling local servers that
stand for hosts outside the mesh."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.processes import ControlPlane
from tests.support.proxy import Response, Sidecar, TcpEcho, Upstream, free_port, request
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


@dataclass
class Mesh:
    cp: ControlPlane
    external: Upstream
    other: Upstream
    echo: TcpEcho
    sidecar: Sidecar
    proxy_port: int
    db_port: int

    def apply(self, text: str) -> None:
        self.cp.cli("apply", "-f", "-", input=text, check=True)

    def call(self, authority: str, path: str = "/x") -> Response:
        raw = f"GET http://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\n\r\n"
        return request(self.proxy_port, raw.encode())

    def db_echo(self) -> bytes:
        with socket.create_connection(("127.0.0.1", self.db_port), 3) as s:
            s.settimeout(3)
            try:
                return s.recv(100)
            except (ConnectionError, TimeoutError):
                return b""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir: Path = tmp_path_factory.mktemp("egress")
    cp = ControlPlane(workdir / "state", "sqlite://").start()
    external, other = Upstream("external").start(), Upstream("other").start()
    echo = TcpEcho("db").start()
    proxy_port, db_port = free_port(), free_port()
    sidecar = Sidecar(
        workdir,
        None,
        *("--xds", cp.xds, "--id", "client-1", "--service", "client"),
        *("--http-proxy-port", str(proxy_port), "--outbound", f"db.test:{echo.port}={db_port}"),
        name="client",
    )
    try:
        sidecar.start()
        m = Mesh(cp, external, other, echo, sidecar, proxy_port, db_port)
        wait_for(lambda: m.call("external.test").status == 502, 20, message="egress configured")
        yield m
    finally:
        sidecar.stop()
        cp.stop()
        for server in (external, other):
            server.stop()
        echo.stop()


def test_registry_only_blocks_unknown_hosts_with_a_reason(mesh: Mesh) -> None:
    r = mesh.call(f"external.test:{mesh.external.port}")
    assert r.status == 502
    assert r.headers["x-gossamer-egress"] == f"blocked host=external.test:{mesh.external.port}"
    assert b"REGISTRY_ONLY" in r.body and b"kind: ExternalService" in r.body
    assert mesh.call(f"127.0.0.1:{mesh.other.port}").status == 502
    assert mesh.external.requests == 0 and mesh.other.requests == 0


def test_external_service_allows_its_host_only(mesh: Mesh) -> None:
    mesh.apply(
        f"""
apiVersion: gossamer.io/v1alpha1
kind: ExternalService
metadata: {{name: external-test}}
spec: {{host: external.test, port: {mesh.external.port}, addresses: [127.0.0.1]}}
"""
    )
    authority = f"external.test:{mesh.external.port}"
    wait_for(lambda: mesh.call(authority).status == 200, 10, message="external host allowed")
    r = mesh.call(authority, "/books")
    assert r.json()["server"] == "external"
    seen = mesh.external.seen[-1]
    assert seen.target == "/books" and ("host", authority) in seen.headers
    assert mesh.call(f"127.0.0.1:{mesh.other.port}").status == 502  # still blocked


def test_tcp_external_service_through_an_outbound_port(mesh: Mesh) -> None:
    assert mesh.db_echo() == b""  # no such service: nothing relayed
    mesh.apply(
        f"""
apiVersion: gossamer.io/v1alpha1
kind: ExternalService
metadata: {{name: db}}
spec: {{host: db.test, port: {mesh.echo.port}, protocol: tcp, addresses: [127.0.0.1]}}
"""
    )
    wait_for(lambda: mesh.db_echo() == b"db\n", 10, message="tcp egress relayed")


def test_allow_any_passes_every_host_through(mesh: Mesh) -> None:
    mesh.apply(
        """
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {egress: {mode: ALLOW_ANY}}
"""
    )
    authority = f"127.0.0.1:{mesh.other.port}"
    wait_for(lambda: mesh.call(authority).status == 200, 10, message="passthrough")
    assert mesh.call(authority, "/y").json()["server"] == "other"
    assert mesh.other.seen[-1].target == "/y"
    # ExternalServices keep their own cluster.
    assert mesh.call(f"external.test:{mesh.external.port}").json()["server"] == "external"
    # An unreachable host is a clean 503, not a hang.
    assert mesh.call(f"127.0.0.1:{free_port()}").status == 503
