"""Helpers for sidecar tests: upstream servers, static configs, a sidecar process, raw HTTP.

`Upstream` is a small HTTP/1.1 server on its own event loop thread. It counts the
connections it accepted and the requests it received (so a test can assert that a
malformed request never reached it) and behaves by path:

    /slow?ms=N        answer after N ms              /status/NNN   answer with NNN
    /close            close without answering        /upload       count the body; answer
                                                                   {"bytes": n, "sha256": ...}
    /download?bytes=N a chunked body of N bytes      /echo         stream the body back
    Upgrade requests  101, then echo raw bytes       anything else the request as JSON
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.processes import GOSSAMER, Process
from tests.support.wait import wait_for

HCM_TYPE = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TCP_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- upstream servers --------------------------------------------------------------------


class _LoopThread:
    """An event loop in a daemon thread, for servers the test talks to synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]


@dataclass
class Upstream:
    name: str = "upstream"
    port: int = 0
    accepted: int = 0
    requests: int = 0
    seen: list[Seen] = field(default_factory=list)
    _thread: _LoopThread | None = None
    _server: asyncio.AbstractServer | None = None

    def start(self) -> Upstream:
        self._thread = _LoopThread()
        self._server = self._thread.call(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, limit=1 << 20)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if self._thread is not None and self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()

            self._thread.call(close())
            self._thread.stop()

    def reset_counts(self) -> None:
        self.accepted = 0
        self.requests = 0
        self.seen.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if not await self._one(head, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]
        hmap = {k.lower(): v for k, v in headers}
        self.requests += 1
        self.seen.append(Seen(method, target, headers))  # type: ignore[arg-type]
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        # Behaviours by last path segment, so they work under any route prefix.
        op = "/" + path.rstrip("/").rsplit("/", 1)[-1]
        chunked = hmap.get("transfer-encoding", "").lower() == "chunked"
        length = int(hmap.get("content-length", "0") or 0)
        if "upgrade" in hmap.get("connection", "").lower():
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n"
                b"upgrade: " + hmap.get("upgrade", "x").encode() + b"\r\n\r\n"
            )
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            return False
        if op == "/close":
            return False
        if op == "/echo":
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            async for chunk in _body(reader, chunked, length):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        digest = hashlib.sha256()
        size = 0
        async for chunk in _body(reader, chunked, length):
            digest.update(chunk)
            size += len(chunk)
        if op == "/slow":
            await asyncio.sleep(int(query.get("ms", "1000")) / 1000)
        if op == "/download":
            total = int(query.get("bytes", "0"))
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            block = os.urandom(65536)
            sent = 0
            while sent < total:
                piece = block[: min(len(block), total - sent)]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        status = int(op[1:]) if "/status/" in path else 200
        body: dict[str, Any] = {
            "server": self.name,
            "method": method,
            "target": target,
            "headers": headers,
        }
        if op == "/upload" or size:
            body.update(bytes=size, sha256=digest.hexdigest())
        data = json.dumps(body).encode()
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(data), data)
        )
        await writer.drain()
        return True


async def _body(reader: asyncio.StreamReader, chunked: bool, length: int) -> Any:
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return
            yield await reader.readexactly(size)
            await reader.readexactly(2)
    else:
        while length > 0:
            chunk = await reader.read(min(length, 65536))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", length)
            length -= len(chunk)
            yield chunk


