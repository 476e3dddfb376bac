"""Real processes for integration tests: control planes, sidecars, apps, the CLI.

Every process is started by the test and ended by its PID; its output goes to a log file
that is printed when a test fails.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.wait import wait_for

GOSSAMER = [sys.executable, "-m", "gossamer"]


@dataclass
class Process:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> Process:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._log:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(5)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class ControlPlane:
    """`gossamer controlplane run` on free ports, with its own state dir."""

    def __init__(self, state_dir: Path, store: str = "sqlite://", *extra: str) -> None:
        self.state_dir = state_dir
        self.store = store
        self.extra = list(extra)
        self.process: Process | None = None
        self.api = ""
        self.xds = ""
        self.api_port = 0
        self.xds_port = 0

    def start(self, timeout: float = 20.0) -> ControlPlane:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        discovery = self.state_dir / "controlplane.json"
        args = [
            *GOSSAMER,
            "controlplane",
            "run",
            "--state-dir",
            str(self.state_dir),
            "--store",
            self.store,
            "--api-port",
            str(self.api_port),
            "--xds-port",
            str(self.xds_port),
            *self.extra,
        ]
        self.process = Process("controlplane", args, self.state_dir / "controlplane.log").start()
        process = self.process

        def started() -> dict[str, Any] | None:
            if not process.alive():
                raise AssertionError(f"control plane exited:\n{process.output()}")
            info: dict[str, Any] = json.loads(discovery.read_text())
            if info.get("pid") != process.pid:
                return None
            bundle = info.get("caBundle")  # --tls-auto: the CA bundle it wrote
            verify = ssl.create_default_context(cafile=bundle) if bundle else True
            httpx.get(info["api"] + "/healthz", timeout=1, verify=verify).raise_for_status()
            return info

        info = wait_for(started, timeout, message="control plane to start")
        self.api = info["api"]
        self.xds = info["xds"]
        return self

    def _keep_ports(self) -> None:
        # Restart on the same ports, so that clients find it again.
        self.api_port = int(self.api.rsplit(":", 1)[1])
        self.xds_port = int(self.xds.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL: a crash. `start()` brings it back on the same ports and state."""
        self._keep_ports()
        if self.process is not None:
            self.process.kill()
            self.process.stop()

    def restart(self, kill: bool = False) -> ControlPlane:
        """Stop (SIGTERM, or SIGKILL) and start again on the same ports and state."""
        if kill:
            self.kill()
        else:
            self._keep_ports()
            self.stop()
        return self.start()

    @property
    def token(self) -> str:
        return (self.state_dir / "admin.token").read_text().strip()

    def env(self) -> dict[str, str]:
        return {"GOSSAMER_STATE_DIR": str(self.state_dir), "GOSSAMER_CP": self.api}

    def cli(
        self, *args: str, input: str | None = None, check: bool = False, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env(), input=input, check=check, timeout=timeout)

    def stop(self) -> int | None:
        return self.process.stop() if self.process else None

    def output(self) -> str:
        return self.process.output() if self.process else ""


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    check: bool = False,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*GOSSAMER, *args],
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"gossamer {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result
