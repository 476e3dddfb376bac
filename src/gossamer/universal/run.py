"""`gossamer run`: an app and its sidecar as one unit, in universal mode.

1. allocate ports: the app's (PORT), the sidecar's inbound listener, its HTTP proxy
   listener (HTTP_PROXY) and admin port, unless given;
2. start the sidecar (`gossamer proxy run`), which registers the workload with the
   control plane, and wait until it is ready (its first config applied);
3. start the app with PORT, HOST, HTTP_PROXY/http_proxy and NO_PROXY set;
4. forward SIGINT/SIGTERM to the app; when the app exits, drain and stop the sidecar and
   exit with the app's code. If the sidecar dies, stop the app.
Output of both is prefixed by the workload name (`[benigno-v1] …`, `[benigno-v1/proxy] …`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now (the kernel's pick); good enough on one machine."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class RunSpec:
    service: str
    command: Sequence[str]
    xds: str
    name: str
    namespace: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    port: int = 8080  # the service port, as callers name it
    protocol: str = "http"
    app_port: int = 0
    inbound_port: int = 0
    http_proxy_port: int = 0
    admin_port: int = 0
    outbound: Sequence[str] = ()  # SVC:SVCPORT=LISTENPORT
    workers: int = 1
    token: str | None = None
    ready_timeout: float = 30.0
    state_dir: Path | None = None
    extra_proxy_args: Sequence[str] = ()


def _pump(stream: IO[bytes], prefix: str, out: IO[str]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        out.write(f"{prefix} {line}\n")
        out.flush()


class Runner:
    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.sidecar: subprocess.Popen[bytes] | None = None
        self.app: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def _start(
        self, args: Sequence[str], env: dict[str, str], prefix: str
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        thread = threading.Thread(target=_pump, args=(proc.stdout, prefix, sys.stdout), daemon=True)
        thread.start()
        self._threads.append(thread)
        return proc

    def proxy_args(self, ready_file: Path) -> list[str]:
        s = self.spec
        args = [
            sys.executable, "-m", "gossamer", "proxy", "run",
            "--xds", s.xds,
            "--id", s.name,
            "--workload", s.name,
            "--namespace", s.namespace,
            "--service", s.service,
            "--inbound", f"{s.port}:{s.app_port}:{s.inbound_port}:{s.protocol}",
            "--http-proxy-port", str(s.http_proxy_port),
            "--admin-port", str(s.admin_port),
            "--ready-file", str(ready_file),
            "--workers", str(s.workers),
        ]  # fmt: skip
        for key, value in s.labels.items():
            args += ["--label", f"{key}={value}"]
        for outbound in s.outbound:
            args += ["--outbound", outbound]
        if s.token:
            args += ["--token", s.token]
        return args + list(s.extra_proxy_args)

    def _wait_ready(self, ready_file: Path) -> None:
        deadline = time.monotonic() + self.spec.ready_timeout
        while time.monotonic() < deadline:
            assert self.sidecar is not None
            if self.sidecar.poll() is not None:
                raise RuntimeError(f"the sidecar exited with code {self.sidecar.returncode}")
            try:
                admin = json.loads(ready_file.read_text())["admin"]
                with urllib.request.urlopen(f"http://{admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the sidecar was not ready within {self.spec.ready_timeout:g}s")

    def run(self) -> int:
        s = self.spec
        s.app_port = s.app_port or free_port()
        s.inbound_port = s.inbound_port or free_port()
        s.http_proxy_port = s.http_proxy_port or free_port()
        ready_file = Path(f"/tmp/gossamer-run-{os.getpid()}-{s.name}.json")
        ready_file.unlink(missing_ok=True)
        base_env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy",)}
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        try:
            self.sidecar = self._start(self.proxy_args(ready_file), base_env, f"[{s.name}/proxy]")
            self._wait_ready(ready_file)
            proxy_url = f"http://127.0.0.1:{s.http_proxy_port}"
            app_env = {
                **base_env,
                "PORT": str(s.app_port),
                "HOST": "127.0.0.1",
                "HTTP_PROXY": proxy_url,
                "http_proxy": proxy_url,
                # Loopback (the sidecar's own admin port, the app's own port) goes direct.
                "NO_PROXY": "localhost,127.0.0.1,::1",
                "no_proxy": "localhost,127.0.0.1,::1",
                "GOSSAMER_SERVICE": s.service,
                "GOSSAMER_WORKLOAD": s.name,
                "GOSSAMER_NAMESPACE": s.namespace,
            }
            if self._stopping:
                return 130
            self.app = self._start(list(s.command), app_env, f"[{s.name}]")
            code = self._supervise()
        except (RuntimeError, OSError) as exc:
            sys.stderr.write(f"[{s.name}] error: {exc}\n")
            code = 1
        finally:
            self._stop_all()
            ready_file.unlink(missing_ok=True)
        return code

    def _supervise(self) -> int:
        assert self.app is not None and self.sidecar is not None
        while True:
            code = self.app.poll()
            if code is not None:
                return code if code >= 0 else 128 - code
            if self.sidecar.poll() is not None:
                sys.stderr.write(f"[{self.spec.name}] the sidecar exited; stopping the app\n")
                self._terminate(self.app, 10)
                return 1
            time.sleep(0.1)

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True
        if self.app is not None and self.app.poll() is None:
            self.app.send_signal(signum)  # the app decides how to stop; we follow
        elif self.app is None and self.sidecar is not None:
            self._terminate(self.sidecar, 5)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _stop_all(self) -> None:
        if self.app is not None:
            self._terminate(self.app, 10)
        if self.sidecar is not None:
            self._terminate(self.sidecar, 15)
        for t in self._threads:
            t.join(2)
