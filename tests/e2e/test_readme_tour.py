"""The README's 5-minute tour is a transcript that works: run its block as it is."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.wait import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parent.parent.parent


def tour_script() -> str:
    readme = (ROOT / "README.md").read_text()
    marker = readme.index("<!-- tour:")
    match = re.search(r"```sh\n(.*?)```", readme[marker:], re.S)
    assert match, "the tour block is missing"
    return match.group(1)


def _tagged(tag: str) -> list[int]:
    needle = f"GOSSAMER_TEST_TAG={tag}".encode()
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def test_the_tour_runs_as_written() -> None:
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        ["bash", "-e", "-c", tour_script() + "\nwait\n"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GOSSAMER_TEST_TAG": tag},
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=180)
        # `kill $(jobs -p)` at the end of the tour stops every process it started.
        wait_for(lambda: _tagged(tag) == [], timeout=20, message="the tour's processes to end")
    finally:
        for pid in _tagged(tag):
            os.kill(pid, signal.SIGKILL)
    counts = re.findall(r"^\s*(\d+) (Hello World, Benigno(?:, Canary Release)?)$", out, re.M)
    assert len(counts) >= 4, out
    # Round robin: 5 and 5 of 10.
    assert {(n, v) for n, v in counts[:2]} == {
        ("5", "Hello World, Benigno"),
        ("5", "Hello World, Benigno, Canary Release"),
    }, out
    # 90/10 over 100 calls: the canary's share is small but present.
    split = {v: int(n) for n, v in counts[2:4]}
    assert split["Hello World, Benigno"] >= 75, out
    assert 1 <= split.get("Hello World, Benigno, Canary Release", 0) <= 25, out
    # Promoted: all 10 to the canary.
    assert ("10", "Hello World, Benigno, Canary Release") in counts[4:], out
    assert "benigno-v1" in out and "magnanimo" in out and "connected" in out
    assert "kind: HTTPRoute" in out
    assert proc.returncode == 0, out
