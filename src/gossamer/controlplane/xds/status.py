"""What the server reports about its streams (for the REST API, the CLI and the dashboard)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StreamKind = Literal["sotw", "delta"]


@dataclass(frozen=True, slots=True)
class NackInfo:
    """A response the client rejected."""

    type_url: str
    nonce: str  # the nonce of the rejected response
    rejected_version: str  # the version we sent with that nonce
    client_version: str  # the version the client says it still runs (SotW; "" in delta)
    code: int  # error_detail.code (a google.rpc.Code)
    message: str  # error_detail.message: the client's own words
    at: float  # time.time()


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """One resource type on one stream."""

    type_url: str
    wildcard: bool
    names: tuple[str, ...]  # explicitly subscribed names, sorted
    sent_version: str | None = None
    sent_nonce: str | None = None
    sent_at: float | None = None
    acked_version: str | None = None  # last version the client applied (ACK or reconnect)
    acked_at: float | None = None
    last_nack: NackInfo | None = None
    pending: bool = False  # a response is waiting for its ACK/NACK


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """One connected ADS stream."""

    stream_id: int
    node_id: str
    node_cluster: str
    node_metadata: dict[str, Any]
    user_agent: str  # e.g. "envoy 1.30.1" or "gRPC Python 1.85.1"
    peer: str
    kind: StreamKind
    connected_since: float  # time.time()
    types: dict[str, TypeStatus] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return asdict(self)
