"""The ADS server over real gRPC on loopback: simulated Envoys, and a real proxyless client.

Negative checks ("nothing was resent") use a barrier instead of a pause: the test changes
a secret the client follows and the next message must be that SDS push, because the
server writes each stream's responses in order, SDS last.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import grpc
import pytest
import uvloop
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from gossamer.controlplane.xds import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    BaseCallbacks,
    NackInfo,
    Snapshot,
    StreamInfo,
    StreamRejected,
    XdsServer,
)
from tests.unit.controlplane.xds import envoy_resources as er

pytestmark = pytest.mark.integration

T = TypeVar("T")
TIMEOUT = 5.0


def run(coro: Any, timeout: float = 30.0) -> Any:
    # On uvloop, as the control plane runs.
    return uvloop.run(asyncio.wait_for(coro, timeout))


async def until(condition: Callable[[], T | None], timeout: float = TIMEOUT, what: str = "") -> T:
    """Poll a condition on the loop, bounded by a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.005)


def snapshot(route_cluster: str = "a", b_port: int = 2, barrier: int = 0) -> Snapshot:
    return Snapshot(
        listeners=[er.listener("greeter", "r")],
        routes=[er.route("r", "greeter", route_cluster)],
        clusters=[er.cluster("a"), er.cluster("b")],
        endpoints=[er.endpoints("a", 1), er.endpoints("b", b_port)],
        secrets=[er.secret("barrier", str(barrier))],
    )


class Recorder(BaseCallbacks):
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.nacks: list[NackInfo] = []
        self.closed: list[int] = []

    def on_stream_open(self, stream: StreamInfo, node: base_pb2.Node) -> None:
        self.events.append(("open", node.id))

    async def on_subscription_change(
        self,
        stream: StreamInfo,
        node: base_pb2.Node,
        type_url: str,
        wildcard: bool,
        names: frozenset[str],
    ) -> None:
        self.events.append(("subscription", type_url, wildcard, names))

    def on_nack(self, stream: StreamInfo, node: base_pb2.Node, nack: NackInfo) -> None:
        self.nacks.append(nack)

    def on_stream_closed(self, stream: StreamInfo, node: base_pb2.Node) -> None:
        self.closed.append(stream.stream_id)


@asynccontextmanager
async def serving(callbacks: Any = None) -> AsyncIterator[tuple[XdsServer, grpc.aio.Channel]]:
    server = XdsServer(callbacks)
    port = await server.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield server, channel
    finally:
        await channel.close()
        await server.stop(0)


class Envoy:
    """A scripted SotW ADS client."""

    def __init__(
        self, channel: grpc.aio.Channel, node_id: str, metadata: Iterable[tuple[str, str]] = ()
    ) -> None:
        self.node = base_pb2.Node(
            id=node_id, cluster="web", user_agent_name="envoy", user_agent_version="1.30.1"
        )
        self.node.metadata.update({"namespace": "default", "labels": {"app": "web"}})
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources(
            metadata=tuple(metadata)
        )
        self.names: dict[str, list[str]] = {}

    async def send(
        self,
        type_url: str,
        names: Iterable[str] = (),
        version: str = "",
        nonce: str = "",
        error: str | None = None,
    ) -> None:
        self.names[type_url] = list(names)
        request = discovery_pb2.DiscoveryRequest(
            node=self.node,
            type_url=type_url,
            resource_names=list(names),
            version_info=version,
            response_nonce=nonce,
        )
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.call.write(request)

    async def recv(self) -> discovery_pb2.DiscoveryResponse:
        response = await asyncio.wait_for(self.call.read(), TIMEOUT)
        assert response is not grpc.aio.EOF
        assert isinstance(response, discovery_pb2.DiscoveryResponse)
        return response

    async def ack(self, response: discovery_pb2.DiscoveryResponse) -> None:
        await self.send(
            response.type_url,
            self.names.get(response.type_url, ()),
            response.version_info,
            response.nonce,
        )

    async def start(self, versions: dict[str, str] | None = None) -> None:
        """Subscribe like Envoy: LDS/CDS wildcard, named EDS/RDS/SDS."""
        versions = versions or {}
        await self.send(LISTENER, version=versions.get(LISTENER, ""))
        await self.send(CLUSTER, version=versions.get(CLUSTER, ""))
        await self.send(ENDPOINT, ["a", "b"], version=versions.get(ENDPOINT, ""))
        await self.send(ROUTE, ["r"], version=versions.get(ROUTE, ""))
        await self.send(SECRET, ["barrier"], version=versions.get(SECRET, ""))

    async def receive_all(self, count: int) -> dict[str, discovery_pb2.DiscoveryResponse]:
        got = [await self.recv() for _ in range(count)]
        for response in got:
            await self.ack(response)
        return {r.type_url: r for r in got}


