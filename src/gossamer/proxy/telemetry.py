"""Per-process state behind tracing and access logs, kept across config swaps.

The Runtime asks `Telemetry` for a listener's Tracer and AccessLoggers when it builds
the listener's context. Span exporters (one per collector address) and log files (one
per path) outlive config swaps, so a new route does not lose queued spans or reopen
files; those no config uses any more are closed after the swap.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from typing import IO, Any

from gossamer.core.logs import get_logger
from gossamer.proxy.config import model as m
from gossamer.proxy.filters.accesslog import AccessLogger
from gossamer.proxy.filters.trace import CLIENT, SERVER, Tracer
from gossamer.proxy.io.exporter import SpanExporter

log = get_logger("proxy.telemetry")

ExporterKey = tuple[str, int, str, str | None]


class Telemetry:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.exporters: dict[ExporterKey, SpanExporter] = {}
        self.files: dict[str, IO[str]] = {}
        self._used_exporters: set[ExporterKey] = set()
        self._used_files: set[str] = set()
        self.errors: dict[str, str] = {}

    # --- building (during a config swap) -----------------------------------------------

    def begin(self) -> None:
        self._used_exporters = set()
        self._used_files = set()
        self.errors = {}

    def tracer(self, listener: m.Listener, config: m.ProxyConfig) -> Tracer | None:
        hcm = listener.handler
        assert isinstance(hcm, m.HttpConnectionManager)
        t = hcm.tracing
        if t is None:
            return None
        cluster = config.clusters.get(t.collector_cluster)
        if cluster is None or not cluster.endpoints:
            self.errors[listener.name] = (
                f"tracing: collector cluster {t.collector_cluster!r} has no endpoint"
            )
            return None
        ep = cluster.endpoints[0]
        local = config.local or m.LocalInfo()
        token = local.token if t.collector_cluster == m.BUILTIN_COLLECTOR else None
        key: ExporterKey = (ep.address, ep.port, t.collector_endpoint, token)
        exporter = self.exporters.get(key)
        if exporter is None:
            exporter = self.exporters[key] = SpanExporter(
                ep.address, ep.port, t.collector_endpoint, token=token
            )
            exporter.start()
        self._used_exporters.add(key)
        tags = [("gossamer.workload", local.workload), ("gossamer.namespace", local.namespace)]
        tags += list(t.tags)
        service = local.service or local.workload or listener.name
        kind = SERVER if listener.direction == "inbound" else CLIENT
        return Tracer(t.sampling, kind, service, tuple(tags), exporter, self.rng)

    def loggers(self, listener: m.Listener) -> tuple[AccessLogger, ...]:
        hcm = listener.handler
        assert isinstance(hcm, m.HttpConnectionManager)
        out = []
        for spec in hcm.access_logs:
            file = self._file(spec.path)
            if file is None:
                self.errors[listener.name] = f"access log: cannot open {spec.path}"
                continue
            out.append(AccessLogger(spec.path, spec.fields, file))
        return tuple(out)

    def _file(self, path: str) -> IO[str] | None:
        self._used_files.add(path)
        file = self.files.get(path)
        if file is not None:
            return file
        if path in ("/dev/stdout", "/dev/stderr"):
            file = sys.stdout if path == "/dev/stdout" else sys.stderr
        else:
            try:
                # Appended by every worker process: O_APPEND keeps their lines whole.
                file = open(path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
            except OSError as exc:
                log.error("cannot open the access log", path=path, error=str(exc))
                return None
        self.files[path] = file
        return file

    def end(self) -> None:
        """After the swap: close what the new config no longer uses."""
        for key in [k for k in self.exporters if k not in self._used_exporters]:
            exporter = self.exporters.pop(key)
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(exporter.stop())
        for path in [p for p in self.files if p not in self._used_files]:
            file = self.files.pop(path)
            with contextlib.suppress(OSError):
                file.flush()
                if file not in (sys.stdout, sys.stderr):
                    file.close()

    # --- running -----------------------------------------------------------------------

    def flush(self) -> None:
        for path, file in self.files.items():
            try:
                file.flush()
            except (OSError, ValueError) as exc:
                log.warning("access log flush failed", path=path, error=str(exc))

    async def close(self) -> None:
        for exporter in self.exporters.values():
            await exporter.stop()
        self.exporters.clear()
        self.flush()
        for file in self.files.values():
            if file not in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError):
                    file.close()
        self.files.clear()

    def describe(self) -> dict[str, Any]:
        return {
            "exporters": [
                {
                    "collector": f"{e.host}:{e.port}{e.path}",
                    "queued": e.stats.queued,
                    "exported": e.stats.exported,
                    "dropped": e.stats.dropped,
                    "failed": e.stats.failed,
                    "pending": len(e.queue),
                }
                for e in self.exporters.values()
            ],
            "accessLogs": sorted(self.files),
            "errors": dict(self.errors),
        }
