"""Egress end to end: a sidecar's outbound HTTP proxy (as apps use it via HTTP_PROXY) and
an explicit outbound port, configured by a real control plane, calling local servers that
stand for hosts outside the mesh."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.processes import ControlPlane
from tests.support.proxy import Response, Sidecar, TcpEcho, Upstream, free_port, request
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


class TlsServer:
    """A TLS server for `secure.example` (self-signed) that greets each client."""

    def __init__(self, workdir: Path, host: str = "secure.example") -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert = workdir / "secure.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = workdir / "secure.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.cert, key_file)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    tls.sendall(b"hello from secure.example\n")
            except (OSError, ssl.SSLError):
                pass

    def greeting(self, port: int, server_name: str) -> bytes:
        """Connect through the sidecar's TLS port as a client verifying the real server."""
        ctx = ssl.create_default_context(cafile=str(self.cert))
        try:
            with (
                socket.create_connection(("127.0.0.1", port), 3) as raw,
                ctx.wrap_socket(raw, server_hostname=server_name) as tls,
            ):
                tls.settimeout(3)
                return tls.recv(100)
        except (OSError, ssl.SSLError):
            return b""

    def stop(self) -> None:
        self.sock.close()


@dataclass
class Mesh:
    cp: ControlPlane
    external: Upstream
    other: Upstream
    echo: TcpEcho
    sidecar: Sidecar
    proxy_port: int
    db_port: int
    tls: TlsServer
    tls_port: int

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
    tls = TlsServer(workdir)
    proxy_port, db_port, tls_port = free_port(), free_port(), free_port()
    sidecar = Sidecar(
        workdir,
        None,
        *("--xds", cp.xds, "--id", "client-1", "--service", "client"),
        *("--http-proxy-port", str(proxy_port), "--outbound", f"db.test:{echo.port}={db_port}"),
        *("--outbound-tls-port", str(tls_port)),
        name="client",
        env=cp.env(),  # finds the admin token: mints a data-plane token
    )
    try:
        sidecar.start()
        m = Mesh(cp, external, other, echo, sidecar, proxy_port, db_port, tls, tls_port)
        wait_for(lambda: m.call("external.test").status == 502, 20, message="egress configured")
        yield m
    finally:
        sidecar.stop()
        cp.stop()
        for server in (external, other):
            server.stop()
        echo.stop()
        tls.stop()


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


def test_tls_routed_by_sni_without_terminating_it(mesh: Mesh) -> None:
    # REGISTRY_ONLY: an unknown server name is closed before reaching anything.
    assert mesh.tls.greeting(mesh.tls_port, "secure.example") == b""
    assert mesh.tls.accepted == 0
    mesh.apply(
        f"""
apiVersion: gossamer.io/v1alpha1
kind: ExternalService
metadata: {{name: secure}}
spec: {{host: secure.example, port: {mesh.tls.port}, protocol: tls, addresses: [127.0.0.1]}}
"""
    )

    def greeted() -> bool:
        return mesh.tls.greeting(mesh.tls_port, "secure.example") == b"hello from secure.example\n"

    # The client verified the server's own certificate: the sidecar did not terminate TLS.
    wait_for(greeted, 10, message="TLS passed through by SNI")
    accepted = mesh.tls.accepted
    assert mesh.tls.greeting(mesh.tls_port, "other.example") == b""
    assert mesh.tls.accepted == accepted
    # Not TLS at all on the TLS port: closed.
    with socket.create_connection(("127.0.0.1", mesh.tls_port), 3) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: secure.example\r\n\r\n")
        s.settimeout(3)
        assert s.recv(100) == b""
    # Counted as Envoy counts its blackhole cluster: no healthy upstream.
    stats = mesh.sidecar.stats()["listeners"]["outbound:tls"]["response_flags"]
    assert stats.get("UH", 0) >= 3


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