async def barrier(
    server: XdsServer, envoy: Envoy, node_id: str, snap: Snapshot, n: int
) -> Snapshot:
    """Change only the secret; the next message must be its push."""
    changed = snap.replace(SECRET, [er.secret("barrier", str(n))])
    server.set_snapshot(node_id, changed)
    response = await envoy.recv()
    assert response.type_url == SECRET, f"unexpected push of {response.type_url}"
    await envoy.ack(response)
    return changed


def acked(server: XdsServer, node_id: str, type_url: str, version: str) -> bool:
    return any(
        s.node_id == node_id and type_url in s.types and s.types[type_url].acked_version == version
        for s in server.status()
    )


def test_sotw_flow_ack_change_and_status() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with serving(recorder) as (server, channel):
            snap = snapshot()
            server.set_snapshot("web-1", snap)
            envoy = Envoy(channel, "web-1")
            await envoy.start()
            first = await envoy.receive_all(5)
            assert set(first) == {LISTENER, CLUSTER, ENDPOINT, ROUTE, SECRET}
            assert first[CLUSTER].version_info == snap.version(CLUSTER)
            assert len(first[CLUSTER].resources) == 2
            await until(lambda: acked(server, "web-1", SECRET, snap.version(SECRET)))
            # ACKed: nothing is resent.
            snap = await barrier(server, envoy, "web-1", snap, 1)
            # A route change pushes RDS only.
            snap = snap.replace(ROUTE, [er.route("r", "greeter", "b")])
            server.set_snapshot("web-1", snap)
            rds = await envoy.recv()
            assert rds.type_url == ROUTE
            await envoy.ack(rds)
            snap = await barrier(server, envoy, "web-1", snap, 2)

            (status,) = server.status()
            assert status.node_id == "web-1"
            assert status.node_metadata == {"namespace": "default", "labels": {"app": "web"}}
            assert status.user_agent == "envoy 1.30.1"
            assert status.kind == "sotw"
            assert status.peer.startswith("ipv4:127.0.0.1:")
            assert status.types[ROUTE].acked_version == snap.version(ROUTE)
            assert status.types[LISTENER].wildcard
            assert status.types[ENDPOINT].names == ("a", "b")
            assert status.to_dict()["types"][ROUTE]["sent_nonce"] == rds.nonce
            assert ("subscription", ENDPOINT, False, frozenset({"a", "b"})) in recorder.events
            await envoy.call.done_writing()
            await until(lambda: recorder.closed, what="on_stream_closed")
            assert server.status() == []

    run(scenario())


