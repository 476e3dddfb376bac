"""The ADS server on grpc.aio: a thin shell around the sans-IO stream states.

Each stream is served by its handler coroutine, which reads requests and feeds them to
the stream's state, plus one writer task that sleeps on an `asyncio.Event`; a new
snapshot only sets the events of that node's streams (O(streams of the node)), and each
writer then computes and writes its own responses. Responses are serialised by the state
(pre-encoded chunks), so the gRPC serializer is the identity.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format

from gossamer.controlplane.xds import types, wire
from gossamer.controlplane.xds.callbacks import (
    BaseCallbacks,
    StreamInfo,
    StreamRejected,
    XdsCallbacks,
)
from gossamer.controlplane.xds.delta import DeltaState
from gossamer.controlplane.xds.protocol import (
    Acked,
    Event,
    Nacked,
    StaleRequest,
    SubscriptionChanged,
)
from gossamer.controlplane.xds.resources import Snapshot
from gossamer.controlplane.xds.sotw import SotwState
from gossamer.controlplane.xds.status import StreamKind, StreamStatus
from gossamer.core.logs import get_logger

log = get_logger("controlplane.xds")

SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"

Request = TypeVar("Request", discovery_pb2.DiscoveryRequest, discovery_pb2.DeltaDiscoveryRequest)


# Streams live for days: ping idle clients to find dead ones (a host gone without a FIN),
# and accept the keepalive pings clients send (Envoy's ADS cluster often does) instead of
# answering them with GOAWAY "too_many_pings" under gRPC's 5-minute default.
DEFAULT_OPTIONS: dict[str, Any] = {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 5_000,
    "grpc.http2.max_ping_strikes": 0,
}


def _identity(payload: bytes) -> bytes:
    return payload


class _Stream:
    __slots__ = ("busy", "info", "node", "node_metadata", "state", "wake")

    def __init__(
        self, info: StreamInfo, node: base_pb2.Node, state: SotwState | DeltaState
    ) -> None:
        self.info = info
        self.node = node
        self.node_metadata: dict[str, Any] = json_format.MessageToDict(node.metadata)
        self.state = state
        self.wake = asyncio.Event()
        # Set while a request is being handled (its callbacks awaited): the writer waits,
        # so an answer never precedes the snapshot a callback sets for it.
        self.busy = False

    def status(self) -> StreamStatus:
        node = self.node
        return StreamStatus(
            stream_id=self.info.stream_id,
            node_id=self.info.node_id,
            node_cluster=node.cluster,
            node_metadata=self.node_metadata,
            user_agent=_user_agent(node),
            peer=self.info.peer,
            kind=self.info.kind,
            connected_since=self.info.connected_since,
            types=self.state.status(),
        )


class XdsServer:
    """Aggregated Discovery Service (SotW and delta) serving per-node snapshots.

    Knows no policy: the owner sets a `Snapshot` per node id and is told about streams
    through `callbacks`. Until a node has a snapshot its requests wait unanswered (a
    client must never be handed an empty configuration, e.g. while the control plane
    restarts). All methods must be called on the server's event loop.

    `options` are gRPC server options, laid over `DEFAULT_OPTIONS`; `control_plane_id`
    goes into every response's `control_plane.identifier`; `wildcard_types` are the
    types where an empty first subscription means "*".
    """

    def __init__(
        self,
        callbacks: XdsCallbacks | None = None,
        *,
        options: Sequence[tuple[str, Any]] = (),
        control_plane_id: str = "gossamer",
        wildcard_types: frozenset[str] = types.WILDCARD_TYPES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._callbacks: XdsCallbacks = callbacks if callbacks is not None else BaseCallbacks()
        self._options = list({**DEFAULT_OPTIONS, **dict(options)}.items())
        self._control_plane = wire.control_plane(control_plane_id)
        self._wildcard_types = wildcard_types
        self._clock = clock
        self._snapshots: dict[str, Snapshot] = {}
        self._streams: dict[int, _Stream] = {}
        self._by_node: dict[str, set[_Stream]] = {}
        self._ids = itertools.count(1)
        self._closing: set[asyncio.Task[None]] = set()
        self._server: grpc.aio.Server | None = None
        self._port: int | None = None
        # More gRPC services on the same port (the CA's CSR service, endpoint health
        # reports), added before start.
        self.extra_handlers: list[grpc.GenericRpcHandler] = []
        # Counters for the control plane's /metrics.
        self.streams_opened = 0
        self.pushes = 0  # discovery responses written
        self.nacks = 0

    # -- lifecycle --------------------------------------------------------------------

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        server_credentials: grpc.ServerCredentials | None = None,
    ) -> int:
        """Listen on host:port (0 = any free port); returns the bound port."""
        if self._server is not None:
            raise RuntimeError("the xDS server is already started")
        server = grpc.aio.server(options=self._options)
        server.add_generic_rpc_handlers((self._handlers(), *self.extra_handlers))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if server_credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, server_credentials)
        if not bound:
            raise OSError(f"the xDS server could not listen on {address}")
        await server.start()
        self._server = server
        self._port = int(bound)
        log.info(
            "xds server listening", address=address, port=bound, tls=server_credentials is not None
        )
        return self._port

    async def stop(self, grace: float | None = None) -> None:
        """Stop listening and end every stream (after `grace` seconds at most)."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace)
            if self._closing:
                # on_stream_closed callbacks; bounded, as a callback may misbehave.
                await asyncio.wait(set(self._closing), timeout=max(grace or 0.0, 1.0))
            log.info("xds server stopped", port=self._port)

    @property
    def port(self) -> int | None:
        return self._port

    def _handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "StreamAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    self._serve_sotw,
                    request_deserializer=discovery_pb2.DiscoveryRequest.FromString,
                    response_serializer=_identity,
                ),
                "DeltaAggregatedResources": grpc.stream_stream_rpc_method_handler(
                    self._serve_delta,
                    request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
                    response_serializer=_identity,
                ),
            },
        )

    # -- snapshots --------------------------------------------------------------------

    def set_snapshot(self, node_id: str, snapshot: Snapshot) -> None:
        """Make `snapshot` the node's configuration; its open streams push what changed."""
        self._snapshots[node_id] = snapshot
        for stream in self._by_node.get(node_id, ()):
            stream.wake.set()

    def clear_snapshot(self, node_id: str) -> None:
        """Forget the node's snapshot. Nothing is pushed (clients keep what they have);
        its streams wait for the next `set_snapshot`."""
        self._snapshots.pop(node_id, None)

    def get_snapshot(self, node_id: str) -> Snapshot | None:
        return self._snapshots.get(node_id)

    # -- introspection ----------------------------------------------------------------

    def status(self) -> list[StreamStatus]:
        """Every open stream, oldest first."""
        return [stream.status() for stream in self._streams.values()]

    def streams(self, node_id: str | None = None) -> list[StreamInfo]:
        """Open streams, all or of one node."""
        if node_id is None:
            return [s.info for s in self._streams.values()]
        return [s.info for s in self._by_node.get(node_id, ())]

    # -- streams ----------------------------------------------------------------------

    async def _serve_sotw(
        self,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        await self._serve(
            "sotw",
            requests,
            context,
            lambda: SotwState(
                wildcard_types=self._wildcard_types,
                clock=self._clock,
                control_plane=self._control_plane,
            ),
            lambda request: request.node,
        )

    async def _serve_delta(
        self,
        requests: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> None:
        await self._serve(
            "delta",
            requests,
            context,
            lambda: DeltaState(
                wildcard_types=self._wildcard_types,
                clock=self._clock,
                control_plane=self._control_plane,
            ),
            lambda request: request.node,
        )

    async def _serve(
        self,
        kind: StreamKind,
        requests: AsyncIterator[Request],
        context: grpc.aio.ServicerContext,
        make_state: Callable[[], SotwState | DeltaState],
        node_of: Callable[[Request], base_pb2.Node],
    ) -> None:
        iterator = requests.__aiter__()
        try:
            request = await iterator.__anext__()
        except StopAsyncIteration:
            return
        node = node_of(request)
        if not node.id:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the first request of a stream must carry node.id"
            )
        info = StreamInfo(
            stream_id=next(self._ids),
            kind=kind,
            node_id=node.id,
            peer=context.peer(),
            connected_since=self._clock(),
            metadata=tuple((m.key, m.value) for m in context.invocation_metadata() or ()),
            auth_context={k: tuple(v) for k, v in (context.auth_context() or {}).items()},
        )
        await self._open(info, node, context)
        stream = _Stream(info, node, make_state())
        self._streams[info.stream_id] = stream
        self._by_node.setdefault(node.id, set()).add(stream)
        self.streams_opened += 1
        log.info(
            "xds stream opened", stream=info.stream_id, kind=kind, node=node.id, peer=info.peer
        )
        reader = asyncio.current_task()
        writer = asyncio.create_task(self._write(stream, context, reader))
        try:
            while True:
                await self._receive(stream, request)
                try:
                    request = await iterator.__anext__()
                except StopAsyncIteration:
                    break
        finally:
            # Nothing awaited here: gRPC may cancel the handler more than once, which
            # would cut a cleanup short. The rest runs in a task `stop()` waits for.
            writer.cancel()
            self._streams.pop(info.stream_id, None)
            peers = self._by_node.get(node.id)
            if peers is not None:
                peers.discard(stream)
                if not peers:
                    del self._by_node[node.id]
            log.info("xds stream closed", stream=info.stream_id, node=node.id)
            closing = asyncio.create_task(self._closed(stream, writer))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _closed(self, stream: _Stream, writer: asyncio.Task[None]) -> None:
        await asyncio.wait([writer])
        await self._notify(self._callbacks.on_stream_closed, stream.info, stream.node)

    async def _open(
        self, info: StreamInfo, node: base_pb2.Node, context: grpc.aio.ServicerContext
    ) -> None:
        try:
            await _maybe_await(self._callbacks.on_stream_open(info, node))
        except StreamRejected as rejected:
            log.warning(
                "xds stream refused",
                node=node.id,
                peer=info.peer,
                code=rejected.code.name,
                reason=rejected.message,
            )
            await context.abort(rejected.code, rejected.message)
        except Exception:
            log.error("xds on_stream_open failed", exc_info=True, node=node.id)
            await context.abort(
                grpc.StatusCode.INTERNAL, "the control plane could not open the stream"
            )

    async def _receive(self, stream: _Stream, request: Any) -> None:
        if not request.type_url:
            log.warning("xds request without type_url ignored", stream=stream.info.stream_id)
            return
        stream.busy = True
        try:
            await self._dispatch(stream, stream.state.receive(request))
        finally:
            stream.busy = False
            stream.wake.set()

    async def _dispatch(self, stream: _Stream, events: list[Event]) -> None:
        info, node = stream.info, stream.node
        for event in events:
            if isinstance(event, SubscriptionChanged):
                log.debug(
                    "xds subscription",
                    stream=info.stream_id,
                    node=node.id,
                    type=types.short_name(event.type_url),
                    wildcard=event.wildcard,
                    names=",".join(sorted(event.names)),
                )
                await self._notify(
                    self._callbacks.on_subscription_change,
                    info,
                    node,
                    event.type_url,
                    event.wildcard,
                    event.names,
                )
            elif isinstance(event, Acked):
                log.debug(
                    "xds ack",
                    stream=info.stream_id,
                    node=node.id,
                    type=types.short_name(event.type_url),
                    version=event.version,
                )
                await self._notify(
                    self._callbacks.on_ack, info, node, event.type_url, event.version, event.nonce
                )
            elif isinstance(event, Nacked):
                nack = event.nack
                self.nacks += 1
                log.warning(
                    "xds nack",
                    stream=info.stream_id,
                    node=node.id,
                    type=types.short_name(nack.type_url),
                    version=nack.rejected_version,
                    nonce=nack.nonce,
                    error=nack.message,
                )
                await self._notify(self._callbacks.on_nack, info, node, nack)
            elif isinstance(event, StaleRequest):
                log.debug(
                    "xds stale request",
                    stream=info.stream_id,
                    node=node.id,
                    type=types.short_name(event.type_url),
                    nonce=event.nonce,
                )

    async def _write(
        self,
        stream: _Stream,
        context: grpc.aio.ServicerContext,
        reader: asyncio.Task[Any] | None,
    ) -> None:
        try:
            while True:
                await stream.wake.wait()
                stream.wake.clear()
                if stream.busy:
                    continue  # woken again when the request is handled
                snapshot = self._snapshots.get(stream.info.node_id)
                if snapshot is None:
                    continue  # wait for one: never answer with an empty configuration
                # In its own frame, so no payload (up to the whole mesh's routes) stays
                # referenced while the stream idles: with 1,000 streams that was 300+ MiB.
                await self._write_responses(stream, context, snapshot)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The stream is broken (client gone mid-write): end the handler too.
            log.warning("xds stream write failed", exc_info=True, stream=stream.info.stream_id)
            if reader is not None:
                reader.cancel()

    async def _write_responses(
        self, stream: _Stream, context: grpc.aio.ServicerContext, snapshot: Snapshot
    ) -> None:
        for response in stream.state.responses(snapshot):
            await context.write(response.payload)
            self.pushes += 1
            log.debug(
                "xds push",
                stream=stream.info.stream_id,
                node=stream.info.node_id,
                type=types.short_name(response.type_url),
                version=response.version,
                nonce=response.nonce,
                resources=len(response.resources),
                removed=len(response.removed),
            )

    async def _notify(self, callback: Callable[..., Any], *args: Any) -> None:
        # An owner's bug must not break the stream; it is logged.
        try:
            await _maybe_await(callback(*args))
        except Exception:
            log.error(
                "xds callback failed",
                exc_info=True,
                callback=getattr(callback, "__name__", repr(callback)),
            )


def _user_agent(node: base_pb2.Node) -> str:
    which = node.WhichOneof("user_agent_version_type")
    if which == "user_agent_version":
        version = node.user_agent_version
    elif which == "user_agent_build_version":
        semver = node.user_agent_build_version.version
        version = f"{semver.major_number}.{semver.minor_number}.{semver.patch}"
    else:
        version = ""
    return f"{node.user_agent_name} {version}".strip()


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
