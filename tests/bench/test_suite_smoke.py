"""The benchmark suite runs end to end (tiny durations) and writes a sane report.

Real processes: a control plane, two sidecars, an nginx pair and upstream, wrk and the
open-loop client. Only the test profile's Debian packages (nginx, wrk) are needed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not (shutil.which("wrk") and shutil.which("nginx")),
    reason="needs wrk and nginx (scripts/install-debian-deps.sh test)",
)
def test_suite_writes_a_report_with_ratios(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nkept above\n\n## Control plane at scale\n\nkept below\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.suite",
            "--rounds",
            "1",
            "--duration",
            "1",
            "--latency-duration",
            "0.5",
            "--topologies",
            "direct,gossamer,nginx",
            "--phases",
            "unpinned",
            "--unpinned-workloads",
            "small,tcp,latency",
            "--out",
            str(out),
            "--img-dir",
            str(tmp_path),
            "--no-plots",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert "kept above" in text and "kept below" in text  # only its own section rewritten
    results = json.loads((tmp_path / "bench-results.json").read_text())
    small = results["phases"]["unpinned"]["throughput"]["small"]
    for topo in ("direct", "gossamer", "nginx"):
        assert small[topo][0]["rps"] > 0, topo
    assert small["gossamer"][0]["cpu_per_1000"] > 0
    tcp = results["phases"]["unpinned"]["throughput"]["tcp"]
    assert tcp["gossamer-tcp"][0]["rps"] > 0  # nginx-tcp needs the bench profile's stream module
    latency = results["phases"]["unpinned"]["latency"]["gossamer"][0]
    assert latency["completed"] > 0 and 0 < latency["p50"] <= latency["p99"] <= latency["p999"]
    assert results["memory"]["gossamer"]["a"]["hwm"] > 0
    # The table row of the small workload, with its gossamer ÷ nginx ratio.
    small_row = "| HTTP/1.1 keep-alive, small"
    row = next(line for line in text.splitlines() if line.startswith(small_row))
    assert re.search(r"\| \d+\.\d\d\u00d7 \|$", row), row
    assert "0.8\u00d7 nginx pair req/s" in text  # the targets table