def test_nack_is_recorded_and_not_resent() -> None:
    async def scenario() -> None:
        recorder = Recorder()
        async with serving(recorder) as (server, channel):
            snap = snapshot()
            server.set_snapshot("web-1", snap)
            envoy = Envoy(channel, "web-1")
            await envoy.start()
            good = await envoy.receive_all(5)
            bad = snap.replace(ROUTE, [er.route("r", "greeter", "nowhere")])
            server.set_snapshot("web-1", bad)
            rds = await envoy.recv()
            await envoy.send(
                ROUTE,
                ["r"],
                good[ROUTE].version_info,
                rds.nonce,
                error="route r: cluster 'nowhere' not found",
            )
            await until(lambda: recorder.nacks, what="on_nack")
            await barrier(server, envoy, "web-1", bad, 1)
            status = server.status()[0].types[ROUTE]
            assert status.acked_version == good[ROUTE].version_info
            assert status.last_nack is not None
            assert status.last_nack.message == "route r: cluster 'nowhere' not found"
            assert status.last_nack.nonce == rds.nonce
            assert status.last_nack.rejected_version == bad.version(ROUTE)

    run(scenario())


def test_stale_nonce_is_ignored() -> None:
    async def scenario() -> None:
        async with serving() as (server, channel):
            snap = snapshot()
            server.set_snapshot("web-1", snap)
            envoy = Envoy(channel, "web-1")
            await envoy.send(CLUSTER)
            first = await envoy.recv()
            await envoy.ack(first)
            snap = snap.replace(CLUSTER, [er.cluster("a")])
            server.set_snapshot("web-1", snap)
            second = await envoy.recv()
            # As if written before `second` arrived: an error on the old nonce.
            await envoy.send(CLUSTER, version=first.version_info, nonce=first.nonce, error="old")
            await envoy.ack(second)
            await until(lambda: acked(server, "web-1", CLUSTER, second.version_info))
            assert server.status()[0].types[CLUSTER].last_nack is None

    run(scenario())


def test_reconnect_with_last_versions_is_not_resent() -> None:
    async def scenario() -> None:
        async with serving() as (server, channel):
            snap = snapshot()
            server.set_snapshot("web-1", snap)
            envoy = Envoy(channel, "web-1")
            await envoy.start()
            got = await envoy.receive_all(5)
            envoy.call.cancel()
            await until(lambda: not server.status(), what="the old stream to close")
            again = Envoy(channel, "web-1")
            await again.start({t: r.version_info for t, r in got.items()})
            await until(lambda: len(server.status()[0].types) == 5 if server.status() else None)
            await barrier(server, again, "web-1", snap, 1)
            assert server.status()[0].types[CLUSTER].acked_version == snap.version(CLUSTER)

    run(scenario())


def test_nodes_get_their_own_snapshots_and_wait_for_one() -> None:
    async def scenario() -> None:
        async with serving() as (server, channel):
            server.set_snapshot("a", Snapshot(clusters=[er.cluster("only-a")]))
            first, second = Envoy(channel, "a"), Envoy(channel, "b")
            await first.send(CLUSTER)
            await second.send(CLUSTER)
            assert [r.value for r in (await first.recv()).resources] == [
                er.cluster("only-a").SerializeToString(deterministic=True)
            ]
            # "b" has no snapshot: its request is held, not answered with nothing.
            await until(lambda: {s.node_id for s in server.status()} == {"a", "b"})
            await until(lambda: all(CLUSTER in s.types for s in server.status()))
            server.set_snapshot("b", Snapshot(clusters=[er.cluster("only-b"), er.cluster("x")]))
            response = await second.recv()
            assert len(response.resources) == 2
            await second.ack(response)
            await until(lambda: acked(server, "b", CLUSTER, response.version_info))
            # Cleared, then the same content again: nothing to push.
            server.clear_snapshot("b")
            server.set_snapshot("b", Snapshot(clusters=[er.cluster("only-b"), er.cluster("x")]))
            for _ in range(10):
                await asyncio.sleep(0)  # let the stream's writer run if it would
            (status_b,) = [s for s in server.status() if s.node_id == "b"]
            assert status_b.types[CLUSTER].sent_nonce == response.nonce
            assert response.version_info == server.get_snapshot("b").version(CLUSTER)  # type: ignore[union-attr]

    run(scenario())