class TcpEcho:
    """A TCP server that sends its name, then echoes; counts connections."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.accepted = 0
        self.port = 0
        self._thread = _LoopThread()
        self._server: asyncio.AbstractServer | None = None

    def start(self) -> TcpEcho:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.accepted += 1
            writer.write(self.name.encode() + b"\n")
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                writer.write_eof()  # half-close: our side ends after theirs
                await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        self._server = self._thread.call(asyncio.start_server(serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        server = self._server

        async def close() -> None:
            if server is not None:
                server.close()

        self._thread.call(close())
        self._thread.stop()


# --- static configs (Envoy v3 proto-JSON) -------------------------------------------------


def address(port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def http_listener(
    name: str,
    port: int,
    *,
    routes: dict[str, Any] | None = None,
    rds: str | None = None,
    forward_proxy: bool = False,
    direction: str = "OUTBOUND",
    **hcm_fields: Any,
) -> dict[str, Any]:
    hcm: dict[str, Any] = {
        "@type": HCM_TYPE,
        "stat_prefix": name,
        "http_filters": [{"name": "router", "typed_config": {"@type": ROUTER_TYPE}}],
        **hcm_fields,
    }
    if rds is not None:
        hcm["rds"] = {"route_config_name": rds, "config_source": {"ads": {}}}
    else:
        hcm["route_config"] = routes
    if forward_proxy:
        hcm["http_protocol_options"] = {"allow_absolute_url": True}
    return {
        "name": name,
        "address": address(port),
        "traffic_direction": direction,
        "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}],
    }


def tcp_listener(name: str, port: int, clusters: Sequence[tuple[str, int]]) -> dict[str, Any]:
    proxy: dict[str, Any] = {"@type": TCP_TYPE, "stat_prefix": name}
    if len(clusters) == 1:
        proxy["cluster"] = clusters[0][0]
    else:
        proxy["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in clusters]}
    return {
        "name": name,
        "address": address(port),
        "filter_chains": [{"filters": [{"name": "tcp", "typed_config": proxy}]}],
    }


def route_config(name: str, *virtual_hosts: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "virtual_hosts": list(virtual_hosts)}


def vhost(name: str, domains: Sequence[str], *routes: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "domains": list(domains), "routes": list(routes)}


def to_cluster(
    cluster: str | Sequence[tuple[str, int]], prefix: str = "/", **extra: Any
) -> dict[str, Any]:
    action: dict[str, Any] = dict(extra)
    if isinstance(cluster, str):
        action["cluster"] = cluster
    else:
        action["weighted_clusters"] = {"clusters": [{"name": n, "weight": w} for n, w in cluster]}
    return {"match": {"prefix": prefix}, "route": action}


def static_cluster(name: str, *ports: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": cla(name, *ports),
        **extra,
    }


def eds_cluster(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "EDS", "eds_cluster_config": {"eds_config": {"ads": {}}}, **extra}


def cla(name: str, *ports: int) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address(p)}} for p in ports]}],
    }


# --- a sidecar process ------------------------------------------------------------------


class Sidecar:
    """`gossamer proxy run` with a static config (or --xds), admin on a free port."""

    def __init__(
        self,
        workdir: Path,
        config: dict[str, Any] | None = None,
        *extra: str,
        workers: int = 1,
        name: str = "sidecar",
        env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.name = name
        self.config_path = workdir / f"{name}.json"
        self.ready_file = workdir / f"{name}.ready"
        if config is not None:
            self.write_config(config)
        args = [
            *GOSSAMER,
            "proxy",
            "run",
            "--admin-port",
            "0",
            "--ready-file",
            str(self.ready_file),
        ]
        if config is not None:
            args += ["--config", str(self.config_path)]
        args += ["--workers", str(workers), *extra]
        self.process = Process(name, args, workdir / f"{name}.log", env=env or {})
        self.admin = ""

    def write_config(self, config: dict[str, Any]) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config))
        tmp.replace(self.config_path)

    def start(self, ready: bool = True, timeout: float = 20.0) -> Sidecar:
        self.ready_file.unlink(missing_ok=True)
        self.process.start()

        def admin() -> str | None:
            if not self.process.alive():
                raise AssertionError(f"sidecar exited:\n{self.process.output()}")
            info = json.loads(self.ready_file.read_text())
            return f"http://{info['admin']}" if info.get("pid") == self.process.pid else None

        self.admin = wait_for(admin, timeout, message=f"{self.name} admin listener")
        if ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 20.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if not self.process.alive():
                raise AssertionError(f"sidecar exited:\n{self.process.output()}")
            r = httpx.get(self.admin + "/ready", timeout=2)
            return r.json() if r.status_code == 200 else None

        result: dict[str, Any] = wait_for(ready, timeout, message=f"{self.name} to be ready")
        return result

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.admin + path, timeout=5)

    def post(self, path: str) -> httpx.Response:
        return httpx.post(self.admin + path, timeout=5)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/stats").json()
        return result

    def requests(self, listener: str, cluster: str | None = None) -> dict[str, int]:
        """Request counts by status class for a listener (all clusters, or one)."""
        out: dict[str, int] = {}
        for name, counts in self.stats()["listeners"].get(listener, {}).get("requests", {}).items():
            if cluster is None or name == cluster:
                for k, v in counts.items():
                    if k.endswith("xx") or k == "total":
                        out[k] = out.get(k, 0) + v
        return out

    def reload(self, config: dict[str, Any]) -> None:
        """Write a new static config and SIGHUP the sidecar."""
        import signal

        before = self.stats()["config_applies"]
        self.write_config(config)
        self.process.signal(signal.SIGHUP)
        wait_for(lambda: self.stats()["config_applies"] > before, 10, message="config reload")

    def pids(self) -> list[int]:
        """The main process and its workers."""
        out = [self.process.pid]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                    out.append(int(entry.name))
        return out

    def stop(self) -> int | None:
        return self.process.stop()

    def output(self) -> str:
        return self.process.output()


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field_name} for {pid}")


# --- raw HTTP ---------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


_LEFTOVER: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket, timeout: float = 5.0, head_only: bool = False) -> Response:
    """Read one response (content-length, chunked, or until close) from a socket; bytes
    past it (pipelined responses) are kept for the next call on the same socket."""
    sock.settimeout(timeout)
    buf = _LEFTOVER.pop(sock, b"")

    def more() -> bytes:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed mid-response: {buf[:200]!r}")
        return data

    while b"\r\n\r\n" not in buf:
        buf += more()
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if head_only or status == 101 or 100 <= status < 200:
        _LEFTOVER[sock] = rest
        return Response(status, headers, b"" if status != 101 else rest)
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            rest += more()
        _LEFTOVER[sock] = rest[n:]
        return Response(status, headers, rest[:n])
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += more()
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += more()
            if size == 0:
                _LEFTOVER[sock] = rest[2:]
                return Response(status, headers, body)
            body += rest[:size]
            rest = rest[size + 2 :]
    while data := sock.recv(65536):
        rest += data
    return Response(status, headers, rest)


def request(
    port: int, raw: bytes, timeout: float = 5.0, sock: socket.socket | None = None
) -> Response:
    """Send raw bytes (one request) on a new connection, or on `sock`, and read the reply."""
    own = sock is None
    s = sock or socket.create_connection(("127.0.0.1", port), timeout)
    try:
        s.sendall(raw)
        return read_response(s, timeout)
    finally:
        if own:
            s.close()


def get(port: int, path: str = "/", host: str = "svc", **headers: str) -> Response:
    extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
    return request(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode())


def closed(sock: socket.socket, timeout: float = 2.0) -> bool:
    """Whether the peer closed the connection (EOF or reset) within `timeout`."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if sock.recv(65536) == b"":
                return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    return False
