"""Two-hop HTTP throughput: a Gossamer sidecar pair against the HAProxy and nginx pairs.

    client (wrk) -> proxy A (outbound) -> proxy B (inbound) -> nginx upstream

The peers are configured as ../shared/bench/README.md fixes them (HAProxy nbthread 1;
nginx one worker with upstream keepalive; the upstream an nginx `return 200`). Rounds are
interleaved (gossamer, haproxy, nginx, gossamer, ...) because this machine's speed drifts
between runs: only ratios within one run mean anything. Pinned (the default): both
proxies of a pair on core 1, wrk and the upstream on core 0.

    .venv/bin/python benchmarks/http_pair.py                 # 3 rounds x 10 s, pinned
    .venv/bin/python benchmarks/http_pair.py --rounds 1 --duration 5 --no-pin --workers 2
    .venv/bin/python benchmarks/http_pair.py --only gossamer --profile /tmp/prof

Needs wrk, nginx, haproxy and taskset (scripts/install-debian-deps.sh). Stdlib only.
Reports req/s (median of rounds), the ratio to each peer, CPU seconds per 1,000 requests
(utime+stime of the proxy processes during the run) and RSS (VmRSS after the run, VmHWM)
of each proxy process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def memory(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values["VmRSS"], values["VmHWM"]


@dataclass
class Topology:
    name: str
    port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pids(self) -> list[int]:
        pids = []
        for p in self.procs:
            pids.append(p.pid)
            pids += children(p.pid)
        return pids

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


def pin(core: str | None) -> list[str]:
    return ["taskset", "-c", core] if core else []


# --- the upstream and the peers ----------------------------------------------------------


def nginx_conf(work: Path, name: str, body: str) -> Path:
    (work / name).mkdir(exist_ok=True)
    conf = work / name / "nginx.conf"
    conf.write_text(
        f"""daemon off;
master_process off;
worker_processes 1;
pid {work / name / "nginx.pid"};
error_log {work / name / "error.log"} warn;
events {{ worker_connections 4096; }}
{body}
"""
    )
    return conf


def start_nginx(conf: Path, core: str | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*pin(core), "nginx", "-p", str(conf.parent), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


HTTP_COMMON = """
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
"""


def upstream(work: Path, core: str | None) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    body = (
        "http {"
        + HTTP_COMMON.format(d=work / "upstream")
        + f'  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "hello\\n"; }} }}\n}}'
    )
    proc = start_nginx(nginx_conf(work, "upstream", body), core)
    wait_port(port)
    return proc, port


def nginx_pair(work: Path, up: int, core: str | None) -> Topology:
    a, b = free_port(), free_port()
    topo = Topology("nginx", a)
    for name, listen, target in (("nginx-b", b, up), ("nginx-a", a, b)):
        body = (
            "http {"
            + HTTP_COMMON.format(d=work / name)
            + f"""  upstream up {{ server 127.0.0.1:{target}; keepalive 64;
    keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{listen};
    location / {{ proxy_pass http://up; proxy_http_version 1.1;
      proxy_set_header Connection ""; }} }}
}}"""
        )
        topo.procs.append(start_nginx(nginx_conf(work, name, body), core))
        wait_port(listen)
    return topo


def haproxy_pair(work: Path, up: int, core: str | None) -> Topology:
    a, b = free_port(), free_port()
    topo = Topology("haproxy", a)
    for name, listen, target in (("haproxy-b", b, up), ("haproxy-a", a, b)):
        cfg = work / f"{name}.cfg"
        cfg.write_text(
            f"""global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend f
  bind 127.0.0.1:{listen}
  default_backend b
backend b
  server s1 127.0.0.1:{target}
