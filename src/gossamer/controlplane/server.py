"""The control-plane process: store, REST API (and later xDS, CA), on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from gossamer import __version__
from gossamer.controlplane.auth import (
    TOKENS_FILE,
    TokenAuthority,
    TokenStore,
    XdsAuthenticator,
    load_or_create_admin_token,
)
from gossamer.controlplane.ca import CertificateAuthority
from gossamer.controlplane.ca import service as ca_service
from gossamer.controlplane.collector import TraceStore
from gossamer.controlplane.controller import MeshController
from gossamer.controlplane.health import HealthReports
from gossamer.controlplane.http.api import ApiContext, ReadAccess, create_app
from gossamer.controlplane.http.ca import ca_metrics, ca_routes
from gossamer.controlplane.http.proxies import proxy_routes
from gossamer.controlplane.http.tokens import token_routes
from gossamer.controlplane.http.traces import trace_routes
from gossamer.controlplane.http.ui import ui_routes
from gossamer.controlplane.memory import trim_when_grown
from gossamer.controlplane.metrics.collector import Collector
from gossamer.controlplane.metrics.routes import stats_routes
from gossamer.controlplane.store import BaseStore, open_store
from gossamer.controlplane.xds import XdsServer
from gossamer.core.logs import get_logger

log = get_logger("controlplane")

CONTROLPLANE_FILE = "controlplane.json"


@dataclass
class ControlPlaneConfig:
    state_dir: Path
    store_url: str = "sqlite://"
    api_host: str = "127.0.0.1"
    api_port: int = 5681
    xds_host: str = "127.0.0.1"
    xds_port: int = 5678
    read_access: ReadAccess = "loopback"
    # How long a disconnected sidecar's workload stays registered (it may reconnect).
    workload_grace: float = 15.0
    # A provided CA (root or intermediate, PEM; the cert file may hold the chain).
    ca_cert: Path | None = None
    ca_key: Path | None = None
    # Proxyless gRPC clients have no token in their bootstrap: allowed unless this is off.
    anonymous_proxyless: bool = True
    # Serve the API and xDS over TLS: a given certificate, or one from the built-in CA.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_auto: bool = False


class _Uvicorn(uvicorn.Server):
    # The control plane owns signal handling for all its servers.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class ControlPlane:
    def __init__(self, config: ControlPlaneConfig) -> None:
        self.config = config
        self.store: BaseStore | None = None
        self._api: _Uvicorn | None = None
        self._api_task: asyncio.Task[None] | None = None
        self.api_url = ""
        self.xds_address = ""
        self.xds: XdsServer | None = None
        self.controller: MeshController | None = None
        self.collector: Collector | None = None
        self._stopping = asyncio.Event()
        self._trim_task: asyncio.Task[None] | None = None
        self.tls_bundle: Path | None = None  # what clients verify the API and xDS with
        self.traces = TraceStore()  # the built-in trace collector

    async def start(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(cfg.store_url, cfg.state_dir)
        tokens = TokenAuthority(
            load_or_create_admin_token(cfg.state_dir), TokenStore(cfg.state_dir / TOKENS_FILE)
        )
        ca = CertificateAuthority(
            cfg.state_dir / "ca", _trust_domain(self.store), cfg.ca_cert, cfg.ca_key
        )
        self.controller = MeshController(
            self.store,
            grace=cfg.workload_grace,
            ca=ca,
            authenticator=XdsAuthenticator(tokens, cfg.anonymous_proxyless),
        )
        self.xds = XdsServer(self.controller)
        self.xds.extra_handlers.append(ca_service.handler(self.controller))
        self.controller.server = self.xds
        health = HealthReports(self.controller)
        self.xds.extra_handlers.append(health.grpc_handler())
        await self.controller.start()
        tls = self._server_tls(ca)
        credentials = None
        if tls is not None:
            import grpc

            credentials = grpc.ssl_server_credentials([(tls[1].read_bytes(), tls[0].read_bytes())])
        xds_port = await self.xds.start(cfg.xds_host, cfg.xds_port, credentials)
        self.xds_address = f"{cfg.xds_host}:{xds_port}"
        self.collector = Collector(self._scrape_targets)
        self.collector.start()
        ctx = ApiContext(
            store=self.store,
            tokens=tokens,
            read_access=cfg.read_access,
            extra_routes=[
                proxy_routes(self.controller, self.xds),
                ca_routes(self.controller),
                token_routes(tokens),
                health.routes(),
                stats_routes(self.collector, self._own_metrics),
                trace_routes(self.traces),
                ui_routes(),
            ],
        )
        app = create_app(ctx)
        sock = bind_tcp(cfg.api_host, cfg.api_port)
        host, port = sock.getsockname()[:2]
        scheme = "https" if tls is not None else "http"
        self.api_url = (
            f"{scheme}://{host}:{port}" if ":" not in host else f"{scheme}://[{host}]:{port}"
        )
        server = _Uvicorn(
            uvicorn.Config(
                app,
                log_level="warning",
                access_log=False,
                lifespan="off",
                ssl_certfile=str(tls[0]) if tls is not None else None,
                ssl_keyfile=str(tls[1]) if tls is not None else None,
            )
        )
        self._api = server
        self._api_task = asyncio.create_task(server.serve(sockets=[sock]), name="api")
        while not server.started:
            if self._api_task.done():
                self._api_task.result()  # raise what stopped it
            await asyncio.sleep(0.01)
        if tls is None:
            # The built-in trace collector; sidecars' exporters speak plain HTTP only.
            reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            self.controller.set_collector(reachable, port)
        else:
            log.warning("tracing backend `builtin` needs the API without TLS; use `zipkin`")
        self._trim_task = asyncio.create_task(trim_when_grown(), name="trim")
        self._write_discovery_file()
        log.info(
            "control plane started",
            version=__version__,
            api=self.api_url,
            xds=self.xds_address,
            store=cfg.store_url,
            state_dir=str(cfg.state_dir),
        )

    def _server_tls(self, ca: CertificateAuthority) -> tuple[Path, Path] | None:
        """(certificate chain, key) files to serve the API and xDS with, or None."""
        cfg = self.config
        if cfg.tls_cert is not None and cfg.tls_key is not None:
            return cfg.tls_cert, cfg.tls_key
        if not cfg.tls_auto:
            return None
        names = ["localhost", socket.gethostname()]
        ips = ["127.0.0.1"]
        for host in {cfg.api_host, cfg.xds_host}:
            if host.replace(".", "").isdigit() and host not in ("0.0.0.0", *ips):
                ips.append(host)
        chain, key = ca.issue_server_cert(names, ips, 365 * 86400.0)
        directory = cfg.state_dir / "tls"
        directory.mkdir(mode=0o700, exist_ok=True)
        cert_path, key_path = directory / "server.crt", directory / "server.key"
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        cert_path.write_bytes(chain)
        bundle = directory / "ca.pem"
        bundle.write_bytes(ca.trust_bundle())
        self.tls_bundle = bundle
        log.info("serving API and xDS over TLS", certificate=str(cert_path), ca_bundle=str(bundle))
        return cert_path, key_path

    def _write_discovery_file(self) -> None:
        # How the CLI on this machine finds us without flags.
        info: dict[str, object] = {
            "api": self.api_url,
            "xds": self.xds_address,
            "pid": os.getpid(),
            "version": __version__,
        }
        if self.tls_bundle is not None or self.api_url.startswith("https"):
            info["xdsTls"] = True
            info["caBundle"] = str(self.tls_bundle) if self.tls_bundle else None
        path = self.config.state_dir / CONTROLPLANE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(path)

    def _scrape_targets(self) -> list[tuple[str, str]]:
        """Every connected sidecar and gateway that announced its admin port."""
        if self.controller is None:
            return []
        out = []
        for node_id, record in self.controller.proxies.items():
            node = record.node
            if record.streams and node.admin_port:
                host = f"[{node.address}]" if ":" in node.address else node.address
                out.append((node_id, f"http://{host}:{node.admin_port}/stats/prometheus"))
        return out

    def _own_metrics(self) -> str:
        """xDS streams, pushes and NACKs, connected proxies, and the CA's gauges."""
        xds, controller = self.xds, self.controller
        if xds is None or controller is None:
            return ""
        lines = []
        for name, kind, help_, value in (
            ("gossamer_cp_xds_streams", "gauge", "Open xDS streams.", len(xds.status())),
            (
                "gossamer_cp_xds_streams_opened_total",
                "counter",
                "xDS streams opened.",
                xds.streams_opened,
            ),
            ("gossamer_cp_xds_pushes_total", "counter", "xDS responses sent.", xds.pushes),
            ("gossamer_cp_xds_nacks_total", "counter", "xDS responses NACKed.", xds.nacks),
            ("gossamer_cp_proxies", "gauge", "Known proxies.", len(controller.proxies)),
            ("gossamer_cp_rebuilds_total", "counter", "Mesh rebuilds.", controller.rebuilds),
        ):
            lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n" + ca_metrics(controller)

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        log.info("control plane stopping")
        if self._trim_task is not None:
            self._trim_task.cancel()
        if self.collector is not None:
            await self.collector.stop()
        if self._api is not None:
            self._api.should_exit = True
        if self._api_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._api_task
        if self.xds is not None:
            await self.xds.stop(grace=1.0)
        if self.controller is not None:
            await self.controller.stop()
        if self.store is not None:
            self.store.close()
        with contextlib.suppress(FileNotFoundError):
            info = json.loads((self.config.state_dir / CONTROLPLANE_FILE).read_text())
            if info.get("pid") == os.getpid():
                (self.config.state_dir / CONTROLPLANE_FILE).unlink()
        log.info("control plane stopped")


def _trust_domain(store: BaseStore) -> str:
    from gossamer.controlplane.translate.snapshot import snapshot_from_documents

    docs, _ = store.list("gossamer.io", "Mesh")
    return snapshot_from_documents(docs).mesh.mtls.trust_domain


async def run_control_plane(config: ControlPlaneConfig) -> None:
    """Run until SIGTERM or SIGINT, then shut down cleanly."""
    cp = ControlPlane(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, cp.request_stop)
    try:
        await cp.start()
        await cp.wait()
    finally:
        await cp.stop()
