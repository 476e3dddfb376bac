"""What mTLS costs: two-hop throughput STRICT vs DISABLED, and the price of a handshake.

    client (wrk) -> sidecar A (outbound) -mTLS-> sidecar B (inbound) -> nginx upstream

Both sidecars are configured by a real control plane (memory store, its own CA); rounds
alternate DISABLED and STRICT on the same processes (the Mesh is re-applied between
rounds), because this machine's speed drifts: only ratios within one run mean anything.
Then, in this process, the sidecar's own TLS code (gossamer.proxy.io.tls) does N full
handshakes and N resumed ones over loopback with uvloop, to price a new connection.

    .venv/bin/python benchmarks/mtls_pair.py                     # 3 rounds x 10 s
    .venv/bin/python benchmarks/mtls_pair.py --rounds 1 --duration 5 --handshakes 200

Needs wrk and nginx (scripts/install-debian-deps.sh). Bounded: every phase has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from http_pair import free_port, upstream, wait_port

GOSSAMER = [sys.executable, "-m", "gossamer"]
MESH = """apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {{name: default}}
spec: {{mtls: {{mode: {mode}}}}}
"""


def cli(state: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "GOSSAMER_STATE_DIR": str(state)}
    out = subprocess.run(
        [*GOSSAMER, *args], input=stdin, env=env, capture_output=True, text=True, timeout=60
    )
    if out.returncode:
        raise RuntimeError(f"gossamer {' '.join(args)}: {out.stderr}")
    return out.stdout


def wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():  # type: ignore[operator]
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def plaintext_answered(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            return s.recv(12).startswith(b"HTTP/1.1")
        except OSError:
            return False


def wrk(port: int, seconds: float, connections: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1",
            "-c",
            str(connections),
            "-d",
            f"{int(seconds)}s",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw errors: {out}")
    if found is None:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    return float(found.group(1))


def new_connections(port: int, n: int) -> float:
    """ms per request on a new client connection through a TCP route (one new mTLS
    connection between the sidecars each time: TCP connections are not pooled)."""
    started = time.perf_counter()
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while s.recv(65536):
                pass
    return (time.perf_counter() - started) / n * 1000


def tls_counts(admin: int) -> tuple[int, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats", timeout=5) as r:
        cluster = json.load(r)["clusters"].get("bench.default:9000", {})
    return cluster.get("upstream_tls_handshakes", 0), cluster.get("upstream_tls_resumed", 0)


async def handshakes(n: int) -> dict[str, float]:
    """ms per full and per resumed handshake with the sidecar's TLS code and a mesh CA."""
    from gossamer.controlplane.ca import CertificateAuthority
    from gossamer.core.pki import key_pem, make_csr, new_key
    from gossamer.proxy.config import model as m
    from gossamer.proxy.io.tls import TlsFactory

    ca = CertificateAuthority(Path(tempfile.mkdtemp()), "bench.local")

    def secrets(sa: str) -> dict[str, m.Secret]:
        key = new_key()
        spiffe = f"spiffe://bench.local/ns/default/sa/{sa}"
        chain = ca.sign(make_csr(key, spiffe), spiffe, 3600).chain_pem
        return {
            "default": m.Secret("default", chain, key_pem(key)),
            "ROOTCA": m.Secret("ROOTCA", trusted_ca=ca.trust_bundle()),
        }

    factory = TlsFactory()
    server = factory.server(m.DownstreamTls("default", "ROOTCA"), secrets("b"))
    client = factory.client(
        m.UpstreamTls(certificate_secret="default", trust_secret="ROOTCA"), secrets("a")
    )
    loop = asyncio.get_running_loop()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport

        def data_received(self, data: bytes) -> None:
            self.t.write(data)  # type: ignore[attr-defined]

    srv = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server.context)
    port = srv.sockets[0].getsockname()[1]

    class Client(asyncio.Protocol):
        def __init__(self) -> None:
            self.done = loop.create_future()

        def data_received(self, data: bytes) -> None:
            if not self.done.done():
                self.done.set_result(None)

    async def one(host: str, resume: bool) -> tuple[float, bool]:
        if not resume:
            client.context.sessions.pop(host, None)
        started = time.perf_counter()
        transport, proto = await loop.create_connection(
            Client, "127.0.0.1", port, ssl=client.context, server_hostname=host
        )
        took = time.perf_counter() - started
        transport.write(b"x")
        await proto.done  # the ticket arrives before the echo
        ssl_object = transport.get_extra_info("ssl_object")
        client.context.remember(host, ssl_object)
        reused = bool(ssl_object.session_reused)
        transport.close()
        return took, reused

    full = [(await one("full.bench", False))[0] for _ in range(n)]
    resumed_runs = [await one("resumed.bench", True) for _ in range(n + 1)][1:]
    srv.close()
    return {
        "full_ms": round(statistics.median(full) * 1000, 3),
        "resumed_ms": round(statistics.median(t for t, _ in resumed_runs) * 1000, 3),
        "resumed_fraction": round(sum(r for _, r in resumed_runs) / n, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--handshakes", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mtls-bench-"))
    state = work / "state"
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, list[float]] = {"DISABLED": [], "STRICT": []}
    connect_ms: dict[str, list[float]] = {"DISABLED": [], "STRICT": []}
    resumed: list[float] = []
    try:
        nginx, up = upstream(work, None)
        procs.append(nginx)
        procs.append(
            subprocess.Popen(
                [*GOSSAMER, "controlplane", "run", "--state-dir", str(state), "--store",
                 "memory://", "--api-port", "0", "--xds-port", "0", "--log-level", "warning"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait(lambda: (state / "controlplane.json").exists(), 30, "the control plane")
        xds = json.loads((state / "controlplane.json").read_text())["xds"]
        inbound, outbound = free_port(), free_port()
        tcp_in, tcp_out, admin_a = free_port(), free_port(), free_port()
        env = {**os.environ, "GOSSAMER_STATE_DIR": str(state)}
        for name, extra in (
            (
                "b",
                ["--service", "bench", "--inbound", f"80:{up}:{inbound}",
                 "--inbound", f"9000:{up}:{tcp_in}:tcp"],
            ),
            (
                "a",
                ["--service", "client", "--outbound", f"bench:80={outbound}",
                 "--outbound", f"bench:9000={tcp_out}", "--admin-port", str(admin_a)],
            ),
        ):  # fmt: skip
            procs.append(
                subprocess.Popen(
                    [*GOSSAMER, "proxy", "run", "--xds", xds, "--id", name, "--workers", "1",
                     "--log-level", "warning", *extra],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        wait_port(outbound)

        def ok() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{outbound}/", timeout=2) as r:
                return bool(r.status == 200)

        for _ in range(args.rounds):
            for mode in ("DISABLED", "STRICT"):
                cli(state, "apply", "-f", "-", stdin=MESH.format(mode=mode))
                plain = mode == "DISABLED"
                wait(lambda p=plain: plaintext_answered(inbound) == p and ok(), 30, mode)
                results[mode].append(wrk(outbound, args.duration, args.connections))
                print(f"{mode:9} {results[mode][-1]:9.0f} req/s", flush=True)
            for mode in ("DISABLED", "STRICT"):
                cli(state, "apply", "-f", "-", stdin=MESH.format(mode=mode))
                plain = mode == "DISABLED"
                wait(lambda p=plain: plaintext_answered(tcp_in) == p and ok(), 30, mode)
                before = tls_counts(admin_a)
                took = new_connections(tcp_out, args.handshakes)
                after = tls_counts(admin_a)
                connect_ms[mode].append(took)
                if mode == "STRICT":
                    made = after[0] - before[0]
                    resumed.append((after[1] - before[1]) / made if made else 0.0)
                print(f"{mode:9} {took:9.2f} ms per new TCP connection (2 hops)", flush=True)
        hs = asyncio.run(handshakes(args.handshakes))
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
    disabled = statistics.median(results["DISABLED"])
    strict = statistics.median(results["STRICT"])
    summary = {
        "disabled_rps": round(disabled),
        "strict_rps": round(strict),
        "strict_vs_disabled": round(strict / disabled, 3) if disabled else None,
        "new_tcp_connection_ms_disabled": round(statistics.median(connect_ms["DISABLED"]), 3),
        "new_tcp_connection_ms_strict": round(statistics.median(connect_ms["STRICT"]), 3),
        "mesh_resumed_fraction": round(statistics.median(resumed), 3) if resumed else None,
        **hs,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
