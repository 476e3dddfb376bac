"""`gossamer demo` end to end, and that it leaves no process behind however it ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parent.parent.parent


def _tagged_processes(tag: str) -> list[int]:
    """PIDs whose environment carries the tag: every descendant of the demo inherits it."""
    pids = []
    needle = f"GOSSAMER_TEST_TAG={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _demo(scenario: str, tag: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gossamer", "demo", scenario, "--non-interactive", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GOSSAMER_TEST_TAG": tag},
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("scenario", "steps"),
    [("canary", 4), ("tcp-echo", 3), ("bookstore", 5)],
)
def test_demo_runs_every_step_and_cleans_up(scenario: str, steps: int) -> None:
    tag = uuid.uuid4().hex
    proc = _demo(scenario, tag, "--duration", "3")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    assert f"{steps}/{steps} steps held their expectation" in out
    for i in range(1, steps + 1):
        assert f"step {i}: " in out
    assert "observed" in out and "errors 0" in out
    if scenario == "bookstore":
        # bookthief's denials counted by bookstore-v1's sidecar, in the steps that say so.
        assert out.count("counted: bookstore-v1's sidecar denied bookthief") == 2
        assert "counted: bookstore-v1's sidecar denied bookthief 0 times" not in out
    assert _tagged_processes(tag) == []


def test_ctrl_c_stops_everything() -> None:
    tag = uuid.uuid4().hex
    proc = _demo("canary", tag, "--duration", "30")
    assert proc.stdout is not None
    for line in proc.stdout:  # bounded: the demo prints its steps within seconds
        if line.startswith("ingress on"):
            break
    assert len(_tagged_processes(tag)) >= 5  # control plane, gateway, 3 of (run, proxy, app)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted" in out
    wait_for(lambda: _tagged_processes(tag) == [], timeout=10, message="no process left")


def test_a_failed_step_exits_1_and_cleans_up() -> None:
    tag = uuid.uuid4().hex
    proc = _demo("canary", tag, "--duration", "30")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ingress on"):
            break
    # The canary app dies: its workload and the demo's expectations go with it.
    victims = [
        pid
        for pid in _tagged_processes(tag)
        if b"gossamer.demo.apps.benigno" in Path(f"/proc/{pid}/cmdline").read_bytes()
        and b"VERSION=v2" in Path(f"/proc/{pid}/environ").read_bytes()
    ]
    assert victims
    os.kill(victims[0], signal.SIGKILL)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 1, out
    assert "demo failed" in out
    wait_for(lambda: _tagged_processes(tag) == [], timeout=10, message="no process left")
