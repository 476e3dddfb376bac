"""How the server tells its owner about streams, and how the owner refuses one."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import grpc
from envoy.config.core.v3 import base_pb2

from gossamer.controlplane.xds.status import NackInfo, StreamKind


class StreamRejected(Exception):
    """Raise from `on_stream_open` to refuse a stream with this gRPC status."""

    def __init__(
        self, code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED, message: str = ""
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, eq=False)
class StreamInfo:
    """One ADS stream, as the callbacks see it (compared by identity)."""

    stream_id: int
    kind: StreamKind
    node_id: str
    peer: str  # e.g. "ipv4:127.0.0.1:51234"
    connected_since: float  # time.time()
    # gRPC request metadata (lower-case keys; a key may repeat), e.g. an auth token.
    metadata: tuple[tuple[str, str | bytes], ...] = ()
    # The TLS peer's identity properties when the server runs with credentials
    # (e.g. {"x509_subject_alternative_name": [b"spiffe://..."]}); empty otherwise.
    auth_context: Mapping[str, tuple[bytes, ...]] = field(default_factory=dict)

    def metadata_value(self, key: str) -> str | bytes | None:
        """The first value of a metadata key, or None."""
        for k, v in self.metadata:
            if k == key:
                return v
        return None


MaybeAwaitable = Awaitable[None] | None


class XdsCallbacks(Protocol):
    """The server's owner. Each method may be a plain function or a coroutine function.

    All run on the server's event loop, in the order of the stream's requests; the server
    waits for each before going on with that stream (not with others).
    """

    def on_stream_open(self, stream: StreamInfo, node: base_pb2.Node) -> MaybeAwaitable:
        """A stream sent its first request. Raise `StreamRejected` to refuse it."""

    def on_subscription_change(
        self,
        stream: StreamInfo,
        node: base_pb2.Node,
        type_url: str,
        wildcard: bool,
        names: frozenset[str],
    ) -> MaybeAwaitable:
        """The stream's interest in a type changed (first request of a type included).

        Called before the request is answered, so a snapshot set from here (for on-demand
        names, e.g. a gRPC client's listener named after its target) makes it into the
        answer. `names` are the explicitly subscribed names; `wildcard` means "all".
        """

    def on_ack(
        self, stream: StreamInfo, node: base_pb2.Node, type_url: str, version: str, nonce: str
    ) -> MaybeAwaitable:
        """The client applied the response `nonce` (of `version`)."""

    def on_nack(self, stream: StreamInfo, node: base_pb2.Node, nack: NackInfo) -> MaybeAwaitable:
        """The client rejected a response; it keeps running its last good version."""

    def on_stream_closed(self, stream: StreamInfo, node: base_pb2.Node) -> MaybeAwaitable:
        """The stream ended (client gone, error, or server stopping). Not called when
        `on_stream_open` refused it."""


class BaseCallbacks:
    """No-op `XdsCallbacks` to subclass, overriding only what is needed."""

    def on_stream_open(self, stream: StreamInfo, node: base_pb2.Node) -> MaybeAwaitable:
        return None

    def on_subscription_change(
        self,
        stream: StreamInfo,
        node: base_pb2.Node,
        type_url: str,
        wildcard: bool,
        names: frozenset[str],
    ) -> MaybeAwaitable:
        return None

    def on_ack(
        self, stream: StreamInfo, node: base_pb2.Node, type_url: str, version: str, nonce: str
    ) -> MaybeAwaitable:
        return None

    def on_nack(self, stream: StreamInfo, node: base_pb2.Node, nack: NackInfo) -> MaybeAwaitable:
        return None

    def on_stream_closed(self, stream: StreamInfo, node: base_pb2.Node) -> MaybeAwaitable:
        return None
