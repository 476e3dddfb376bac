"""The data-path benchmark suite (`make bench`).

Topologies (each carries the same load to the same nginx upstream):
  direct        client -> upstream
  gossamer      client -> outbound sidecar -> inbound sidecar -> upstream, configured by a
                real control plane (Mesh mtls DISABLED); gossamer-mtls: the same with the
                default STRICT mTLS between the sidecars
  haproxy       HAProxy pair (nbthread 1 each); haproxy-tls: TLS + client certs between hops
  nginx         nginx pair (one worker each); nginx-tls: TLS + client certs between hops
  gossamer-notel  the gossamer pair with `--request-metrics off` (small workload only):
                the telemetry on/off comparison
  bare          (--with-bare) a bare uvloop + httptools relay pair: the Python floor
Workloads: small (GET /, 6-byte body, keep-alive), 1k and 64k bodies, close (a new
connection per request), tcp (the same HTTP load through the L4 modes: gossamer TCP
listeners, HAProxy mode tcp, nginx stream), latency (open-loop, fixed rate).

Rounds are interleaved (A B C A B C ...) and medians reported: this machine's speed
drifts, so only ratios within one run mean anything. Phases: pinned (proxies on core 1;
wrk, the latency client, the upstream and the control plane on core 0) and unpinned
(the same processes, re-pinned to every core).

    .venv/bin/python -m benchmarks.suite                       # everything, ~11 min
    .venv/bin/python -m benchmarks.suite --rounds 1 --duration 2 --topologies direct,gossamer,nginx
    .venv/bin/python -m benchmarks.suite --report-only docs/img/bench-results.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.suite import load, peers, report
from benchmarks.suite.certs import make_pki
from benchmarks.suite.mesh import Mesh, mesh_pair
from benchmarks.suite.procs import ROOT, NotAvailable, Topology, memory, set_affinity, tree

ALL_TOPOLOGIES = (
    "direct",
    "gossamer",
    "haproxy",
    "nginx",
    "gossamer-mtls",
    "haproxy-tls",
    "nginx-tls",
    "gossamer-w2",
    "gossamer-notel",
)
HTTP_WORKLOADS = ("small", "1k", "64k", "close")
TLS_WORKLOADS = ("small", "latency")  # TLS topologies run only these (time budget)
TCP_OF = {"direct": "direct", "gossamer": "gossamer-tcp", "haproxy": "haproxy-tcp"}
TCP_OF["nginx"] = "nginx-tcp"


def plan(workload: str, available: list[str], phase: str) -> list[str]:
    """The topologies a workload runs against, in interleaving order."""
    if workload == "tcp":
        return [TCP_OF[t] for t in available if t in TCP_OF]
    out = []
    for t in available:
        if t == "gossamer-w2" and (phase, workload) != ("unpinned", "small"):
            continue  # two workers want both cores: measured unpinned only
        if t == "gossamer-notel" and workload != "small":
            continue  # only there to compare with `gossamer` (telemetry on)
        if t.endswith(("-tls", "-mtls")) and workload not in TLS_WORKLOADS:
            continue
        out.append(t)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.suite",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    p.add_argument("--latency-duration", type=float, default=4.0, help="seconds per latency run")
    p.add_argument("--rate", type=float, default=1000.0, help="latency runs: requests/s")
    p.add_argument("--connections", type=int, default=32, help="wrk -c")
    p.add_argument("--workers", type=int, default=1, help="gossamer sidecar --workers")
    p.add_argument("--topologies", default=",".join(ALL_TOPOLOGIES), help="comma-separated")
    p.add_argument("--with-bare", action="store_true", help="add the bare Python relay pair")
    p.add_argument("--workloads", default="small,1k,64k,close,tcp,latency")
    p.add_argument(
        "--unpinned-workloads", default="small,tcp,latency", help="workloads of the unpinned phase"
    )
    p.add_argument("--phases", default="pinned,unpinned")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--json", type=Path, help="results file [default: IMG_DIR/bench-results.json]")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--note", default="", help="a line added to the report (e.g. machine load)")
    p.add_argument("--report-only", type=Path, metavar="JSON", help="re-render saved results")
    return p.parse_args(argv)


def check_tools(topologies: list[str]) -> str | None:
    need = ["wrk", "nginx", "taskset"]
    if any(t.startswith("haproxy") for t in topologies):
        need.append("haproxy")
    missing = [t for t in need if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)}: run scripts/install-debian-deps.sh bench"
    return None


class Suite:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.topos: dict[str, Topology] = {}
        self.meshes: list[Mesh] = []
        self.na: dict[str, str] = {}
        self.upstream_pid = 0

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def start(self, wanted: list[str], tcp: bool, pinned: bool) -> None:
        args = self.args
        # Started pinned when there is a pinned phase; the unpinned phase re-pins.
        proxy_core, load_core = ("1", "0") if pinned else (None, None)
        up_proc, up_port = peers.upstream(self.work, load_core)
        self.up_proc = up_proc
        self.upstream_pid = up_proc.pid
        pki = make_pki(self.work / "pki")
        for name in wanted:
            t0 = time.monotonic()
            try:
                if name == "direct":
                    self.topos[name] = peers.direct(up_port)
                elif name.startswith("gossamer"):
                    mesh = mesh_pair(
                        self.work,
                        up_port,
                        proxy_core,
                        load_core,
                        name == "gossamer-mtls",
                        2 if name == "gossamer-w2" else args.workers,
                        ("--request-metrics", "off") if name == "gossamer-notel" else (),
                        label=name,
                    )
                    self.meshes.append(mesh)
                    self.topos[name] = mesh.http
                    if name == "gossamer":
                        self.topos["gossamer-tcp"] = mesh.tcp
                elif name.startswith(("haproxy", "nginx")):
                    kind, _, variant = name.partition("-")
                    make = peers.haproxy_pair if kind == "haproxy" else peers.nginx_pair
                    self.topos[name] = make(
                        self.work, up_port, proxy_core, pki if variant == "tls" else None
                    )
                    if not variant and tcp:
                        try:
                            self.topos[f"{name}-tcp"] = make(
                                self.work, up_port, proxy_core, None, tcp=True
                            )
                        except NotAvailable as exc:
                            self.na[f"{name}-tcp"] = str(exc)
                            self.log(f"{name}-tcp: n/a ({exc})")
                elif name == "bare":
                    self.topos[name] = peers.bare_pair(up_port, proxy_core)
                self.log(f"started {name} ({time.monotonic() - t0:.1f} s)")
            except NotAvailable as exc:
                self.na[name] = str(exc)
                self.log(f"{name}: n/a ({exc})")
            except Exception as exc:  # one broken topology must not sink the whole run
                self.na[name] = f"failed to start: {str(exc)[:300]}"
                self.log(f"{name}: failed to start: {exc}")

    def stop(self) -> None:
        for mesh in self.meshes:
            mesh.stop()
        for name, topo in self.topos.items():
            if not name.startswith("gossamer"):
                topo.stop()
        if getattr(self, "up_proc", None) is not None:
            self.up_proc.terminate()
            self.up_proc.wait(10)

    def repin(self, pinned: bool) -> tuple[str | None, str]:
        """Returns (load core for wrk/clients, a description of the layout)."""
        every = set(range(os.cpu_count() or 1))
        proxies: list[int] = []
        for topo in self.topos.values():
            proxies += topo.pids()
        others = tree(self.upstream_pid)
        for mesh in self.meshes:
            others += [p for proc in mesh.procs for p in tree(proc.pid)]
        if pinned:
            set_affinity(proxies, {1})
            set_affinity(others, {0})
            layout = (
                "pinned: proxies on core 1; wrk, latency client, upstream, control plane on core 0"
            )
            return "0", layout
        set_affinity(proxies + others, every)
        return None, f"unpinned: every process free to run on cores 0-{max(every)}"

    def run_phase(self, phase: str, workloads: list[str]) -> dict[str, Any]:
        args = self.args
        load_core, layout = self.repin(phase == "pinned")
        self.log(f"--- {layout}")
        available = [t for t in self.topos if not t.endswith("-tcp")]
        result: dict[str, Any] = {"layout": layout, "throughput": {}, "latency": {}}
        for topo in self.topos.values():  # warm up: connections, pools, caches
            load.wrk(topo.port, 1, args.connections, load_core)
        for round_ in range(args.rounds):
            for workload in workloads:
                for name in plan(workload, available, phase):
                    topo = self.topos[name]
                    if workload == "latency":
                        lat = load.open_loop(
                            topo.port, topo.pids(), args.rate, args.latency_duration, load_core
                        )
                        result["latency"].setdefault(name, []).append(asdict(lat))
                        self.log(
                            f"{phase} round {round_ + 1} latency {name:14s} p50 {lat.p50:7.0f} µs "
                            f"p99 {lat.p99:7.0f} µs p99.9 {lat.p999:7.0f} µs errors {lat.errors}"
                        )
                        continue
                    s = load.throughput(
                        topo.port, topo.pids(), workload, args.duration, args.connections, load_core
                    )
                    result["throughput"].setdefault(workload, {}).setdefault(name, []).append(
                        asdict(s)
                    )
                    self.log(
                        f"{phase} round {round_ + 1} {workload:6s} {name:14s} {s.rps:9.0f} req/s "
                        f"{s.cpu_per_1000 * 1000:6.1f} ms CPU/1k {s.errors}"
                    )
        return result

    def memory(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, topo in self.topos.items():
            if not topo.proxies or name == "gossamer-tcp":
                continue
            out[name] = {}
            for hop, pid in topo.proxies.items():
                pids = tree(pid)
                rss = sum(memory(p)[0] for p in pids)
                hwms = [memory(p)[1] for p in pids]
                out[name][hop] = {
                    "rss": rss,
                    "hwm": sum(hwms),
                    "processes": len(pids),
                    "hwm_each": hwms,  # the main process first, then its workers
                }
        return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    json_path = args.json or args.img_dir / "bench-results.json"
    if args.report_only:
        results = json.loads(args.report_only.read_text())
        report.write(results, args.out, args.img_dir, plots=not args.no_plots)
        print(f"wrote {args.out}", file=sys.stderr)
        return 0
    wanted = [t for t in args.topologies.split(",") if t]
    if args.with_bare:
        wanted.append("bare")
    unknown = set(wanted) - {*ALL_TOPOLOGIES, "bare"}
    if unknown:
        print(f"unknown topologies: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    problem = check_tools(wanted)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    phases = [p for p in args.phases.split(",") if p]
    if "pinned" in phases and (os.cpu_count() or 1) < 2:
        print("pinned phase needs 2 cores; use --phases unpinned", file=sys.stderr)
        return 2
    workloads = {
        "pinned": [w for w in args.workloads.split(",") if w],
        "unpinned": [w for w in args.unpinned_workloads.split(",") if w],
    }
    started = time.time()
    results: dict[str, Any] = {
        "meta": report.machine(),
        "config": {
            k: getattr(args, k)
            for k in ("rounds", "duration", "latency_duration", "rate", "connections", "workers")
        },
        "note": args.note,
        "phases": {},
    }
    with tempfile.TemporaryDirectory(prefix="gossamer-bench-") as tmp:
        suite = Suite(args, Path(tmp))
        try:
            need_tcp = any("tcp" in workloads[p] for p in phases)
            suite.start(wanted, need_tcp, "pinned" in phases)
            for phase in phases:
                results["phases"][phase] = suite.run_phase(phase, workloads[phase])
            results["memory"] = suite.memory()
        finally:
            suite.stop()
        results["na"] = suite.na
    results["elapsed"] = time.time() - started
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    report.write(results, args.out, args.img_dir, plots=not args.no_plots)
    print(f"wrote {args.out} and {json_path} in {results['elapsed']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
