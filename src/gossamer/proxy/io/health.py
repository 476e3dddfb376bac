"""Active health checks run by the sidecar: one task per cluster that has a check.

Each round (every `interval`, lengthened by a random 0..`interval_jitter`) probes every
endpoint of the cluster at once, each probe bounded by `timeout`, and feeds the results
to the state machine in filters/health.py. HTTP: a GET of the path, healthy when the
status is in the expected ranges. TCP: connect, send the payload, expect the bytes.
gRPC: grpc.health.v1.Health/Check answered SERVING. Tasks follow config swaps: a
cluster whose check changed gets a new task; one that lost its check is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from gossamer.core.logs import get_logger
from gossamer.proxy.config import model as m
from gossamer.proxy.filters import health
from gossamer.proxy.filters.balance import EndpointState

if TYPE_CHECKING:
    from gossamer.proxy.cluster import ClusterRuntime

log = get_logger("proxy.health")
OnChange = Callable[[str, EndpointState, bool], None]


async def probe(cfg: m.HealthCheck, address: str, port: int) -> bool:
    """One check of one endpoint; False on any error or when `timeout` passes."""
    try:
        async with asyncio.timeout(cfg.timeout):
            if cfg.kind == "grpc":
                return await _grpc(cfg, address, port)
            reader, writer = await asyncio.open_connection(address, port)
            try:
                if cfg.kind == "http":
                    host = cfg.host or f"{address}:{port}"
                    extra = "".join(f"{k}: {v}\r\n" for k, v in cfg.headers)
                    writer.write(
                        f"{cfg.method} {cfg.path} HTTP/1.1\r\nHost: {host}\r\n{extra}"
                        "User-Agent: gossamer-health-check\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n\r\n".encode()
                    )
                    line = await reader.readline()
                    parts = line.split(b" ", 2)
                    return (
                        len(parts) >= 2
                        and parts[1].isdigit()
                        and health.http_ok(cfg, int(parts[1]))
                    )
                if cfg.send:
                    writer.write(cfg.send)
                if not cfg.receive:
                    return True
                data = b""
                while len(data) < len(cfg.receive):  # the answer must start with it
                    chunk = await reader.read(4096)
                    if not chunk:
                        return False
                    data += chunk
                return data.startswith(cfg.receive)
            finally:
                writer.close()
    except (OSError, TimeoutError, ValueError):
        return False


async def _grpc(cfg: m.HealthCheck, address: str, port: int) -> bool:
    import grpc

    async with grpc.aio.insecure_channel(f"{address}:{port}") as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            response = await check(health.grpc_request(cfg.grpc_service), timeout=cfg.timeout)
        except grpc.aio.AioRpcError:
            return False
        return health.grpc_serving(response)


class HealthCheckers:
    def __init__(self, rng: random.Random, on_change: OnChange | None = None) -> None:
        self.rng = rng
        self.on_change = on_change
        self._tasks: dict[str, tuple[m.HealthCheck, asyncio.Task[None]]] = {}
        self.checks_total = 0

    def reconcile(self, clusters: Mapping[str, ClusterRuntime]) -> None:
        for name, (cfg, task) in list(self._tasks.items()):
            runtime = clusters.get(name)
            if runtime is None or runtime.config.health_check != cfg:
                task.cancel()
                del self._tasks[name]
                if runtime is not None and runtime.config.health_check is None:
                    for ep in runtime.endpoints.values():
                        if ep.hc_failed:  # checks are off: the endpoint is up again
                            ep.hc_failed = False
                            ep.refresh()
        loop = asyncio.get_running_loop()
        for name, runtime in clusters.items():
            check = runtime.config.health_check
            if check is not None and name not in self._tasks:
                self._tasks[name] = (check, loop.create_task(self._run(name, runtime, check)))

    async def _run(self, name: str, runtime: ClusterRuntime, cfg: m.HealthCheck) -> None:
        # The runtime object lives as long as the cluster (updated in place by swaps);
        # reconcile() cancels this task when the cluster or its check goes.
        while True:
            endpoints = list(runtime.endpoints.values())
            results = await asyncio.gather(*(probe(cfg, e.address, e.port) for e in endpoints))
            self.checks_total += len(endpoints)
            for ep, ok in zip(endpoints, results, strict=True):
                if health.record(ep, ok, cfg):
                    log.info(
                        "endpoint health changed",
                        cluster=name,
                        endpoint=f"{ep.address}:{ep.port}",
                        healthy=ok,
                    )
                    if self.on_change is not None:
                        self.on_change(name, ep, ok)
            await asyncio.sleep(cfg.interval + self.rng.uniform(0, cfg.interval_jitter))

    def status(self, clusters: Mapping[str, ClusterRuntime]) -> dict[str, dict[str, bool]]:
        """{cluster: {"address:port": healthy}} for the clusters being checked."""
        return {
            name: {f"{ep.address}:{ep.port}": not ep.hc_failed for ep in runtime.endpoints.values()}
            for name, runtime in clusters.items()
            if name in self._tasks
        }

    async def stop(self) -> None:
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


REPORT_METHOD = "/gossamer.health.v1.EndpointHealth/Report"
REPORT_EVERY = 30.0  # also resent periodically: the control plane may have restarted


class HealthReporter:
    """Sends the checks' results to the control plane (controlplane/health.py): soon
    after a change, and every REPORT_EVERY seconds while anything is checked."""

    def __init__(
        self,
        target: str,
        node_id: str,
        status: Callable[[], dict[str, dict[str, bool]]],
        token: str | None = None,
        credentials: Any = None,  # grpc.ChannelCredentials when the control plane is TLS
    ) -> None:
        self.credentials = credentials
        self.target = target
        self.node_id = node_id
        self.status = status
        self.token = token
        self.sent = 0
        self._wake = asyncio.Event()
        self._reported = False  # something was reported (an empty report clears it)

    def changed(self, cluster: str, ep: EndpointState, ok: bool) -> None:
        self._wake.set()

    async def run(self) -> None:
        import json

        import grpc

        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        channel = (
            grpc.aio.secure_channel(self.target, self.credentials)
            if self.credentials is not None
            else grpc.aio.insecure_channel(self.target)
        )
        async with channel:
            report = channel.unary_unary(REPORT_METHOD)
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), REPORT_EVERY)
                self._wake.clear()
                await asyncio.sleep(0.05)  # gather the changes of one round
                clusters = self.status()
                if not clusters and not self._reported:
                    continue
                self._reported = bool(clusters)
                body = json.dumps({"node": self.node_id, "clusters": clusters}).encode()
                try:
                    await report(body, timeout=5.0, metadata=metadata)
                    self.sent += 1
                except grpc.aio.AioRpcError as exc:
                    log.warning("health report failed", error=exc.code().name)
