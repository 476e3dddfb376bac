"""Acceptance: `gossamer tap` shows requests while the canary demo runs, `gossamer top`
shows its busiest path, and `gossamer explain` explains its 90/10 route.

The demo runs its first two steps (round robin, then the 90/10 HTTPRoute) and holds
there with its traffic going on (ingress -> magnanimo -> benigno v1/v2).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parent.parent.parent
MAGNANIMO = "spiffe://gossamer.local/ns/default/sa/magnanimo"


def _cli(api: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "gossamer", "--cp", api, *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, f"gossamer {' '.join(args)}: {done.stderr}{done.stdout}"
    return done


def test_tap_top_and_explain_while_the_canary_demo_runs() -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "gossamer", "demo", "canary", "--non-interactive",
         "--duration", "3", "--hold-after", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "GOSSAMER_TEST_TAG": uuid.uuid4().hex}, cwd=ROOT,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        api = ingress = ""
        for line in demo.stdout:  # bounded: the demo prints its steps, then holds
            lines.append(line)
            if line.startswith("ingress on"):
                api = line.rsplit("API and GUI: ", 1)[1].strip()
                ingress = line.split()[2]  # 127.0.0.1:PORT/route1/hw2
            if line.startswith("holding after step"):
                break
        assert api, "".join(lines)

        out = _cli(api, "tap", "svc/benigno", "--max", "10", "--duration", "30", "-o", "json")
        records = [json.loads(x) for x in out.stdout.splitlines()]
        requests = [r for r in records if r["type"] == "request"]
        assert len(requests) == 10 and records[-1]["reason"] == "limit", out.stdout
        for r in requests:
            assert r["direction"] == "inbound" and r["status"] == 200
            assert r["source"]["identity"] == MAGNANIMO
            assert r["destination"]["workload"] in ("benigno-v1", "benigno-v2")
            assert set(r["headers"].values()) == {"<redacted>"}
        text = _cli(api, "tap", "svc/benigno", "--max", "3").stdout.splitlines()
        assert len(text) == 3 and all(f"{MAGNANIMO} -> " in line for line in text), text

        top = json.loads(
            _cli(api, "top", "svc/magnanimo", "--once", "--duration", "3", "-o", "json").stdout
        )
        assert top["items"][0]["count"] > 0 and top["items"][0]["successRate"] == 1.0

        body = json.loads(
            _cli(
                api, "explain", "--from", "svc/magnanimo", "--to", "benigno:5000", "-o", "json"
            ).stdout
        )
        assert body["outcome"] == "routed"
        assert [(b["service"], b["weight"]) for b in body["backends"]] == [
            ("benigno-v1", 90),
            ("benigno-v2", 10),
        ]
        assert any(s["resource"] == "HTTPRoute default/benigno-canary" for s in body["steps"])
        # From the ingress gateway: its listener and the Ingress's route to magnanimo.
        authority, _, path = ingress.partition("/")
        body = json.loads(
            _cli(api, "explain", "--from", "workload/ingress", "--to", authority,
                 "--path", "/" + path, "-o", "json").stdout
        )  # fmt: skip
        assert body["outcome"] == "routed", body
        assert [b["service"] for b in body["backends"]] == ["magnanimo"], body
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
        out, _ = demo.communicate(timeout=60)
        lines.append(out or "")
    assert demo.returncode == 130, "".join(lines)
