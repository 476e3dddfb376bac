"""mTLS between sidecars, with a real control plane CA.

magnanimo's sidecar calls benigno's; a raw TCP relay placed between them (a Workload
whose inbound port is the relay's) records the bytes that cross it: they must be TLS.
The inbound listener refuses plaintext in STRICT mode, takes it in PERMISSIVE mode and
reports who still sends it.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ControlPlane
from tests.support.proxy import Sidecar, Upstream, free_port, get
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

TD = "gossamer.local"
BENIGNO_ID = f"spiffe://{TD}/ns/default/sa/benigno"


@dataclass
class Relay:
    """A raw TCP relay to `target` that keeps the first bytes of each direction."""

    target: int
    port: int = 0
    client_bytes: bytearray = field(default_factory=bytearray)
    server_bytes: bytearray = field(default_factory=bytearray)
    connections: int = 0

    def start(self) -> Relay:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self.target))
            for a, b, keep in (
                (client, server, self.client_bytes),
                (server, client, self.server_bytes),
            ):
                threading.Thread(target=self._pipe, args=(a, b, keep), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, keep: bytearray) -> None:
        try:
            while data := src.recv(65536):
                if len(keep) < 65536:
                    keep.extend(data)
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def stop(self) -> None:
        self._sock.close()


@dataclass
class Mesh:
    cp: ControlPlane
    workdir: Path
    app: Upstream
    benigno: Sidecar
    magnanimo: Sidecar
    inbound: int
    http_proxy: int
    relay: Relay

    def apply(self, text: str) -> None:
        self.cp.cli("apply", "-f", "-", input=text, check=True)


def mesh_mode(mode: str) -> str:
    return f"""
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {{name: default}}
spec: {{mtls: {{mode: {mode}}}}}
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    workdir = tmp_path_factory.mktemp("mtls")
    cp = ControlPlane(workdir / "state", "sqlite://", "--workload-grace", "5").start()
    app = Upstream("benigno").start()
    inbound, http_proxy = free_port(), free_port()
    sidecars: list[Sidecar] = []
    relay = Relay(inbound).start()
    try:
        benigno = Sidecar(
            workdir,
            None,
            *("--xds", cp.xds, "--id", "benigno-1", "--service", "benigno"),
            *("--inbound", f"5000:{app.port}:{inbound}"),
            name="benigno",
            env=cp.env(),  # finds the admin token: mints a data-plane token
        ).start()
        sidecars.append(benigno)
        magnanimo = Sidecar(
            workdir,
            None,
            *("--xds", cp.xds, "--id", "magnanimo-1", "--service", "magnanimo"),
            *("--http-proxy-port", str(http_proxy)),
            name="magnanimo",
            env=cp.env(),  # finds the admin token: mints a data-plane token
        ).start()
        sidecars.append(magnanimo)
        m = Mesh(cp, workdir, app, benigno, magnanimo, inbound, http_proxy, relay)
        # "relayed": benigno's identity, reached through the relay (a hand-made Workload).
        m.apply(f"""
apiVersion: gossamer.io/v1alpha1
kind: Workload
metadata: {{name: relayed-1, labels: {{app: relayed}}}}
spec:
  address: 127.0.0.1
  serviceAccount: benigno
  ports: [{{port: 5000, targetPort: {app.port}, inboundPort: {relay.port}}}]
""")
        wait_for(
            lambda: get(http_proxy, "/hello", host="benigno:5000").status == 200,
            20,
            message="benigno through both sidecars",
        )
        yield m
    finally:
        for sidecar in sidecars:
            sidecar.stop()
        cp.stop()
        app.stop()
        relay.stop()


def test_sidecars_get_certificates_with_their_spiffe_ids(mesh: Mesh) -> None:
    ready = mesh.benigno.get("/ready").json()
    assert ready["certificate"]["identity"] == f"spiffe://{TD}/ns/default/sa/benigno"
    status = json.loads(mesh.cp.cli("get", "ca", "-o", "json", check=True).stdout)
    identities = {leaf["node"]: leaf["identity"] for leaf in status["leaves"]}
    assert identities["magnanimo-1"] == f"spiffe://{TD}/ns/default/sa/magnanimo"
    assert status["roots"][0]["daysToExpiry"] > 3000


def test_traffic_between_sidecars_is_tls_on_the_wire(mesh: Mesh) -> None:
    r = wait_for(
        lambda: (
            (resp := get(mesh.http_proxy, "/secret-path", host="relayed:5000")).status == 200
            and resp
        ),
        20,
        message="a request through the relay",
    )
    assert r.json()["target"] == "/secret-path"
    assert mesh.relay.connections >= 1
    # Both directions are TLS records (0x16: handshake), and no HTTP crossed in clear.
    assert mesh.relay.client_bytes[:1] == b"\x16"
    assert mesh.relay.server_bytes[:1] == b"\x16"
    for data in (mesh.relay.client_bytes, mesh.relay.server_bytes):
        assert b"secret-path" not in data and b"HTTP/1.1" not in data
    clusters = mesh.magnanimo.stats()["clusters"]
    assert clusters["relayed.default:5000"]["upstream_tls_handshakes"] >= 1
    inbound = mesh.benigno.stats()["listeners"][f"inbound:{mesh.inbound}"]
    assert inbound["tls_handshakes"] >= 1


