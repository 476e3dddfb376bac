"""Load: wrk for throughput, and an open-loop client for latency at a fixed rate."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass

from benchmarks.suite.procs import ROOT, cpu_seconds, pin, switches

# What each workload asks for: the path, and extra wrk headers.
WORKLOADS: dict[str, tuple[str, tuple[str, ...]]] = {
    "small": ("/", ()),
    "1k": ("/1k", ()),
    "64k": ("/64k", ()),
    "close": ("/", ("Connection: close",)),
    "tcp": ("/", ()),
}


@dataclass
class Sample:
    rps: float
    cpu_per_1000: float  # CPU seconds of the proxies per 1,000 requests
    switches_per_request: float
    errors: str


def wrk(
    port: int,
    duration: float,
    connections: int,
    core: str | None,
    path: str = "/",
    headers: tuple[str, ...] = (),
) -> tuple[float, str]:
    cmd = [*pin(core), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(
        [*cmd, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        timeout=duration + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    errors = re.search(r"Socket errors:.*|Non-2xx.*", out)
    return float(match.group(1)), errors.group(0).strip() if errors else ""


def throughput(
    port: int,
    pids: list[int],
    workload: str,
    duration: float,
    connections: int,
    core: str | None,
) -> Sample:
    path, headers = WORKLOADS[workload]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    sw0 = sum(switches(p) for p in pids)
    rps, errors = wrk(port, duration, connections, core, path, headers)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    sw = sum(switches(p) for p in pids) - sw0
    total = rps * max(1, round(duration))
    if not total:
        return Sample(rps, 0.0, 0.0, errors)
    return Sample(rps, cpu / total * 1000, sw / total, errors)


@dataclass
class Latency:
    p50: float  # microseconds, from each request's scheduled send time
    p99: float
    p999: float
    sent: int
    completed: int
    errors: int
    cpu_per_1000: float  # at this fixed rate (compare with peers at equal load only)


def open_loop(
    port: int, pids: list[int], rate: float, duration: float, core: str | None
) -> Latency:
    cpu0 = sum(cpu_seconds(p) for p in pids)
    out = subprocess.run(
        [
            *pin(core),
            sys.executable,
            "-m",
            "benchmarks.suite.openloop",
            "--port",
            str(port),
            "--rate",
            str(rate),
            "--duration",
            str(duration),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        cwd=ROOT,
    )
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    if out.returncode != 0:
        raise RuntimeError(f"open-loop client failed: {out.stderr}")
    r = json.loads(out.stdout)
    done = r["completed"] or 1
    return Latency(
        r["p50"], r["p99"], r["p999"], r["sent"], r["completed"], r["errors"], cpu / done * 1000
    )