"""
        )
        topo.procs.append(
            subprocess.Popen(
                [*pin(core), "haproxy", "-f", str(cfg), "-db"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_port(listen)
    return topo


# --- the gossamer pair ------------------------------------------------------------------


def sidecar_config(name: str, listen: int, target: int, direction: str) -> dict[str, Any]:
    hcm = {
        "@type": HCM,
        "stat_prefix": name,
        "http_filters": [{"name": "router", "typed_config": {"@type": ROUTER}}],
        "route_config": {
            "name": name,
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "next"}}],
                }
            ],
        },
    }
    return {
        "listeners": [
            {
                "name": name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "traffic_direction": direction,
                "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}],
            }
        ],
        "clusters": [
            {
                "name": "next",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {
                    "cluster_name": "next",
                    "endpoints": [
                        {
                            "lb_endpoints": [
                                {
                                    "endpoint": {
                                        "address": {
                                            "socket_address": {
                                                "address": "127.0.0.1",
                                                "port_value": target,
                                            }
                                        }
                                    }
                                }
                            ]
                        }
                    ],
                },
            }
        ],
    }


def gossamer_pair(
    work: Path, up: int, core: str | None, workers: int, env: dict[str, str]
) -> Topology:
    a, b = free_port(), free_port()
    topo = Topology("gossamer", a)
    for name, listen, target, direction in (
        ("inbound", b, up, "INBOUND"),
        ("outbound", a, b, "OUTBOUND"),
    ):
        path = work / f"gossamer-{name}.json"
        path.write_text(json.dumps(sidecar_config(name, listen, target, direction)))
        ready = work / f"gossamer-{name}.ready"
        log = open(work / f"gossamer-{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        topo.procs.append(
            subprocess.Popen(
                [
                    *pin(core),
                    sys.executable,
                    "-m",
                    "gossamer",
                    "proxy",
                    "run",
                    "--config",
                    str(path),
                    "--admin-port",
                    "0",
                    "--ready-file",
                    str(ready),
                    "--workers",
                    str(workers),
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
            )
        )
        wait_port(listen)
        admin = json.loads(ready.read_text())["admin"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(f"http://{admin}/ready", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.05)
    return topo


# --- the floor: a bare uvloop + httptools relay (no routing, no checks, no stats) -------


def bare_relay(listen: int, target: int) -> None:
    """Relays whole requests and responses as read; one upstream connection per client."""
    import asyncio

    import httptools
    import uvloop

    class Up(asyncio.Protocol):
        def __init__(self, down: Down) -> None:
            self.down = down
            self.parser = httptools.HttpResponseParser(self)
            self.buf: list[bytes] = []

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buf.append(data)
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            if not self.down.transport.is_closing():
                self.down.transport.write(b"".join(self.buf))
            self.buf.clear()

    class Down(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.up: Up | None = None
            self.pending: list[bytes] = []
            self.buf: list[bytes] = []
            asyncio.get_running_loop().create_task(self.connect())

        async def connect(self) -> None:
            loop = asyncio.get_running_loop()
            _, self.up = await loop.create_connection(lambda: Up(self), "127.0.0.1", target)
            if self.pending:
                self.up.transport.write(b"".join(self.pending))

        def connection_lost(self, exc: Exception | None) -> None:
            if self.up is not None:
                self.up.transport.close()

        def data_received(self, data: bytes) -> None:
            self.buf.append(data)
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            data = b"".join(self.buf)
            self.buf.clear()
            if self.up is not None:
                self.up.transport.write(data)
            else:
                self.pending.append(data)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Down, "127.0.0.1", listen)
        await server.serve_forever()

    uvloop.run(serve())


def bare_pair(up: int, core: str | None) -> Topology:
    a, b = free_port(), free_port()
    topo = Topology("bare", a)
    for listen, target in ((b, up), (a, b)):
        topo.procs.append(
            subprocess.Popen(
                [*pin(core), sys.executable, __file__, "--bare-relay", str(listen), str(target)]
            )
        )
        wait_port(listen)
    return topo


# --- load -------------------------------------------------------------------------------


def wrk(port: int, duration: float, connections: int, core: str | None) -> tuple[float, str]:
    out = subprocess.run(
        [
            *pin(core),
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{int(duration)}s",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=duration + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    errors = re.search(r"Socket errors:.*|Non-2xx.*", out)
    return float(match.group(1)), errors.group(0) if errors else ""


@dataclass
class Sample:
    rps: float
    cpu_per_1000: float
    errors: str
    switches_per_request: float = 0.0


def switches(pid: int) -> int:
    """Context switches (voluntary + involuntary) of a process so far."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
            total += int(line.split()[1])
    return total


