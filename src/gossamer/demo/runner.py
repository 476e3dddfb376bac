"""Runs a scenario: a throwaway control plane, the apps under `gossamer run`, an ingress
gateway, then each step's resources, with traffic through the ingress and the observed
split checked against the configured one. Every process it starts, it stops."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gossamer.demo.scenarios import Counter, Scenario, Step
from gossamer.demo.traffic import Driver, Window
from gossamer.universal.run import free_port

GOSSAMER = [sys.executable, "-m", "gossamer"]


class DemoFailed(Exception):
    pass


@dataclass
class StepResult:
    step: Step
    window: Window | None = None
    settle_seconds: float | None = None
    errors: int = 0
    passed: bool | None = None  # None: running
    counted: dict[str, float] = field(default_factory=dict)  # Counter.label → increase

    def observed(self) -> dict[str, float]:
        return self.window.shares() if self.window else {}


def within(expected: dict[str, float], observed: dict[str, float], n: int) -> bool:
    """Each backend's share within max(4 points, 4 standard errors) of what was asked."""
    for backend in set(expected) | set(observed):
        p = expected.get(backend, 0.0)
        exact = p in (0.0, 1.0)
        tolerance = 0.01 if exact else max(0.04, 4 * math.sqrt(p * (1 - p) / max(n, 1)))
        if abs(observed.get(backend, 0.0) - p) > tolerance:
            return False
    return True


def _split_text(shares: dict[str, float]) -> str:
    return "  ".join(f"{k} {v * 100:.0f}%" for k, v in sorted(shares.items())) or "-"