def test_rejected_stream_sees_the_status_code() -> None:
    class TokenCheck(BaseCallbacks):
        def on_stream_open(self, stream: StreamInfo, node: base_pb2.Node) -> None:
            if stream.metadata_value("x-gossamer-token") != "s3cret":
                raise StreamRejected(grpc.StatusCode.UNAUTHENTICATED, "bad token for " + node.id)

    async def scenario() -> None:
        async with serving(TokenCheck()) as (server, channel):
            server.set_snapshot("web-1", snapshot())
            intruder = Envoy(channel, "web-1", metadata=[("x-gossamer-token", "guess")])
            await intruder.send(CLUSTER)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await intruder.recv()
            assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error.value.details() == "bad token for web-1"
            friend = Envoy(channel, "web-1", metadata=[("x-gossamer-token", "s3cret")])
            await friend.send(CLUSTER)
            assert (await friend.recv()).type_url == CLUSTER

    run(scenario())


class DeltaClient:
    def __init__(self, channel: grpc.aio.Channel, node_id: str) -> None:
        self.node = base_pb2.Node(id=node_id)
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).DeltaAggregatedResources()

    async def send(
        self,
        type_url: str,
        subscribe: Iterable[str] = (),
        unsubscribe: Iterable[str] = (),
        nonce: str = "",
        initial: dict[str, str] | None = None,
    ) -> None:
        await self.call.write(
            discovery_pb2.DeltaDiscoveryRequest(
                node=self.node,
                type_url=type_url,
                resource_names_subscribe=list(subscribe),
                resource_names_unsubscribe=list(unsubscribe),
                response_nonce=nonce,
                initial_resource_versions=initial or {},
            )
        )

    async def recv(self) -> discovery_pb2.DeltaDiscoveryResponse:
        response = await asyncio.wait_for(self.call.read(), TIMEOUT)
        assert isinstance(response, discovery_pb2.DeltaDiscoveryResponse)
        await self.send(response.type_url, nonce=response.nonce)  # ACK
        return response


def test_delta_subscribe_unsubscribe_remove_and_reconnect() -> None:
    def snap(**ports: int) -> Snapshot:
        return Snapshot(
            clusters=[er.cluster(n) for n in ports],
            endpoints=[er.endpoints(n, p) for n, p in ports.items()],
        )

    async def scenario() -> None:
        recorder = Recorder()
        async with serving(recorder) as (server, channel):
            server.set_snapshot("d", snap(a=1, b=1))
            client = DeltaClient(channel, "d")
            await client.send(CLUSTER)  # legacy wildcard
            cds = await client.recv()
            assert sorted(r.name for r in cds.resources) == ["a", "b"]
            await client.send(ENDPOINT, ["a", "ghost"])
            eds = await client.recv()
            assert [r.name for r in eds.resources] == ["a"]
            assert list(eds.removed_resources) == ["ghost"]
            held = {r.name: r.version for r in eds.resources}
            # b's endpoints are not followed; a's are.
            server.set_snapshot("d", snap(a=2, b=3))
            eds = await client.recv()
            assert [r.name for r in eds.resources] == ["a"]
            held.update({r.name: r.version for r in eds.resources})
            # Cluster b goes away: CDS says removed.
            server.set_snapshot("d", snap(a=2))
            cds = await client.recv()
            assert (list(cds.resources), list(cds.removed_resources)) == ([], ["b"])
            # Unsubscribed: a's changes no longer come; subscribing b brings b.
            await client.send(ENDPOINT, unsubscribe=["a"])
            await until(lambda: server.status()[0].types[ENDPOINT].names == ("ghost",))
            server.set_snapshot("d", snap(a=5, b=6))
            cds = await client.recv()
            assert [r.name for r in cds.resources] == ["b"]
            await client.send(ENDPOINT, ["b"])
            eds = await client.recv()
            assert [r.name for r in eds.resources] == ["b"]
            client.call.cancel()
            await until(lambda: not server.status())
            await until(lambda: recorder.closed, what="on_stream_closed after a cancel")

            # Reconnect holding an outdated "a": only "a" is resent.
            again = DeltaClient(channel, "d")
            current = server.get_snapshot("d")
            assert current is not None
            await again.send(
                ENDPOINT,
                ["a", "b"],
                initial={
                    "a": held["a"],
                    "b": current.get(ENDPOINT)["b"].hash,
                },
            )
            eds = await again.recv()
            assert [r.name for r in eds.resources] == ["a"]
            assert list(eds.removed_resources) == []
            (status,) = server.status()
            assert status.kind == "delta"
            await until(
                lambda: (
                    server.status()[0].types[ENDPOINT].acked_version == current.version(ENDPOINT)
                )
            )

    run(scenario())


