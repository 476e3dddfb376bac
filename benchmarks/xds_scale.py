"""Control-plane scale: N simulated xDS clients, S services, E endpoints; one route change;
time until every affected client has received it (and ACKed), plus control-plane RSS/CPU.

    .venv/bin/python benchmarks/xds_scale.py --proxies 1000 --services 1000 --endpoints 10000

The clients are real gRPC ADS streams (state of the world) from helper processes; each
behaves like a sidecar (a node with an outbound HTTP proxy port, so it receives the whole
mesh's routes), ACKs every response at once and records when each RouteConfiguration
version arrived. Prints a markdown table; `--json` for machine-readable output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


# --- simulated clients (run in helper processes) --------------------------------------------


async def _client(
    xds: str, node_id: str, channel: Any, log: dict[str, list[tuple[str, float]]], token: str
) -> None:
    from envoy.config.core.v3 import base_pb2
    from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
    from google.protobuf import struct_pb2

    meta = struct_pb2.Struct()
    meta.update({"gossamer": {"kind": "sidecar", "workload": node_id, "outboundHttpPort": 15001}})
    node = base_pb2.Node(id=node_id, metadata=meta)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for t in (CDS, LDS):
        queue.put_nowait(discovery_pb2.DiscoveryRequest(node=node, type_url=t))

    async def requests() -> Any:
        while True:
            yield await queue.get()

    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    names: dict[str, list[str]] = {EDS: [], RDS: []}
    log[node_id] = []
    async for response in stub.StreamAggregatedResources(
        requests(), metadata=(("authorization", f"Bearer {token}"),)
    ):
        now = time.time()
        t = response.type_url
        if t == RDS:
            log[node_id].append((response.version_info, now))
        ack = discovery_pb2.DiscoveryRequest(
            node=node,
            type_url=t,
            version_info=response.version_info,
            response_nonce=response.nonce,
            resource_names=names.get(t, []),
        )
        queue.put_nowait(ack)
        if t == CDS and not names[EDS]:
            from envoy.config.cluster.v3 import cluster_pb2

            for any_msg in response.resources:
                c = cluster_pb2.Cluster()
                any_msg.Unpack(c)
                names[EDS].append(c.name)
            queue.put_nowait(
                discovery_pb2.DiscoveryRequest(node=node, type_url=EDS, resource_names=names[EDS])
            )
        if t == LDS and not names[RDS]:
            names[RDS] = ["outbound:http"]
            queue.put_nowait(
                discovery_pb2.DiscoveryRequest(node=node, type_url=RDS, resource_names=names[RDS])
            )


def _client_process(xds: str, ids: list[str], out: Any, stop: Any, token: str) -> None:
    # One admin token for all: sidecars need a token, and minting 1,000 is not the point.
    import grpc

    async def main() -> None:
        log: dict[str, list[tuple[str, float]]] = {}
        channels = [grpc.aio.insecure_channel(xds) for _ in range(max(1, len(ids) // 50))]
        tasks = [
            asyncio.create_task(_client(xds, node_id, channels[i % len(channels)], log, token))
            for i, node_id in enumerate(ids)
        ]
        while not stop.is_set():
            await asyncio.sleep(0.2)
            out.put(("progress", {k: list(v) for k, v in log.items()}))
        for task in tasks:
            task.cancel()
        out.put(("final", {k: list(v) for k, v in log.items()}))

    import uvloop

    uvloop.run(main())


# --- the run ----------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, VmRSS KiB, VmHWM KiB)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def _resources(services: int, endpoints: int) -> list[str]:
    per = max(1, endpoints // services)
    docs = []
    for s in range(services):
        docs.append(
            f"apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {{name: svc-{s}}}\n"
            f"spec: {{selector: {{app: svc-{s}}}, ports: [{{port: 8080}}]}}\n"
        )
        for e in range(per):
            n = s * per + e
            docs.append(
                "apiVersion: gossamer.io/v1alpha1\nkind: Workload\n"
                f"metadata: {{name: wl-{n}, labels: {{app: svc-{s}, version: v{e % 2 + 1}}}}}\n"
                f"spec: {{address: 10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}, "
                f"ports: [{{port: 8080, targetPort: 8080}}]}}\n"
            )
    return docs


def run(proxies: int, services: int, endpoints: int, client_procs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        cp = subprocess.Popen(
            [sys.executable, "-m", "gossamer", "controlplane", "run", "--state-dir", str(state),
             "--store", "memory://", "--api-port", "0", "--xds-port", "0",
             "--log-level", "warning"],
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not (state / "controlplane.json").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("control plane did not start")
                time.sleep(0.05)
            time.sleep(0.2)
            info = json.loads((state / "controlplane.json").read_text())
            token = (state / "admin.token").read_text().strip()
            api = httpx.Client(
                base_url=info["api"], headers={"authorization": f"Bearer {token}"}, timeout=300
            )
            docs = _resources(services, endpoints)
            started = time.monotonic()
            for i in range(0, len(docs), 2000):
                r = api.post(
                    "/api/v1/apply",
                    content="---\n".join(docs[i : i + 2000]),
                    headers={"content-type": "application/yaml"},
                )
                r.raise_for_status()
            load_seconds = time.monotonic() - started
            _, rss_loaded, _ = _proc_stat(cp.pid)

            ctx = mp.get_context("spawn")
            out = ctx.Queue()
            stop = ctx.Event()
            ids = [f"proxy-{i}" for i in range(proxies)]
            workers = [
                ctx.Process(
                    target=_client_process,
                    args=(info["xds"], ids[k::client_procs], out, stop, token),
                )
                for k in range(client_procs)
            ]
            connect_started = time.monotonic()
            for w in workers:
                w.start()
            logs: dict[str, list[tuple[str, float]]] = {}

            def drain(until: float, want: Any) -> bool:
                while time.monotonic() < until:
                    try:
                        _, data = out.get(timeout=0.5)
                    except Exception:
                        continue
                    logs.update(data)
                    if want():
                        return True
                return False

            if not drain(
                time.monotonic() + 300, lambda: len(logs) == proxies and all(logs.values())
            ):
                raise RuntimeError(f"only {sum(1 for v in logs.values() if v)} clients got routes")
            connect_seconds = time.monotonic() - connect_started
            cpu0, _, _ = _proc_stat(cp.pid)
            before = {k: len(v) for k, v in logs.items()}
            changed_at = time.time()
            api.post(
                "/api/v1/apply",
                content=(
                    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                    "metadata: {name: canary}\nspec:\n"
                    "  parentRefs: [{group: '', kind: Service, name: svc-0}]\n"
                    "  rules: [{backendRefs: [{name: svc-1, port: 8080, weight: 10}, "
                    "{name: svc-0, port: 8080, weight: 90}]}]\n"
                ),
                headers={"content-type": "application/yaml"},
            ).raise_for_status()
            if not drain(
                time.monotonic() + 120, lambda: all(len(logs[k]) > before[k] for k in logs)
            ):
                raise RuntimeError("not every client received the change")
            cpu1, rss1, hwm = _proc_stat(cp.pid)
            # Steady state: what the control plane holds once the push's buffers are freed
            # (it trims its heap every few seconds when RSS grew).
            time.sleep(12)
            _, rss_settled, _ = _proc_stat(cp.pid)
            delays = sorted(logs[k][before[k]][1] - changed_at for k in logs)
            stop.set()
            for w in workers:
                w.join(30)
            q = statistics.quantiles(delays, n=100)
            return {
                "proxies": proxies,
                "services": services,
                "endpoints": endpoints,
                "load_seconds": round(load_seconds, 2),
                "connect_seconds": round(connect_seconds, 2),
                "p50_ms": round(q[49] * 1000, 1),
                "p99_ms": round(q[98] * 1000, 1),
                "max_ms": round(delays[-1] * 1000, 1),
                "cp_cpu_seconds_for_change": round(cpu1 - cpu0, 2),
                "cp_rss_loaded_mib": round(rss_loaded / 1024, 1),
                "cp_rss_mib": round(rss1 / 1024, 1),
                "cp_rss_settled_mib": round(rss_settled / 1024, 1),
                "cp_peak_rss_mib": round(hwm / 1024, 1),
            }
        finally:
            cp.terminate()
            try:
                cp.wait(20)
            except subprocess.TimeoutExpired:
                cp.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--proxies", type=int, default=1000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--endpoints", type=int, default=10000)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.proxies, args.services, args.endpoints, args.client_procs)
    if args.json:
        print(json.dumps(result))
        return
    print("| " + " | ".join(result) + " |")
    print("|" + "---|" * len(result))
    print("| " + " | ".join(str(v) for v in result.values()) + " |")


if __name__ == "__main__":
    main()