@dataclass
class Demo:
    scenario: Scenario
    duration: float = 5.0
    interactive: bool = False
    # Set: run the steps up to this one, then keep the mesh and its traffic running until
    # SIGINT/SIGTERM (to look at it with `gossamer stat`, Prometheus, the dashboard).
    hold_after: int | None = None
    settle_timeout: float = 10.0
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)
    api: str = ""
    token: str = ""
    log_dir: Path | None = None
    results: list[StepResult] = field(default_factory=list)
    interrupted: bool = False
    # "${name}" placeholders of steps and env: ports of the apps outside the mesh.
    values: dict[str, str] = field(default_factory=dict)
    admins: dict[str, int] = field(default_factory=dict)  # app name → sidecar admin port

    def fill(self, text: str) -> str:
        for key, value in self.values.items():
            text = text.replace("${" + key + "}", value)
        return text

    def counter(self, c: Counter) -> float:
        """The sum of a sidecar metric's samples whose labels contain `c.match`."""
        port = self.admins[c.app]
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/stats/prometheus", timeout=5).text
        except httpx.HTTPError as exc:
            raise DemoFailed(f"cannot read {c.app}'s sidecar metrics: {exc}") from None
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(c.metric + "{") and c.match in line
        )

    # --- processes ---------------------------------------------------------------------

    def _spawn(self, args: list[str], name: str, env: dict[str, str] | None = None) -> None:
        assert self.log_dir is not None
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - child owns it
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: we stop it and its children
        )
        log.close()
        self.children.append(proc)
        self.names[proc.pid] = name

    def stop_all(self) -> None:
        """SIGTERM each child's process group, newest first; SIGKILL what lingers."""
        for proc in reversed(self.children):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.children):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: sidecar workers, the app
            if proc.poll() is None:
                proc.wait(5)

    def _check(self, what: str) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        for proc in self.children:
            if proc.poll() is not None:
                name = self.names.get(proc.pid, "a process")
                raise DemoFailed(f"{name} exited (code {proc.returncode}) during {what}")

    def _wait(self, what: str, check: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check(f"the wait for {what}")
            try:
                value = check()
                if value:
                    return value
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(0.05)
        raise DemoFailed(f"timed out after {timeout:g}s waiting for {what}")

    # --- the control plane's API -------------------------------------------------------

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api, headers={"authorization": f"Bearer {self.token}"}, timeout=10
        )

    def apply(self, text: str) -> None:
        with self._client() as c:
            r = c.post("/api/v1/apply", content=text, headers={"content-type": "application/yaml"})
            if r.status_code != 200:
                raise DemoFailed(f"apply failed: {r.json().get('error')}")

    def delete(self, ref: str) -> None:
        kind, name = ref.split("/", 1)
        with self._client() as c:
            r = c.delete(f"/api/v1/namespaces/default/{kind}/{name}")
            if r.status_code not in (200, 404):
                raise DemoFailed(f"delete {ref} failed: {r.text}")

    def proxies(self) -> list[dict[str, Any]]:
        with self._client() as c:
            items: list[dict[str, Any]] = c.get("/api/v1/proxies").json()["items"]
            return items

    # --- the run ---------------------------------------------------------------------------

    def start_mesh(self, state: Path) -> int:
        s = self.scenario
        self.log_dir = state / "logs"
        self.log_dir.mkdir(parents=True)
        cp_dir = state / "cp"
        self._spawn(
            [*GOSSAMER, "controlplane", "run", "--state-dir", str(cp_dir), "--store", "memory://",
             "--api-port", "0", "--xds-port", "0", "--workload-grace", "2"],
            "controlplane",
        )  # fmt: skip
        info = self._wait(
            "the control plane",
            lambda: json.loads((cp_dir / "controlplane.json").read_text()),
            30,
        )
        self.api, xds = info["api"], info["xds"]
        self.token = (cp_dir / "admin.token").read_text().strip()
        self._wait("the API", lambda: httpx.get(self.api + "/readyz").status_code == 200, 10)
        # Proxies find the admin token there and mint their own data-plane tokens.
        mesh_env = {"GOSSAMER_STATE_DIR": str(cp_dir), "GOSSAMER_CP": self.api}
        if s.setup:
            self.apply(s.setup)
        for app in s.apps:
            if not app.meshed:
                port = free_port()
                self.values[f"{app.name}_port"] = str(port)
                env = {**app.env, "PORT": str(port), "HOST": "127.0.0.1"}
                self._spawn([sys.executable, "-m", app.module], app.name, env)
        for app in s.apps:
            if not app.meshed:
                continue
            args = [
                *GOSSAMER, "run", "--xds", xds, "--service", app.service, "--name", app.name,
                "--namespace", app.namespace, "--port", str(app.port), "--protocol", app.protocol,
            ]  # fmt: skip
            if app.admin:
                self.admins[app.name] = free_port()
                args += ["--admin-port", str(self.admins[app.name])]
            for key, value in app.labels.items():
                args += ["--label", f"{key}={value}"]
            env = {k: self.fill(v) for k, v in app.env.items()}
            self._spawn(
                [*args, "--", sys.executable, "-m", app.module], app.name, {**env, **mesh_env}
            )
        gateway_port = free_port()
        self.apply(s.gateway.format(port=gateway_port))
        ready = state / "gateway.json"
        self._spawn(
            [*GOSSAMER, "proxy", "run", "--xds", xds, "--gateway", "ingress", "--id", "ingress",
             "--workload", "ingress", "--service", "ingress", "--admin-port", "0",
             "--ready-file", str(ready), "--workers", "1"],
            "gateway",
            mesh_env,
        )  # fmt: skip
        expected = sum(1 for app in s.apps if app.meshed) + 1

        def connected() -> bool:
            up = [p for p in self.proxies() if p["state"] == "connected" and p["types"]]
            return len(up) >= expected

        self._wait("every proxy to connect", connected, 60)
        admin = self._wait("the gateway", lambda: json.loads(ready.read_text())["admin"], 30)
        self._wait(
            "the gateway to be ready",
            lambda: httpx.get(f"http://{admin}/ready").status_code == 200,
            30,
        )
        return gateway_port

    def run_steps(self, driver: Driver, live: Live | None) -> None:
        for step in self.scenario.steps[: self.hold_after]:
            result = StepResult(step)
            self.results.append(result)
            for ref in step.delete:
                self.delete(ref)
            if step.apply:
                self.apply(self.fill(step.apply))
            began = time.monotonic()
            errors = driver.reset().errors
            # Converge: the split must follow the change (sampled over short windows).
            while True:
                self._check(step.title)
                time.sleep(0.5)
                w = driver.reset()
                errors += w.errors
                result.window = w
                self._refresh(live, driver)
                if w.total >= 20 and within(step.expect, w.shares(), w.total):
                    result.settle_seconds = time.monotonic() - began
                    break
                if time.monotonic() - began > self.settle_timeout:
                    break
            # Measure.
            end = time.monotonic() + self.duration
            before = {c.label: self.counter(c) for c in step.counters}
            driver.reset()
            while time.monotonic() < end:
                self._check(step.title)
                time.sleep(0.25)
                result.window = driver.window
                self._refresh(live, driver)
            w = driver.reset()
            result.window = w
            result.errors = errors + w.errors
            result.counted = {c.label: self.counter(c) - before[c.label] for c in step.counters}
            result.passed = (
                result.settle_seconds is not None
                and result.errors == 0
                and within(step.expect, w.shares(), w.total)
                and all(n > 0 for n in result.counted.values())
            )
            self._refresh(live, driver)
            if live is None:
                self._print_step(len(self.results), result)

    def _warm_up(self, driver: Driver) -> None:
        """Wait until requests flow end to end (every sidecar has its first config and
        every app listens) before the first step counts anything."""
        deadline = time.monotonic() + 60
        driver.reset()
        while time.monotonic() < deadline:
            self._check("the warm-up")
            time.sleep(0.5)
            w = driver.reset()
            if w.errors == 0 and w.ok >= 10:
                return
        raise DemoFailed("requests through the ingress kept failing for 60 s")

    def _print_step(self, index: int, r: StepResult) -> None:
        w = r.window or Window()
        mark = "ok" if r.passed else "FAILED"
        settle = f"{r.settle_seconds:.1f}s" if r.settle_seconds is not None else "never"
        self.out.write(
            f"step {index}: {r.step.title}\n"
            f"  configured {_split_text(r.step.expect)} | observed {_split_text(w.shares())} "
            f"over {w.total} requests | followed in {settle} | {w.rps():.0f} req/s, "
            f"success {w.success_rate() * 100:.1f}%, p50 {w.percentile(0.5) * 1000:.1f} ms, "
            f"p99 {w.percentile(0.99) * 1000:.1f} ms, errors {r.errors}"
            f"{' ' + str(dict(w.error_kinds)) if w.error_kinds else ''} | {mark}\n"
        )
        for label, n in r.counted.items():
            self.out.write(f"  counted: {label} {n:g} times\n")
        self.out.flush()

    def _table(self, driver: Driver | None) -> Group:
        table = Table(title=f"gossamer demo {self.scenario.name}", expand=False)
        for col in ("step", "configured", "observed", "req/s", "success", "p50", "p99", ""):
            table.add_column(col)
        for i, r in enumerate(self.results, 1):
            w = r.window or Window()
            mark = {None: "…", True: "[green]✓", False: "[red]✗"}[r.passed]
            table.add_row(
                f"{i}. {r.step.title}",
                _split_text(r.step.expect),
                _split_text(w.shares()),
                f"{w.rps():.0f}",
                f"{w.success_rate() * 100:.1f}%",
                f"{w.percentile(0.5) * 1000:.1f}ms",
                f"{w.percentile(0.99) * 1000:.1f}ms",
                mark,
            )
        footer = Text(
            f"dashboard and API: {self.api}   logs: {self.log_dir}   Ctrl-C stops everything",
            style="dim",
        )
        return Group(table, footer)

    def _refresh(self, live: Live | None, driver: Driver) -> None:
        if live is not None:
            live.update(self._table(driver))

    def run(self) -> int:
        s = self.scenario
        previous = signal.signal(signal.SIGTERM, lambda *_: setattr(self, "interrupted", True))
        driver: Driver | None = None
        with tempfile.TemporaryDirectory(prefix=f"gossamer-demo-{s.name}-") as tmp:
            try:
                self.out.write(f"gossamer demo {s.name}: {s.description}\n")
                self.out.write("starting the control plane, the apps and the gateway...\n")
                self.out.flush()
                port = self.start_mesh(Path(tmp))
                self.out.write(f"ingress on 127.0.0.1:{port}{s.path}   API and GUI: {self.api}\n")
                self.out.flush()
                driver = Driver(s.traffic, "127.0.0.1", port, s.classify, s.path)
                driver.start()
                self._warm_up(driver)
                if self.interactive:
                    with Live(self._table(driver), console=Console(), refresh_per_second=4) as live:
                        self.run_steps(driver, live)
                        live.update(self._table(driver))
                    self.out.write("all steps done; the mesh keeps running (Ctrl-C stops it)\n")
                    while not self.interrupted:
                        time.sleep(0.5)
                else:
                    self.run_steps(driver, None)
                    if self.hold_after is not None:
                        self.out.write(
                            f"holding after step {len(self.results)}: traffic goes on "
                            "(Ctrl-C stops everything)\n"
                        )
                        self.out.flush()
                        while not self.interrupted:
                            self._check("holding")
                            time.sleep(0.5)
            except KeyboardInterrupt:
                self.interrupted = True
                self.out.write("\ninterrupted; stopping everything\n")
            except DemoFailed as exc:
                self.out.write(f"demo failed: {exc}\n")
                self._dump_logs()
                return 1
            finally:
                if driver is not None:
                    driver.stop()
                self.stop_all()
                signal.signal(signal.SIGTERM, previous)
        if self.interrupted:
            return 130
        failed = [r for r in self.results if not r.passed]
        self.out.write(
            f"{len(self.results) - len(failed)}/{len(self.results)} steps held their expectation\n"
        )
        return 1 if failed else 0

    def _dump_logs(self) -> None:
        if self.log_dir is None:
            return
        for log in sorted(self.log_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            self.out.write(f"--- {log.name} (last lines) ---\n" + "\n".join(lines) + "\n")
