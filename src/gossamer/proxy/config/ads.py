"""The sidecar's ADS client: one gRPC stream to the control plane, reconnecting forever.

The state machine is in state.py; this shell moves DiscoveryRequests/Responses of either
ADS variant: state of the world (`StreamAggregatedResources`) or incremental
(`DeltaAggregatedResources`, the default: a change to one of 10,000 endpoints sends that
cluster's assignment, not all of them). While the control plane is unreachable the proxy
keeps serving its last config and retries with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import struct_pb2
from google.rpc import status_pb2  # type: ignore[import-untyped]

from gossamer.core.logs import get_logger
from gossamer.proxy.config import model as m
from gossamer.proxy.config.state import WILDCARD_TYPES, AdsState, Request

log = get_logger("proxy.xds")


def make_node(node_id: str, cluster: str, metadata: dict[str, Any]) -> base_pb2.Node:
    meta = struct_pb2.Struct()
    meta.update(metadata)
    node = base_pb2.Node(id=node_id, cluster=cluster, metadata=meta)
    node.user_agent_name = "gossamer"
    return node


@dataclass
class AdsStatus:
    connected: bool = False
    connects: int = 0
    last_error: str = ""
    last_change: float = field(default_factory=time.time)


class AdsClient:
    def __init__(
        self,
        target: str,
        node: base_pb2.Node,
        on_config: Callable[[m.ProxyConfig], None],
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        delta: bool = True,
    ) -> None:
        self.target = target
        self.node = node
        self.on_config = on_config
        self.token = token
        self.credentials = credentials
        self.delta = delta
        self.state = AdsState()
        self.status = AdsStatus()
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        backoff = 0.1
        while not self._stopped.is_set():
            started = time.monotonic()
            try:
                await self._stream_once()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                self._disconnected(f"{exc.code().name}: {exc.details()}")
            except Exception as exc:  # keep serving; the next attempt may work
                self._disconnected(repr(exc))
                log.error("xds stream failed", exc_info=True)
            if self._stopped.is_set():
                break
            if time.monotonic() - started > 10:
                backoff = 0.1  # the stream was healthy for a while: retry promptly
            delay = backoff * (0.5 + random.random())
            backoff = min(backoff * 2, 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)

    def stop(self) -> None:
        self._stopped.set()

    def _connected(self) -> None:
        if not self.status.connected:
            self.status.connected = True
            self.status.connects += 1
            self.status.last_error = ""
            self.status.last_change = time.time()
            log.info("xds connected", target=self.target)

    def _disconnected(self, reason: str) -> None:
        if self.status.connected or reason != self.status.last_error:
            log.warning("xds disconnected; serving the last config", reason=reason)
        self.status.connected = False
        self.status.last_error = reason
        self.status.last_change = time.time()

    async def _stream_once(self) -> None:
        channel = (
            grpc.aio.secure_channel(self.target, self.credentials)
            if self.credentials
            else grpc.aio.insecure_channel(self.target)
        )
        outbox: asyncio.Queue[Request | None] = asyncio.Queue()
        state = self.state
        state.reset_nonces()
        encode = _DeltaEncoder(self.node, state) if self.delta else self._encode
        for request in state.initial_requests():
            outbox.put_nowait(request)

        async def requests() -> AsyncIterator[Any]:
            while True:
                item = await outbox.get()
                if item is None:
                    return
                message = encode(item)
                if message is not None:
                    yield message

        metadata = (("authorization", f"Bearer {self.token}"),) if self.token else None
        ticker: asyncio.Task[None] | None = None
        try:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            method = stub.DeltaAggregatedResources if self.delta else stub.StreamAggregatedResources
            call = method(requests(), metadata=metadata)
            ticker = asyncio.create_task(self._tick(outbox))
            # Connected once the stream is up, not at the first response: a control plane
            # that restarts with nothing new for us (our versions are current) sends none.
            await call.wait_for_connection()
            self._connected()
            async for response in call:
                self._connected()
                if self.delta:
                    out, config = state.on_delta_response(
                        response.type_url,
                        response.system_version_info,
                        response.nonce,
                        ((r.name, r.version, _unpack_any(r.resource)) for r in response.resources),
                        response.removed_resources,
                    )
                else:
                    out, config = state.on_response(
                        response.type_url,
                        response.version_info,
                        response.nonce,
                        ((_name(r, response.type_url), r) for r in _unpack(response)),
                    )
                for request in out:
                    if request.error:
                        log.warning(
                            "config rejected (NACK)", type=request.type_url, error=request.error
                        )
                    outbox.put_nowait(request)
                if config is not None:
                    self.on_config(config)
            raise ConnectionError("control plane closed the stream")
        finally:
            if ticker is not None:
                ticker.cancel()
            outbox.put_nowait(None)
            await channel.close()

    async def _tick(self, outbox: asyncio.Queue[Request | None]) -> None:
        while True:
            await asyncio.sleep(0.5)
            out, config = self.state.tick()
            for request in out:
                outbox.put_nowait(request)
            if config is not None:
                self.on_config(config)

    def _encode(self, request: Request) -> discovery_pb2.DiscoveryRequest:
        msg = discovery_pb2.DiscoveryRequest(
            version_info=request.version,
            node=self.node,
            resource_names=list(request.names),
            type_url=request.type_url,
            response_nonce=request.nonce,
        )
        if request.error:
            msg.error_detail.CopyFrom(status_pb2.Status(code=3, message=request.error))
        return msg


class _DeltaEncoder:
    """Turns the state machine's requests into DeltaDiscoveryRequests for one stream.

    Subscriptions are sent as changes against what this stream has sent so far; the first
    request of a type carries what we hold (`initial_resource_versions`) so a reconnect
    resends only what changed. A request that only changes the subscription goes without a
    nonce, so it is never mistaken for an ACK.
    """

    def __init__(self, node: base_pb2.Node, state: AdsState) -> None:
        self.node = node
        self.state = state
        self.sent: dict[str, set[str]] = {}

    def __call__(self, request: Request) -> discovery_pb2.DeltaDiscoveryRequest | None:
        t = request.type_url
        msg = discovery_pb2.DeltaDiscoveryRequest(type_url=t)
        first = t not in self.sent
        if first:
            msg.node.CopyFrom(self.node)
            msg.initial_resource_versions.update(self.state.resource_versions.get(t, {}))
        if t in WILDCARD_TYPES:
            if first:
                msg.resource_names_subscribe.append("*")
            self.sent[t] = set()
        else:
            old, new = self.sent.get(t, set()), set(request.names)
            msg.resource_names_subscribe.extend(sorted(new - old))
            msg.resource_names_unsubscribe.extend(sorted(old - new))
            self.sent[t] = new
        if not request.subscription_only:
            msg.response_nonce = request.nonce
        if request.error:
            msg.error_detail.CopyFrom(status_pb2.Status(code=3, message=request.error))
        changed = first or msg.resource_names_subscribe or msg.resource_names_unsubscribe
        if not (changed or msg.response_nonce):
            return None  # nothing to say
        return msg


def _unpack_any(any_msg: Any) -> Any:
    from google.protobuf import symbol_database

    from gossamer.proxy.config.support import _import_typed_configs

    _import_typed_configs()
    type_name = any_msg.type_url.rsplit("/", 1)[-1]
    msg = symbol_database.Default().GetSymbol(type_name)()
    any_msg.Unpack(msg)
    return msg


def _unpack(response: discovery_pb2.DiscoveryResponse) -> list[Any]:
    return [_unpack_any(any_msg) for any_msg in response.resources]


def _name(resource: Any, type_url: str) -> str:
    return str(getattr(resource, "name", "") or getattr(resource, "cluster_name", ""))
