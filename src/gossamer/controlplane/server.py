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
from gossamer.controlplane.auth import TokenAuthority, load_or_create_admin_token
from gossamer.controlplane.controller import MeshController
from gossamer.controlplane.health import HealthReports
from gossamer.controlplane.http.api import ApiContext, ReadAccess, create_app
from gossamer.controlplane.http.proxies import proxy_routes
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
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_store(cfg.store_url, cfg.state_dir)
        tokens = TokenAuthority(load_or_create_admin_token(cfg.state_dir))
        self.controller = MeshController(self.store, grace=cfg.workload_grace)
        self.xds = XdsServer(self.controller)
        self.controller.server = self.xds
        health = HealthReports(self.controller)
        self.xds.extra_handlers.append(health.grpc_handler())
        await self.controller.start()
        xds_port = await self.xds.start(cfg.xds_host, cfg.xds_port)
        self.xds_address = f"{cfg.xds_host}:{xds_port}"
        ctx = ApiContext(
            store=self.store,
            tokens=tokens,
            read_access=cfg.read_access,
            extra_routes=[proxy_routes(self.controller, self.xds), health.routes()],
        )
        app = create_app(ctx)
        sock = bind_tcp(cfg.api_host, cfg.api_port)
        host, port = sock.getsockname()[:2]
        self.api_url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        server = _Uvicorn(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        self._api = server
        self._api_task = asyncio.create_task(server.serve(sockets=[sock]), name="api")
        while not server.started:
            if self._api_task.done():
                self._api_task.result()  # raise what stopped it
            await asyncio.sleep(0.01)
        self._write_discovery_file()
        log.info(
            "control plane started",
            version=__version__,
            api=self.api_url,
            xds=self.xds_address,
            store=cfg.store_url,
            state_dir=str(cfg.state_dir),
        )

    def _write_discovery_file(self) -> None:
        # How the CLI on this machine finds us without flags.
        info = {
            "api": self.api_url,
            "xds": self.xds_address,
            "pid": os.getpid(),
            "version": __version__,
        }
        path = self.config.state_dir / CONTROLPLANE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(path)

    def request_stop(self) -> None:
        self._stopping.set()

    async def wait(self) -> None:
        await self._stopping.wait()

    async def stop(self) -> None:
        log.info("control plane stopping")
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
