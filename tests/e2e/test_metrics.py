"""Acceptance: the canary demo's traffic, as `gossamer stat` and a real Prometheus see it.

The demo runs its first two steps (round robin, then HTTPRoute 90/10) and holds at 90/10
with its traffic going on. Then:
- `gossamer stat svc/benigno -o json` (the control plane's aggregation of the sidecars'
  metrics) shows both versions with the 90/10 split and a 100% success rate;
- a Prometheus server (Debian's package) scraping every sidecar and the control plane
  computes, with PromQL, the same success rate and the same split.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.proxy import free_port
from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parent.parent.parent
SVC = 'direction="inbound",destination_service="benigno"'


def _stat(api: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "gossamer", "--cp", api, "stat", "svc/benigno", "--window", "10s",
         "-o", "json"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    body: dict[str, Any] = json.loads(out.stdout)
    return body


def _promql(base: str, query: str) -> float | None:
    data = httpx.get(f"{base}/api/v1/query", params={"query": query}, timeout=5).json()
    assert data["status"] == "success", data
    result = data["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _prometheus_config(path: Path, api: str) -> int:
    """Scrape every proxy the control plane knows (their announced admin ports) and the
    control plane itself, every second."""
    proxies = httpx.get(f"{api}/api/v1/proxies", timeout=5).json()["items"]
    sidecars = [f"{p['address']}:{p['adminPort']}" for p in proxies if p.get("adminPort")]
    cp = api.split("//", 1)[1]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "sidecars",
                "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": sidecars}],
            },
            {"job_name": "controlplane", "static_configs": [{"targets": [cp]}]},
        ],
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return len(sidecars)


@pytest.mark.skipif(not shutil.which("prometheus"), reason="scripts/install-debian-deps.sh test")
def test_stat_and_prometheus_agree_on_the_canary(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    demo = subprocess.Popen(
        [sys.executable, "-m", "gossamer", "demo", "canary", "--non-interactive",
         "--duration", "4", "--hold-after", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "GOSSAMER_TEST_TAG": tag}, cwd=ROOT,
    )  # fmt: skip
    prometheus: subprocess.Popen[bytes] | None = None
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        api = ""
        for line in demo.stdout:  # bounded: the demo prints its steps, then holds
            lines.append(line)
            if line.startswith("ingress on"):
                api = line.rsplit("API and GUI: ", 1)[1].strip()
                # Every proxy is connected by now: Prometheus starts scraping them.
                port = free_port()
                config = tmp_path / "prometheus.yml"
                targets = _prometheus_config(config, api)
                assert targets == 4  # magnanimo, benigno-v1, benigno-v2, the gateway
                log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115 - child owns it
                prometheus = subprocess.Popen(
                    ["prometheus", f"--config.file={config}",
                     f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                     f"--web.listen-address=127.0.0.1:{port}"],
                    stdout=log, stderr=subprocess.STDOUT,
                )  # fmt: skip
                log.close()
            if line.startswith("holding after step"):
                break
        assert api and prometheus is not None, "".join(lines)
        assert "step 2: " in "".join(lines), "".join(lines)
        base = f"http://127.0.0.1:{port}"
        wait_for(
            lambda: _promql(base, "count(up == 1)") == targets + 1,
            timeout=30,
            interval=0.5,
            message="Prometheus to scrape every sidecar and the control plane",
        )

        def settled() -> dict[str, Any] | None:
            # The 10s window (10 to 20 s back) slides past step 1's 50/50 into 90/10.
            [item] = _stat(api)["items"]
            versions = item["versions"]
            if item["requests"] < 50 or set(versions) != {"v1", "v2"}:
                return None
            share = versions["v2"]["requests"] / item["requests"]
            return item if share <= 0.15 else None

        item = wait_for(settled, timeout=40, interval=1, message="a 90/10 window in stat")
        assert item["successRate"] == 1.0
        assert item["latencyMs"]["p50"] > 0
        v1, v2 = item["versions"]["v1"], item["versions"]["v2"]
        assert v1["successRate"] == v2["successRate"] == 1.0
        cp_share = v2["requests"] / item["requests"]
        assert 0.03 <= cp_share <= 0.15, item

        total = f"sum(increase(gossamer_requests_total{{{SVC}}}[10s]))"
        ok = f'sum(increase(gossamer_requests_total{{{SVC},class!="5xx"}}[10s]))'
        v2_total = f'sum(increase(gossamer_requests_total{{{SVC},destination_version="v2"}}[10s]))'
        prom_rate = wait_for(
            lambda: _promql(base, f"{ok} / {total}"), timeout=20, message="PromQL success rate"
        )
        assert abs(prom_rate - item["successRate"]) <= 0.001
        prom_share = _promql(base, f"{v2_total} / {total}")
        assert prom_share is not None and abs(prom_share - cp_share) <= 0.08, (prom_share, item)
        # The control plane's own /metrics is scraped too.
        assert (_promql(base, "gossamer_cp_xds_streams") or 0) >= 4
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(10)
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
        lines.append(out or "")
    assert demo.returncode == 130, "".join(lines)
