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

Needs wrk, nginx, haproxy and taskset (scripts/install-debian-deps.sh). Shares its
upstream, peers and gossamer pair (static --config, no control plane) with the full suite,
`python -m benchmarks.suite`, which adds a real control plane, TLS, more workloads,
latency and the report in docs/benchmarks.md.
Reports req/s (median of rounds), the ratio to each peer, CPU seconds per 1,000 requests
(utime+stime of the proxy processes during the run) and RSS (VmRSS after the run, VmHWM)
of each proxy process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks.suite` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite.load import wrk
from benchmarks.suite.mesh import static_pair
from benchmarks.suite.peers import bare_pair, haproxy_pair, nginx_pair, upstream
from benchmarks.suite.procs import Topology, cpu_seconds, memory, switches


@dataclass
class Sample:
    rps: float
    cpu_per_1000: float
    errors: str
    switches_per_request: float = 0.0


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
    parser.add_argument(
        "--only",
        choices=["gossamer", "gossamer-telemetry", "haproxy", "nginx", "bare"],
        action="append",
    )
    parser.add_argument(
        "--telemetry",
        choices=["all", "tracing", "sampled", "logs"],
        help="also a gossamer pair with telemetry: all (tracing 100%% sampled and access "
        "logs), tracing (100%%), sampled (tracing 1%%), logs (access logs only)",
    )
    parser.add_argument(
        "--with-bare", action="store_true", help="also the bare uvloop+httptools relay pair"
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="run py-spy (if installed) on the outbound sidecar"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "haproxy", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: run scripts/install-debian-deps.sh", file=sys.stderr)
            return 2
    proxy_core = None if args.no_pin else "1"
    args.load_core = None if args.no_pin else "0"
    names = args.only or ["gossamer", "haproxy", "nginx", *(["bare"] if args.with_bare else [])]
    if args.telemetry and "gossamer-telemetry" not in names:
        names.insert(1, "gossamer-telemetry")
    results: dict[str, list[Sample]] = {n: [] for n in names}
    memory_of: dict[str, list[tuple[str, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="gossamer-bench-") as tmp:
        work = Path(tmp)
        up_proc, up_port = upstream(work, args.load_core)
        topologies: dict[str, Topology] = {}
        try:
            if "gossamer" in names:
                topologies["gossamer"] = static_pair(work, up_port, proxy_core, args.workers)
            if "gossamer-telemetry" in names:
                topologies["gossamer-telemetry"] = static_pair(
                    work, up_port, proxy_core, args.workers, telemetry=args.telemetry or "all"
                )
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
    outbound = topo.proxies["a"]
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
    print(f"{'pair':18s} {'median req/s':>13s} {'rounds':>24s} {'CPU ms/1k req':>14s}")
    for name, samples in results.items():
        rounds = " ".join(f"{s.rps:.0f}" for s in samples)
        cpu = statistics.median(s.cpu_per_1000 for s in samples) * 1000
        print(f"{name:18s} {medians[name]:13.0f} {rounds:>24s} {cpu:14.1f}")
    if "gossamer" in medians:
        for peer in ("haproxy", "nginx", "bare"):
            if peer in medians:
                print(f"gossamer / {peer}: {medians['gossamer'] / medians[peer]:.2f}")
        if "gossamer-telemetry" in medians:
            ratio = medians["gossamer-telemetry"] / medians["gossamer"]
            print(f"telemetry on / off: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")
    print("\nmemory after the runs (MiB): process, VmRSS, VmHWM")
    for entries in memory_of.values():
        for label, rss, hwm in entries:
            print(f"  {label:32s} {rss:7.1f} {hwm:7.1f}")
    if args.json:
        print(json.dumps({n: [s.__dict__ for s in v] for n, v in results.items()}))


if __name__ == "__main__":
    sys.exit(main())
