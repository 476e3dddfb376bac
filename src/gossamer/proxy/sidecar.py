"""The sidecar's main process: config source, admin listener, worker 0, and the workers.

`gossamer proxy run` resolves its flags into SidecarOptions and execs
`python -m gossamer.proxy.sidecar` with them (in GOSSAMER_PROXY_OPTIONS): the proxy then
runs in an interpreter that never imported the CLI's dependencies (click, httpx,
pydantic: ~28 MiB), only what the proxy needs.

Lifecycle:
- start: bind the admin listener (write --ready-file), start the workers, then get
  configs from the control plane (ADS) or the --config file;
- every config: applied here (worker 0), then sent to the workers; /ready turns 200
  once the first one is applied everywhere;
- control plane unreachable: keep serving the last config; the ADS client reconnects
  with jittered backoff; /ready stays 200 and its detail says so;
- SIGTERM, SIGINT or POST /quitquitquit: drain (stop accepting, /ready 503, finish in
  flight up to --drain-timeout), then exit 0. SIGHUP with --config: reload the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gossamer.core.logs import configure, get_logger
from gossamer.proxy.admin.api import AdminApi
from gossamer.proxy.config import model as m
from gossamer.proxy.filters import stats as st
from gossamer.proxy.filters import tap
from gossamer.proxy.io.admin import AdminServer
from gossamer.proxy.io.health import HealthReporter
from gossamer.proxy.node import Inbound, NodeInfo, Outbound
from gossamer.proxy.runtime import Runtime
from gossamer.proxy.workers import WorkerSupervisor

log = get_logger("proxy")
OPTIONS_ENV = "GOSSAMER_PROXY_OPTIONS"


@dataclass
class SidecarOptions:
    node: NodeInfo
    xds: str | None = None
    xds_ca: str | None = None  # set: xDS over TLS, the control plane verified with this
    token: str | None = None
    xds_protocol: str = "delta"  # or "sotw"
    config_file: str | None = None
    admin_host: str = "127.0.0.1"
    admin_port: int = 0
    ready_file: str | None = None
    workers: int = 1
    drain_timeout: float = 10.0
    header_timeout: float = 10.0
    request_metrics: bool = True  # False: no per-request series (telemetry off)
    log_level: str = "info"
    log_format: str = "text"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SidecarOptions:
        data = json.loads(text)
        node = data.pop("node")
        node["inbound"] = tuple(Inbound(**p) for p in node["inbound"])
        node["outbound"] = tuple(Outbound(**p) for p in node["outbound"])
        return cls(node=NodeInfo(**node), **data)


class Sidecar:
    def __init__(self, options: SidecarOptions) -> None:
        self.options = options
        self.runtime = Runtime(
            header_timeout=options.header_timeout, request_metrics=options.request_metrics
        )
        self.workers = WorkerSupervisor(
            options.workers, options.log_level, options.header_timeout, options.request_metrics
        )
        self.admin = AdminServer(AdminApi(self).handle)
        self.ads: Any = None  # gossamer.proxy.config.ads.AdsClient, imported only for xDS
        self.certs: Any = None  # gossamer.proxy.certs.CertManager, with xDS
        self._raw: m.ProxyConfig | None = None  # the last config from xDS, before our key
        self._ads_connects = 0
        self.started_at = time.time()
        self.first_applied_at: float | None = None
        self.draining = False
        self._stop = asyncio.Event()
        self._latest: m.ProxyConfig | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._tap_ids = itertools.count(1)

    # --- AdminTarget -------------------------------------------------------------------

    @property
    def config(self) -> m.ProxyConfig | None:
        return self.runtime.config

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        config = self.runtime.config
        workers_ready = self.workers.all_applied
        ready = config is not None and workers_ready and not self.draining
        # A config that needs TLS is not served until our certificate is here.
        waiting = (
            config is not None
            and self.certs is not None
            and self.certs.held is None
            and _uses_tls(config)
        )
        ready = ready and not waiting
        state = (
            "draining"
            if self.draining
            else "live"
            if ready
            else "waiting for certificate"
            if waiting
            else "initializing"
        )
        detail: dict[str, Any] = {
            "state": state,
            "config": {
                "source": "static" if self.options.config_file else "xds",
                "applied": config is not None,
                "appliedAt": self.runtime.applied_at or None,
                "versions": dict(config.versions) if config else {},
                "listeners": sorted(config.listeners) if config else [],
            },
            "xds": self._xds_status(),
            "workers": {
                "count": self.options.workers,
                "ready": workers_ready,
                "extra": self.workers.describe(),  # pid, alive, generation, listener errors
            },
            "listenerErrors": dict(self.runtime.listener_errors),
            "taps": len(tap.tapper.subscriptions),  # readers of /tap right now
        }
        if self.certs is not None:
            detail["certificate"] = self.certs.status()
        return ready, detail

    def _xds_status(self) -> dict[str, Any] | None:
        if self.ads is None:
            return None
        status = self.ads.status
        out = {
            "target": self.options.xds,
            "connected": status.connected,
            "connects": status.connects,
            "since": status.last_change,
        }
        if not status.connected:
            out["lastError"] = status.last_error or "not connected yet"
            if self.runtime.config is not None:
                out["note"] = "control plane unreachable: serving the last config"
        return out

    async def stats_snapshot(self) -> dict[str, Any]:
        snapshots = [self.runtime.stats.snapshot()]
        snapshots += [s for s in await self.workers.ask("stats") if s is not None]
        return st.merge(snapshots)

    def gauges(self) -> dict[str, float]:
        ready, _ = self.readiness()
        out = {"gossamer_ready": float(ready), "gossamer_workers": float(self.options.workers)}
        if self.ads is not None:
            out["gossamer_xds_connected"] = float(self.ads.status.connected)
        if self.certs is not None and self.certs.held is not None:
            left = self.certs.held.not_after - time.time()
            out["gossamer_certificate_expiry_seconds"] = round(left, 1)
            out["gossamer_certificate_days_to_expiry"] = round(left / 86400, 5)
            out["gossamer_certificate_renewals_total"] = float(self.certs.renewals)
        return out

    def metric_labels(self) -> st.Labels:
        """This workload's identity, listener directions and cluster services."""
        node = self.options.node
        local = st.Identity(
            node.namespace,
            node.service or node.gateway or st.UNKNOWN,
            node.workload or st.UNKNOWN,
            node.labels.get("version", st.UNKNOWN),
        )
        config = self.runtime.config
        if config is None:
            return st.Labels(local)
        # A gateway's listeners face clients outside the mesh, but for metrics the gateway
        # is the caller of the services it routes to: its requests are outbound.
        return st.Labels(
            local,
            {
                name: "outbound" if node.gateway else lst.direction
                for name, lst in config.listeners.items()
            },
            {
                name: (c.metadata.get("namespace", st.UNKNOWN), c.metadata["service"])
                for name, c in config.clusters.items()
                if c.metadata.get("service")
            },
        )

    def metric_info(self) -> dict[str, dict[str, str]]:
        """The xDS versions in use, as an info gauge (value 1, versions as labels)."""
        config = self.runtime.config
        if config is None:
            return {}
        versions = {
            url.rsplit(".", 1)[-1].lower(): version
            for url, version in sorted(config.versions.items())
        }
        return {"gossamer_config_info": versions}

    async def listeners(self) -> list[dict[str, Any]]:
        answers = await self.workers.ask("listeners")
        return [self.runtime.describe(), *(a for a in answers if a is not None)]

    async def tap(self, filter: tap.TapFilter) -> AsyncIterator[bytes]:
        """NDJSON lines of the requests this sidecar completes (all its processes), until
        the reader goes away (the admin server cancels us then)."""
        if len(tap.tapper.subscriptions) >= tap.MAX_SUBSCRIPTIONS:
            yield _line({"type": "error", "reason": "too many taps on this sidecar"})
            return
        node = self.options.node
        held = self.certs.held if self.certs is not None else None
        me = tap.Identity(
            proxy=node.node_id,
            workload=node.workload or node.gateway,
            service=node.service,
            namespace=node.namespace,
            identity=held.spiffe_id if held is not None else None,
        )
        tap.tapper.me = me
        queue = tap.Queue()
        sub_id = next(self._tap_ids)
        tap.tapper.add(tap.Subscription(sub_id, filter, queue.put))
        self.workers.tap(sub_id, filter.to_dict(), dataclasses.asdict(me), queue.put_many)
        reported = 0
        try:
            yield _line({"type": "start", "proxy": node.node_id, "workers": self.options.workers})
            while True:
                await queue.ready.wait()
                records = queue.take()
                out = b"".join(_line(r) for r in records)
                if queue.dropped != reported:
                    out += _line({"type": "dropped", "count": queue.dropped - reported})
                    reported = queue.dropped
                yield out
        finally:
            tap.tapper.remove(sub_id)
            self.workers.untap(sub_id)

    def drain(self) -> None:
        if not self.draining:
            log.info("draining: listeners stop accepting")
            self.draining = True
            self.runtime.drain()
            self.workers.drain()

    def quit(self) -> None:
        asyncio.get_running_loop().call_soon(self._stop.set)

    # --- running -----------------------------------------------------------------------

    def on_config(self, config: m.ProxyConfig) -> None:
        node = self.options.node
        # Who we are, for span service names; our token, for the built-in collector.
        local = m.LocalInfo(node.service, node.workload, node.namespace, self.options.token)
        config = replace(config, local=local)
        certs = self.certs
        if certs is not None:
            self._raw = config
            # Our private key joins the pushed certificate here, in this process only.
            config = replace(config, secrets=certs.complete(dict(config.secrets)))
            connects = self.ads.status.connects if self.ads is not None else 0
            if connects != self._ads_connects:
                if self._ads_connects and certs.held is not None:
                    certs.kick()  # a new stream: the control plane may have forgotten it
                self._ads_connects = connects
            if certs.held is None:
                certs.kick()  # our stream is open now: the control plane knows us
        self._latest = config  # coalesced: only the newest is applied
        self._wake.set()

    def _certificate_changed(self) -> None:
        if self._raw is not None:
            self.on_config(self._raw)

    async def _apply_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            config, self._latest = self._latest, None
            if config is None:
                continue
            try:
                await self.runtime.apply(config)
            except Exception:
                log.error("applying the config failed", exc_info=True)
                continue
            self.workers.push(config)
            if self.first_applied_at is None:
                self.first_applied_at = time.time()
            log.info(
                "config applied",
                listeners=len(config.listeners),
                clusters=len(config.clusters),
                routes=len(config.routes),
                listener_errors=len(self.runtime.listener_errors),
            )

    async def run(self) -> int:
        opts = self.options
        loop = asyncio.get_running_loop()
        try:
            await self.admin.start(opts.admin_host, opts.admin_port)
        except OSError as exc:
            log.error("cannot bind the admin listener", error=str(exc), port=opts.admin_port)
            return 2
        admin = f"{self.admin.address}:{self.admin.port}"
        log.info("admin listening", address=admin, node=opts.node.node_id, workers=opts.workers)
        print(f"gossamer proxy: admin on http://{admin}", flush=True)
        if opts.ready_file:
            _write_atomically(Path(opts.ready_file), {"admin": admin, "pid": os.getpid()})
        self.runtime.start()
        await self.workers.start()
        self._tasks.append(loop.create_task(self._apply_loop()))
        if opts.config_file:
            if not self._load_static():
                await self._shutdown(0.0)
                return 2
            loop.add_signal_handler(signal.SIGHUP, self._load_static)
        else:
            self._start_ads()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        await self._stop.wait()
        await self._shutdown(opts.drain_timeout)
        return 0

    def _load_static(self) -> bool:
        from gossamer.proxy.static import StaticConfigError, load_file

        path = Path(self.options.config_file or "")
        try:
            config = load_file(path)
        except StaticConfigError as exc:
            log.error("static config rejected; keeping the current one", error=str(exc))
            return False
        log.info("static config loaded", file=str(path))
        self.on_config(config)
        return True

    def _start_ads(self) -> None:
        from gossamer.proxy.config.ads import AdsClient, make_node

        opts = self.options
        node = dataclasses.replace(opts.node, admin_port=self.admin.port)
        proto_node = make_node(node.node_id, node.service or node.workload, node.metadata())
        assert opts.xds is not None
        credentials = None
        if opts.xds_ca:
            import grpc

            roots = Path(opts.xds_ca).read_bytes()
            credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        self.ads = AdsClient(
            opts.xds,
            proto_node,
            self.on_config,
            token=opts.token,
            credentials=credentials,
            delta=opts.xds_protocol == "delta",
        )
        log.info("connecting to the control plane", xds=opts.xds, protocol=opts.xds_protocol)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.ads.run()))
        # Active health checks run here (the main process); their results go to the CP.
        runtime = self.runtime
        reporter = HealthReporter(
            opts.xds,
            node.node_id,
            lambda: runtime.health.status(runtime.clusters),
            opts.token,
            credentials,
        )
        runtime.health.on_change = reporter.changed
        self._tasks.append(loop.create_task(reporter.run()))
        from gossamer.proxy.certs import CertManager

        self.certs = CertManager(
            opts.xds,
            node.node_id,
            token=opts.token,
            credentials=credentials,
            on_change=self._certificate_changed,
        )
        self._tasks.append(asyncio.get_running_loop().create_task(self.certs.run()))
        self._tasks.append(asyncio.get_running_loop().create_task(self._report_loop()))

    async def _report_loop(self, interval: float = 1.0) -> None:
        """Tell the control plane who talks plaintext to our TLS listeners (when it changes)."""
        last: dict[str, Any] | None = None
        while True:
            await asyncio.sleep(interval)
            modes = {
                name: "PERMISSIVE" if h.tls.allow_plaintext else "STRICT"
                for name, h in self.runtime.listeners.items()
                if h.tls is not None
            }
            if not modes or self.certs is None:
                continue
            try:
                snapshot = await self.stats_snapshot()
                listeners = {}
                for name, mode in modes.items():
                    ls = snapshot["listeners"].get(name, {})
                    listeners[name] = {
                        "mode": mode,
                        "tlsHandshakes": ls.get("tls_handshakes", 0),
                        "tlsFailures": ls.get("tls_failures", 0),
                        "plaintext": ls.get("plaintext", {}),
                        "plaintextRejected": ls.get("plaintext_rejected", {}),
                    }
                if listeners != last:
                    await self.certs.report(listeners)
                    last = listeners
            except Exception as exc:  # the next round tries again
                log.debug("mTLS report not sent", error=repr(exc))

    async def _shutdown(self, timeout: float) -> None:
        self.drain()
        log.info("shutting down", drain_timeout=timeout, connections=self.runtime.connections)
        if self.ads is not None:
            self.ads.stop()
        if self.certs is not None:
            self.certs.stop()
        await asyncio.gather(self.runtime.shutdown(timeout), self.workers.stop(timeout))
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.admin.stop()
        log.info("stopped")


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _uses_tls(config: m.ProxyConfig) -> bool:
    return any(lst.tls is not None for lst in config.listeners.values()) or any(
        c.tls is not None for c in config.clusters.values()
    )


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data) + "\n")
    tmp.replace(path)


def main() -> None:
    text = os.environ.pop(OPTIONS_ENV, None)
    if text is None:
        print("run this through `gossamer proxy run`", file=sys.stderr)
        sys.exit(2)
    options = SidecarOptions.from_json(text)
    configure(options.log_level, options.log_format)
    import uvloop

    sys.exit(uvloop.run(Sidecar(options).run()))


if __name__ == "__main__":
    main()