def _plaintext_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /plain HTTP/1.1\r\nHost: benigno\r\n\r\n")
        chunks = b""
        try:
            while data := s.recv(4096):
                chunks += data
                if b"\r\n\r\n" in chunks:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
        return chunks


def test_strict_refuses_plaintext_and_clients_without_a_mesh_certificate(mesh: Mesh) -> None:
    assert _plaintext_get(mesh.inbound) == b""
    # TLS without a client certificate from the mesh CA: the handshake fails.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)),
        socket.create_connection(("127.0.0.1", mesh.inbound), timeout=5) as raw,
        ctx.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        if not tls.recv(100):
            raise ConnectionResetError("closed")
    listeners = mesh.benigno.stats()["listeners"][f"inbound:{mesh.inbound}"]
    assert listeners["plaintext_rejected"].get("127.0.0.1", 0) >= 1


def test_permissive_takes_both_and_reports_plaintext_clients(mesh: Mesh) -> None:
    mesh.apply(mesh_mode("PERMISSIVE"))
    try:
        wait_for(
            lambda: _plaintext_get(mesh.inbound).startswith(b"HTTP/1.1 200"),
            20,
            message="PERMISSIVE inbound answering plaintext",
        )
        # Sidecar to sidecar stays mTLS.
        assert get(mesh.http_proxy, "/x", host="benigno:5000").status == 200

        def reported() -> dict[str, Any] | None:
            out = mesh.cp.cli("get", "mtls-report", "-o", "json", check=True).stdout
            rows = [r for r in json.loads(out)["items"] if r["proxy"] == "benigno-1"]
            return rows[0] if rows and rows[0]["plaintextClients"] else None

        row = wait_for(reported, 10, message="the plaintext client in the mTLS report")
        assert row["mode"] == "PERMISSIVE" and row["plaintextClients"]["127.0.0.1"] >= 1
        assert row["tlsHandshakes"] >= 1 and row["certificate"]
        table = mesh.cp.cli("get", "mtls-report", check=True).stdout
        assert "127.0.0.1" in table and "PERMISSIVE" in table
    finally:
        mesh.apply(mesh_mode("STRICT"))
    wait_for(lambda: _plaintext_get(mesh.inbound) == b"", 20, message="STRICT again")


def test_root_rotation_keeps_traffic_flowing(mesh: Mesh) -> None:
    before = json.loads(mesh.cp.cli("get", "ca", "-o", "json", check=True).stdout)
    mesh.cp.cli("ca", "rotate", check=True)
    after = json.loads(mesh.cp.cli("get", "ca", "-o", "json", check=True).stdout)
    assert len(after["roots"]) == len(before["roots"]) + 1  # old and new, during the overlap
    assert after["issuer"]["subject"] != before["issuer"]["subject"]
    for _ in range(20):
        assert get(mesh.http_proxy, "/after-rotation", host="benigno:5000").status == 200


def _token(mesh: Mesh, *args: str) -> str:
    return mesh.cp.cli("token", "create", *args, check=True).stdout.strip()


def _ca_call(mesh: Mesh, method: str, body: dict[str, Any], token: str | None) -> Any:
    import grpc

    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(mesh.cp.xds) as channel:
        call = channel.unary_unary(
            f"/gossamer.ca.v1.CertificateService/{method}",
            request_serializer=lambda x: x,
            response_deserializer=lambda x: x,
        )
        return json.loads(call(json.dumps(body).encode(), metadata=metadata, timeout=5))


def test_a_token_for_one_workload_cannot_get_another_ones_certificate(mesh: Mesh) -> None:
    import grpc

    from gossamer.core.pki import make_csr, new_key

    benigno = _token(mesh, "--service", "benigno")
    magnanimo_id = f"spiffe://{TD}/ns/default/sa/magnanimo"
    # benigno's token, magnanimo's node: refused.
    with pytest.raises(grpc.RpcError) as refused:
        _ca_call(mesh, "Sign", {"nodeId": "magnanimo-1", "csr": "x"}, benigno)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may not act as default/magnanimo" in (refused.value.details() or "")
    # benigno's own node, but a CSR asking for magnanimo's identity: refused.
    csr = make_csr(new_key(), magnanimo_id).decode()
    with pytest.raises(grpc.RpcError) as wrong_id:
        _ca_call(mesh, "Sign", {"nodeId": "benigno-1", "csr": csr}, benigno)
    assert wrong_id.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "may only be" in (wrong_id.value.details() or "")
    # No token at all: unauthenticated.
    with pytest.raises(grpc.RpcError) as anonymous:
        _ca_call(mesh, "Identity", {"nodeId": "benigno-1"}, None)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The right token and CSR: signed.
    own = _ca_call(
        mesh,
        "Sign",
        {"nodeId": "benigno-1", "csr": make_csr(new_key(), BENIGNO_ID).decode()},
        benigno,
    )
    assert own["spiffeId"] == f"spiffe://{TD}/ns/default/sa/benigno"