def measure(topo: Topology, args: argparse.Namespace) -> Sample:
    pids = topo.pids()
    cpu_before = sum(cpu_seconds(p) for p in pids)
    switches_before = sum(switches(p) for p in pids)
    rps, errors = wrk(topo.port, args.duration, args.connections, args.load_core)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu_before
    switched = sum(switches(p) for p in pids) - switches_before
    total = rps * args.duration
    if not total:
        return Sample(rps, 0.0, errors)
    return Sample(rps, cpu / total * 1000, errors, switched / total)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="gossamer --workers per sidecar")
    parser.add_argument("--no-pin", action="store_true", help="let the scheduler place everything")
    parser.add_argument("--only", choices=["gossamer", "haproxy", "nginx", "bare"], action="append")
    parser.add_argument(
        "--with-bare", action="store_true", help="also the bare uvloop+httptools relay pair"
    )
    parser.add_argument("--bare-relay", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", metavar="DIR", help="run py-spy (if installed) on the outbound sidecar"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    if args.bare_relay:
        bare_relay(*args.bare_relay)
        return 0
    for tool in ("wrk", "nginx", "haproxy", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: run scripts/install-debian-deps.sh", file=sys.stderr)
            return 2
    proxy_core = None if args.no_pin else "1"
    args.load_core = None if args.no_pin else "0"
    names = args.only or ["gossamer", "haproxy", "nginx", *(["bare"] if args.with_bare else [])]
    results: dict[str, list[Sample]] = {n: [] for n in names}
    memory_of: dict[str, list[tuple[str, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="gossamer-bench-") as tmp:
        work = Path(tmp)
        up_proc, up_port = upstream(work, args.load_core)
        topologies: dict[str, Topology] = {}
        try:
            if "gossamer" in names:
                topologies["gossamer"] = gossamer_pair(work, up_port, proxy_core, args.workers, {})
            if "haproxy" in names:
                topologies["haproxy"] = haproxy_pair(work, up_port, proxy_core)
            if "nginx" in names:
                topologies["nginx"] = nginx_pair(work, up_port, proxy_core)
            if "bare" in names:
                topologies["bare"] = bare_pair(up_port, proxy_core)
            for topo in topologies.values():  # warm up: connections, pools, caches
                wrk(topo.port, 2, args.connections, args.load_core)
            profiler = None
            for round_ in range(args.rounds):
                for name in names:
                    topo = topologies[name]
                    if args.profile and name == "gossamer" and round_ == 0:
                        profiler = start_profiler(topo, Path(args.profile), args.duration)
                    sample = measure(topo, args)
                    results[name].append(sample)
                    print(
                        f"round {round_ + 1} {name:9s} {sample.rps:9.0f} req/s  "
                        f"{sample.cpu_per_1000 * 1000:6.1f} ms CPU/1k req  "
                        f"{sample.switches_per_request:5.2f} switches/req  {sample.errors}",
                        flush=True,
                    )
                    if profiler is not None:
                        profiler.wait(60)
                        profiler = None
            for name, topo in topologies.items():
                memory_of[name] = []
                for i, pid in enumerate(topo.pids()):
                    rss, hwm = memory(pid)
                    memory_of[name].append((f"{name}[{i}] pid {pid}", rss, hwm))
        finally:
            for topo in topologies.values():
                topo.stop()
            up_proc.terminate()
            up_proc.wait(10)
    report(results, memory_of, args, proxy_core)
    return 0


def start_profiler(
    topo: Topology, directory: Path, duration: float
) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found (pip install py-spy); no profile", file=sys.stderr)
        return None
    directory.mkdir(parents=True, exist_ok=True)
    outbound = topo.procs[-1].pid
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(outbound),
            "--duration",
            str(int(duration)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(directory / "outbound.txt"),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def report(
    results: dict[str, list[Sample]],
    memory_of: dict[str, list[tuple[str, float, float]]],
    args: argparse.Namespace,
    proxy_core: str | None,
) -> None:
    layout = "pinned: proxies on core 1, wrk + upstream on core 0" if proxy_core else "unpinned"
    load = f"wrk -t1 -c{args.connections} -d{args.duration:g}s"
    print(f"\n{load}, {args.rounds} interleaved rounds, {layout}")
    print(f"gossamer --workers {args.workers}\n")
    medians = {
        n: statistics.median(s.rps for s in samples) for n, samples in results.items() if samples
    }
    print(f"{'pair':10s} {'median req/s':>13s} {'rounds':>24s} {'CPU ms/1k req':>14s}")
    for name, samples in results.items():
        rounds = " ".join(f"{s.rps:.0f}" for s in samples)
        cpu = statistics.median(s.cpu_per_1000 for s in samples) * 1000
        print(f"{name:10s} {medians[name]:13.0f} {rounds:>24s} {cpu:14.1f}")
    if "gossamer" in medians:
        for peer in ("haproxy", "nginx", "bare"):
            if peer in medians:
                print(f"gossamer / {peer}: {medians['gossamer'] / medians[peer]:.2f}")
    print("\nmemory after the runs (MiB): process, VmRSS, VmHWM")
    for entries in memory_of.values():
        for label, rss, hwm in entries:
            print(f"  {label:32s} {rss:7.1f} {hwm:7.1f}")
    if args.json:
        print(json.dumps({n: [s.__dict__ for s in v] for n, v in results.items()}))


if __name__ == "__main__":
    sys.exit(main())
