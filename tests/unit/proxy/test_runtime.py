"""The Runtime's config swap and listener reconciliation, on real loopback sockets.

Everything runs in one event loop: tiny upstream servers, the Runtime, and raw clients.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

from gossamer.proxy.config import model as m
from gossamer.proxy.runtime import Runtime
from tests.unit.proxy.builders import cluster, config, forward, http_listener, route, table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Upstream(asyncio.Protocol):
    """Answers `<name> <path>`; /slow waits for `release` first."""

    def __init__(self, server: UpstreamServer) -> None:
        self.server = server
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.server.accepted += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, self.buf = self.buf.partition(b"\r\n\r\n")
            path = head.split(b" ")[1]
            self.server.requests += 1
            if path.startswith(b"/slow"):
                asyncio.get_running_loop().create_task(self._later(path))
            else:
                self._answer(path)

    async def _later(self, path: bytes) -> None:
        await self.server.release.wait()
        self._answer(path)

    def _answer(self, path: bytes) -> None:
        body = self.server.name.encode() + b" " + path
        self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


class UpstreamServer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.accepted = 0
        self.requests = 0
        self.release = asyncio.Event()
        self.port = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> UpstreamServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Upstream(self), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def close(self) -> None:
        if self.server:
            self.server.close()


class Client:
    """A keep-alive HTTP/1.1 client on one connection."""

    async def connect(self, port: int) -> Client:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        return self

    async def get(self, path: str, host: str = "svc") -> tuple[int, bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        status = int(head.split(b" ")[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await asyncio.wait_for(self.reader.readexactly(length), 5)
        return status, body

    def close(self) -> None:
        self.writer.close()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    uvloop.run(asyncio.wait_for(scenario(), 30))


def one_route_config(listener_port: int, cluster_name: str, *clusters: m.Cluster) -> m.ProxyConfig:
    t = table("t", ("vh", ["*"], [route("r", forward(cluster_name))]))
    return config([http_listener("l1", listener_port, t)], list(clusters))


def test_route_change_keeps_listener_connections_and_pools() -> None:
    async def scenario() -> None:
        a, b = await UpstreamServer("a").start(), await UpstreamServer("b").start()
        port = free_port()
        runtime = Runtime()
        clusters = [cluster("a", a.port), cluster("b", b.port)]
        await runtime.apply(one_route_config(port, "a", *clusters))
        handle = runtime.listeners["l1"]
        client = await Client().connect(port)
        assert await client.get("/x") == (200, b"a /x")
        state_a = runtime.clusters["a"]
        ep_a = state_a.endpoints[("127.0.0.1", a.port)]
        # Route change: same listener object, same client connection, new cluster.
        await runtime.apply(one_route_config(port, "b", *clusters))
        assert runtime.listeners["l1"] is handle
        assert await client.get("/y") == (200, b"b /y")
        # And back: the cluster's runtime state and pooled connection were kept.
        await runtime.apply(one_route_config(port, "a", *clusters))
        assert runtime.clusters["a"] is state_a
        assert state_a.endpoints[("127.0.0.1", a.port)] is ep_a
        assert await client.get("/z") == (200, b"a /z")
        assert a.accepted == 1  # one upstream connection, reused across three configs
        assert handle.stats.cx_total == 1
        client.close()
        await runtime.shutdown(1.0)
        a.close()
        b.close()

    run(scenario)


def test_in_flight_request_finishes_on_its_config() -> None:
    async def scenario() -> None:
        a, b = await UpstreamServer("a").start(), await UpstreamServer("b").start()
        port = free_port()
        runtime = Runtime()
        clusters = [cluster("a", a.port), cluster("b", b.port)]
        await runtime.apply(one_route_config(port, "a", *clusters))
        client = await Client().connect(port)
        slow = asyncio.create_task(client.get("/slow"))
        while a.requests == 0:
            await asyncio.sleep(0.01)
        # Swap the route and remove cluster "a" while the request is in flight.
        ep_a = runtime.clusters["a"].endpoints[("127.0.0.1", a.port)]
        await runtime.apply(one_route_config(port, "b", clusters[1]))
        assert "a" not in runtime.clusters
        a.release.set()
        assert await slow == (200, b"a /slow")  # finished where it started
        assert ep_a.pool.retired and ep_a.pool.idle == []  # and its connection not kept
        assert await client.get("/next") == (200, b"b /next")  # same connection, new config
        client.close()
        await runtime.shutdown(1.0)
        a.close()
        b.close()

    run(scenario)


def test_endpoint_change_keeps_connections() -> None:
    async def scenario() -> None:
        a, b = await UpstreamServer("a").start(), await UpstreamServer("b").start()
        port = free_port()
        runtime = Runtime()
        await runtime.apply(one_route_config(port, "c", cluster("c", a.port)))
        client = await Client().connect(port)
        assert await client.get("/1") == (200, b"a /1")
        await runtime.apply(one_route_config(port, "c", cluster("c", b.port)))
        assert await client.get("/2") == (200, b"b /2")
        client.close()
        await runtime.shutdown(1.0)
        a.close()
        b.close()

    run(scenario)


def test_listeners_added_removed_and_moved() -> None:
    async def scenario() -> None:
        a = await UpstreamServer("a").start()
        p1, p2, p3 = free_port(), free_port(), free_port()
        t = table("t", ("vh", ["*"], [route("r", forward("a"))]))
        c = cluster("a", a.port)
        runtime = Runtime()
        await runtime.apply(config([http_listener("l1", p1, t)], [c]))
        await runtime.apply(config([http_listener("l1", p1, t), http_listener("l2", p2, t)], [c]))
        l1 = runtime.listeners["l1"]
        c2 = await Client().connect(p2)
        assert await c2.get("/") == (200, b"a /")
        # l2 removed: no new connections; its idle connection is closed (drained).
        await runtime.apply(config([http_listener("l1", p1, t)], [c]))
        assert runtime.listeners["l1"] is l1
        with pytest.raises(OSError):
            await Client().connect(p2)
        assert await c2.reader.read() == b""  # closed by the drain
        # l1 moves to another port: bound there, the old port drained.
        await runtime.apply(config([http_listener("l1", p3, t)], [c]))
        assert runtime.listeners["l1"] is not l1
        c3 = await Client().connect(p3)
        assert await c3.get("/") == (200, b"a /")
        with pytest.raises(OSError):
            await Client().connect(p1)
        c3.close()
        await runtime.shutdown(1.0)
        a.close()

    run(scenario)


def test_listener_that_cannot_bind_is_reported_and_others_serve() -> None:
    async def scenario() -> None:
        a = await UpstreamServer("a").start()
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        good = free_port()
        t = table("t", ("vh", ["*"], [route("r", forward("a"))]))
        runtime = Runtime(reuse_port=False)
        await runtime.apply(
            config(
                [http_listener("bad", taken, t), http_listener("good", good, t)],
                [cluster("a", a.port)],
            )
        )
        assert "bad" in runtime.listener_errors and "good" in runtime.listeners
        client = await Client().connect(good)
        assert await client.get("/") == (200, b"a /")
        client.close()
        busy.close()
        await runtime.shutdown(1.0)
        a.close()

    run(scenario)


def test_drain_closes_idle_and_finishes_busy() -> None:
    async def scenario() -> None:
        a = await UpstreamServer("a").start()
        port = free_port()
        runtime = Runtime()
        await runtime.apply(one_route_config(port, "a", cluster("a", a.port)))
        idle = await Client().connect(port)
        assert await idle.get("/") == (200, b"a /")
        busy = await Client().connect(port)
        slow = asyncio.create_task(busy.get("/slow"))
        while a.requests < 2:
            await asyncio.sleep(0.01)
        shutdown = asyncio.create_task(runtime.shutdown(5.0))
        assert await idle.reader.read() == b""  # idle: closed at once
        a.release.set()
        assert await slow == (200, b"a /slow")  # busy: finished
        await shutdown
        a.close()

    run(scenario)


def test_tls_listener_without_its_certificate_is_not_served_in_plaintext() -> None:
    async def scenario() -> None:
        port = free_port()
        tls = m.DownstreamTls("cert")
        t = table("t", ("vh", ["*"], [route("r", forward("a"))]))
        plain = http_listener("l", port, t)
        secure = m.Listener("l", "127.0.0.1", port, "inbound", plain.handler, tls)
        runtime = Runtime()
        await runtime.apply(config([secure], [cluster("a", 1)]))
        assert "l" not in runtime.listeners
        assert "waiting for certificate 'cert'" in runtime.listener_errors["l"]
        with pytest.raises(OSError):
            await Client().connect(port)
        await runtime.shutdown(1.0)

    run(scenario)
