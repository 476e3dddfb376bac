"""py-spy profile of the gossamer sidecar pair under wrk load (`make bench-profile`).

The same mesh topology as the suite (real control plane, plaintext, one worker each),
pinned (sidecars on core 1; wrk, upstream and control plane on core 0). py-spy samples
both sidecars while wrk saturates them; writes into docs/img/:
  profile-outbound.svg, profile-inbound.svg   flame graphs
  profile-top.txt                             top functions by own time and inclusive time

    .venv/bin/python -m benchmarks.suite.profile [--duration 40]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from benchmarks.suite import load, peers
from benchmarks.suite.mesh import mesh_pair
from benchmarks.suite.procs import ROOT


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy not found: pip install -e '.[bench]'")
    return found


def record(
    pid: int, out: Path, fmt: str, duration: float, rate: int, native: bool = False
) -> subprocess.Popen[bytes]:
    # --native (C frames of uvloop, httptools, the interpreter) needs the process paused
    # for each sample; the Python-only profiles sample without pausing it.
    mode = ["--native"] if native else ["--nonblocking"]
    return subprocess.Popen(
        [
            py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(duration)),
            "--rate",
            str(rate),
            "--format",
            fmt,
            "--output",
            str(out),
            *mode,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _frame(f: str) -> str:
    # py-spy raw frames: "function (path/to/module.py:LINE)"; keep function and file:line
    name, _, where = f.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def _function(frame: str) -> str:
    # "name (file.py:LINE)" -> "name (file.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})"


def summarize(raw: Path, top: int = 20) -> str:
    by_line: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame(f) for f in stack.split(";")[1:]]  # the first is the process/thread
        if not frames:
            continue
        total += n
        by_line[frames[-1]] += n
        own[_function(frames[-1])] += n
        for f in {_function(f) for f in frames}:
            inclusive[f] += n
    lines = [f"{total} samples"]
    lines += ["", "own time by function (the function itself, not its Python callees; C code"]
    lines += ["it calls, e.g. socket writes in uvloop, counts as its own):"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    lines += ["", "own time by line:"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in by_line.most_common(top)]
    lines += ["", "inclusive time by function (the function and everything it calls):"]
    lines += [f"  {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=40.0, help="seconds of sampling")
    p.add_argument("--rate", type=int, default=200, help="samples per second")
    p.add_argument(
        "--native-duration",
        type=float,
        default=20.0,
        help="then this long with --native on the outbound sidecar (0: skip)",
    )
    p.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "img")
    args = p.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gossamer-profile-") as tmp:
        work = Path(tmp)
        up_proc, up_port = peers.upstream(work, "0")
        mesh = None
        try:
            mesh = mesh_pair(work, up_port, "1", "0", mtls=False)
            topo = mesh.http
            load.wrk(topo.port, 2, 32, "0")  # warm up
            results: dict[str, float] = {}

            def drive() -> None:
                total = args.duration + args.native_duration + 4
                rps, _ = load.wrk(topo.port, total, 32, "0")
                results["rps"] = rps

            driver = threading.Thread(target=drive)
            driver.start()
            spies = []
            for hop, name in (("a", "outbound"), ("b", "inbound")):
                pid = topo.proxies[hop]
                spies.append(
                    (
                        name,
                        record(pid, work / f"{name}.raw", "raw", args.duration, args.rate),
                        record(
                            pid,
                            args.out_dir / f"profile-{name}.svg",
                            "flamegraph",
                            args.duration,
                            args.rate,
                        ),
                    )
                )
            for _, raw, svg in spies:
                raw.wait(args.duration + 60)
                svg.wait(args.duration + 60)
            native = work / "outbound-native.raw"
            if args.native_duration > 0:
                spy = record(
                    topo.proxies["a"], native, "raw", args.native_duration, 100, native=True
                )
                spy.wait(args.native_duration + 60)
            driver.join(args.duration + args.native_duration + 60)
            text = [
                f"py-spy record --rate {args.rate} --nonblocking, {args.duration:g} s, "
                f"wrk -t1 -c32 saturating the gossamer pair (pinned: sidecars on core 1): "
                f"{results.get('rps', 0):,.0f} req/s while sampled",
            ]
            for name, _, _ in spies:
                raw = work / f"{name}.raw"
                if raw.exists():
                    text += ["", f"== {name} sidecar ==", summarize(raw)]
                else:
                    text += ["", f"== {name} sidecar: py-spy produced nothing =="]
            if native.exists():
                text += [
                    "",
                    "== outbound sidecar, with native frames (--native, "
                    f"{args.native_duration:g} s, pausing the process per sample) ==",
                    summarize(native),
                ]
            (args.out_dir / "profile-top.txt").write_text("\n".join(text))
            print("\n".join(text))
        finally:
            if mesh is not None:
                mesh.stop()
            up_proc.terminate()
            up_proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