def test_a_proxy_with_another_workloads_token_gets_no_config(mesh: Mesh) -> None:
    benigno = _token(mesh, "--service", "benigno")
    impostor = Sidecar(
        mesh.workdir,
        None,
        *("--xds", mesh.cp.xds, "--id", "impostor-1", "--service", "magnanimo"),
        *("--token", benigno, "--http-proxy-port", str(free_port())),
        name="impostor",
    ).start(ready=False)
    try:
        status = wait_for(
            lambda: "DENIED" in (r := impostor.get("/ready").json())["xds"]["lastError"] and r,
            20,
            message="the impostor's stream to be refused",
        )
        assert "PERMISSION_DENIED" in status["xds"]["lastError"]
        assert not status["config"]["applied"]
    finally:
        impostor.stop()


def test_api_writes_need_an_admin_token_and_revoked_tokens_stop_working(mesh: Mesh) -> None:
    import httpx

    reader = _token(mesh, "--role", "reader")
    service = {"apiVersion": "gossamer.io/v1alpha1", "kind": "Service", "metadata": {"name": "x"}}
    doc = {"documents": [service]}
    url = mesh.cp.api + "/api/v1/apply"
    assert httpx.post(url, json=doc).status_code == 401
    denied = httpx.post(url, json=doc, headers={"authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    ok = httpx.get(mesh.cp.api + "/api/v1/version", headers={"authorization": f"Bearer {reader}"})
    assert ok.status_code == 200
    listing = json.loads(mesh.cp.cli("token", "list", "-o", "json", check=True).stdout)
    reader_id = next(t["id"] for t in listing if t["role"] == "reader" and not t["revoked"])
    assert "hash" not in listing[0] and "token" not in listing[0]
    mesh.cp.cli("token", "revoke", reader_id, check=True)
    gone = httpx.get(mesh.cp.api + "/api/v1/version", headers={"authorization": f"Bearer {reader}"})
    assert gone.status_code == 401


def test_check_and_metrics_show_certificate_expiry(mesh: Mesh) -> None:
    import httpx

    result = mesh.cp.cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "workload certificates, none expiring" in result.stdout
    metrics = httpx.get(mesh.cp.api + "/metrics/ca").text
    assert 'gossamer_ca_leaf_days_to_expiry{node="benigno-1"' in metrics
    assert "gossamer_ca_root_days_to_expiry" in metrics
    sidecar = mesh.benigno.get("/stats/prometheus").text
    assert "gossamer_certificate_days_to_expiry" in sidecar
    assert "gossamer_downstream_tls_handshakes_total" in sidecar


def test_tcp_over_mtls_ends_when_the_server_closes(mesh: Mesh) -> None:
    """A server that answers and closes (no half-close can cross TLS): the client still
    reads to EOF through both sidecars."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"hello from tcp\n")

    threading.Thread(target=serve, daemon=True).start()
    app_port = server.getsockname()[1]
    listen = free_port()
    sidecars = [
        Sidecar(
            mesh.workdir,
            None,
            *("--xds", mesh.cp.xds, "--id", "greeter-1", "--service", "greeter"),
            *("--inbound", f"7000:{app_port}:{free_port()}:tcp"),
            name="greeter",
            env=mesh.cp.env(),
        ).start(),
        Sidecar(
            mesh.workdir,
            None,
            *("--xds", mesh.cp.xds, "--id", "caller-1", "--service", "caller"),
            *("--outbound", f"greeter:7000={listen}"),
            name="caller",
            env=mesh.cp.env(),
        ).start(),
    ]

    def read_all() -> bytes:
        with socket.create_connection(("127.0.0.1", listen), timeout=5) as s:
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data

    try:
        assert wait_for(lambda: read_all() == b"hello from tcp\n", 20, message="tcp reply")
        for _ in range(5):
            assert read_all() == b"hello from tcp\n"
        cluster = sidecars[1].stats()["clusters"]["greeter.default:7000"]
        assert cluster["upstream_tls_handshakes"] >= 5
        assert cluster["upstream_tls_resumed"] >= 1  # later connections resume the session
    finally:
        for sidecar in sidecars:
            sidecar.stop()
        server.close()


def secret_material(text: str) -> list[str]:
    markers = ("-----BEGIN", "PRIVATE KEY", "gst_")
    return [line for line in text.splitlines() if any(m in line for m in markers)]


def test_no_key_certificate_or_token_in_any_log(mesh: Mesh) -> None:
    """Last: every log this module's processes wrote, after all of the above ran."""
    logs = {p.name: p.read_text(errors="replace") for p in mesh.workdir.rglob("*.log")}
    logs["controlplane"] = mesh.cp.output()
    assert {"benigno.log", "magnanimo.log", "impostor.log"} <= set(logs)
    for name, text in logs.items():
        assert not secret_material(text), name
        assert mesh.cp.token not in text, name