# -- a real proxyless gRPC client ---------------------------------------------------------

CLIENT = r"""
import sys, time, grpc
channel = grpc.insecure_channel("xds:///greeter")
say_hello = channel.unary_unary("/helloworld.Greeter/SayHello")
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    try:
        reply = say_hello(b"hi", timeout=2, wait_for_ready=True)
        print("ok", reply.decode(), flush=True)
    except grpc.RpcError as error:
        print("error", error.code().name, error.details(), flush=True)
    time.sleep(0.02)
"""


async def greeter(name: str) -> tuple[grpc.aio.Server, int]:
    async def say_hello(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return name.encode()

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "helloworld.Greeter", {"SayHello": grpc.unary_unary_rpc_method_handler(say_hello)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


def proxyless_snapshot(
    listener_names: Iterable[str], cluster: str, ports: dict[str, int]
) -> Snapshot:
    # The listener is named exactly as the client's target; RDS/CDS/EDS follow from it.
    return Snapshot(
        listeners=[er.listener(n, "greeter-routes") for n in listener_names if n == "greeter"],
        routes=[er.route("greeter-routes", "greeter", cluster)],
        clusters=[er.cluster(name) for name in ports],
        endpoints=[er.endpoints(name, port) for name, port in ports.items()],
    )


def test_proxyless_grpc_client_follows_the_snapshot() -> None:
    async def scenario() -> None:
        server_a, port_a = await greeter("server-a")
        server_b, port_b = await greeter("server-b")
        ports = {"greeter-a": port_a, "greeter-b": port_b}
        xds: XdsServer

        class OnDemand(BaseCallbacks):
            """The translation's part: build the listener the client asks for."""

            def on_subscription_change(
                self,
                stream: StreamInfo,
                node: base_pb2.Node,
                type_url: str,
                wildcard: bool,
                names: frozenset[str],
            ) -> None:
                if type_url == LISTENER:
                    xds.set_snapshot(node.id, proxyless_snapshot(names, "greeter-a", ports))

        xds = XdsServer(OnDemand())
        port = await xds.start("127.0.0.1", 0)
        bootstrap = {
            "xds_servers": [
                {"server_uri": f"127.0.0.1:{port}", "channel_creds": [{"type": "insecure"}]}
            ],
            "node": {"id": "proxyless-1", "metadata": {"app": "greeter-client"}},
        }
        env = {**os.environ, "GRPC_XDS_BOOTSTRAP_CONFIG": json.dumps(bootstrap)}
        client = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT,
            "20",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        lines: list[str] = []

        async def wait_for_reply(reply: str) -> None:
            assert client.stdout is not None
            deadline = time.monotonic() + 10
            while True:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no {reply!r} from the client; it printed {lines[-5:]}"
                line = (
                    (await asyncio.wait_for(client.stdout.readline(), remaining)).decode().strip()
                )
                assert line, f"the client exited; it printed {lines[-5:]}"
                lines.append(line)
                if line == f"ok {reply}":
                    return

        try:
            await wait_for_reply("server-a")
            (status,) = xds.status()
            assert status.node_id == "proxyless-1"
            assert status.node_metadata == {"app": "greeter-client"}
            assert status.user_agent.startswith("gRPC")
            assert status.types[LISTENER].names == ("greeter",)
            assert not status.types[LISTENER].wildcard
            # Point the route at the second server: calls move without a restart.
            snap = proxyless_snapshot(["greeter"], "greeter-b", ports)
            xds.set_snapshot("proxyless-1", snap)
            await wait_for_reply("server-b")
            await until(lambda: acked(xds, "proxyless-1", ROUTE, snap.version(ROUTE)))
            assert all(t.last_nack is None for t in xds.status()[0].types.values())
        finally:
            if client.returncode is None:
                client.kill()
            await client.wait()
            await xds.stop(0)
            await server_a.stop(0)
            await server_b.stop(0)

    run(scenario(), timeout=40)


def test_bad_first_request_and_failing_open_callback() -> None:
    class Broken(BaseCallbacks):
        def on_stream_open(self, stream: StreamInfo, node: base_pb2.Node) -> None:
            raise RuntimeError("bug in the owner")

    async def scenario() -> None:
        async with serving() as (_, channel):
            anonymous = Envoy(channel, "")
            await anonymous.send(CLUSTER)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await anonymous.recv()
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        async with serving(Broken()) as (_, channel):
            envoy = Envoy(channel, "web-1")
            await envoy.send(CLUSTER)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await envoy.recv()
            assert error.value.code() == grpc.StatusCode.INTERNAL

    run(scenario())


def test_answer_waits_for_the_subscription_callback() -> None:
    """An async callback that builds the asked-for listener is not overtaken by a push."""
    entered, release = asyncio.Event(), asyncio.Event()
    server: XdsServer

    class SlowTranslation(BaseCallbacks):
        async def on_subscription_change(
            self,
            stream: StreamInfo,
            node: base_pb2.Node,
            type_url: str,
            wildcard: bool,
            names: frozenset[str],
        ) -> None:
            entered.set()
            await release.wait()
            server.set_snapshot(node.id, snapshot())

    async def scenario() -> None:
        nonlocal server
        async with serving(SlowTranslation()) as (server, channel):
            without = Snapshot(clusters=[er.cluster("a")])
            server.set_snapshot("grpc-1", without)
            client = Envoy(channel, "grpc-1")
            await client.send(LISTENER, ["greeter"])
            await asyncio.wait_for(entered.wait(), TIMEOUT)
            # A push while the callback runs must not answer with the old snapshot.
            server.set_snapshot("grpc-1", without.replace(ROUTE, []))
            for _ in range(10):
                await asyncio.sleep(0)  # let the stream's writer run if it would
            assert server.status()[0].types[LISTENER].sent_nonce is None
            release.set()
            response = await client.recv()
            assert len(response.resources) == 1  # "greeter", not an empty "does not exist"

    run(scenario())


def test_mutual_tls_exposes_the_client_identity(tmp_path: Any) -> None:
    from tests.unit.controlplane.xds.certs import issue

    ca, server_cert, client_cert = issue("spiffe://mesh.local/ns/default/sa/web")
    seen: list[StreamInfo] = []

    class Capture(BaseCallbacks):
        def on_stream_open(self, stream: StreamInfo, node: base_pb2.Node) -> None:
            seen.append(stream)

    async def scenario() -> None:
        server = XdsServer(Capture())
        credentials = grpc.ssl_server_credentials(
            [(server_cert.key, server_cert.chain)], root_certificates=ca, require_client_auth=True
        )
        port = await server.start("127.0.0.1", 0, credentials)
        server.set_snapshot("web-1", snapshot())
        channel_credentials = grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=client_cert.key, certificate_chain=client_cert.chain
        )
        async with grpc.aio.secure_channel(f"localhost:{port}", channel_credentials) as channel:
            envoy = Envoy(channel, "web-1")
            await envoy.send(CLUSTER)
            assert (await envoy.recv()).type_url == CLUSTER
        await server.stop(0)
        (info,) = seen
        assert b"spiffe://mesh.local/ns/default/sa/web" in info.auth_context.get(
            "x509_subject_alternative_name", ()
        )

    run(scenario())
