"""The control plane's xDS transport: an Aggregated Discovery Service server.

It serves Envoy's ADS over gRPC (grpc.aio), state-of-the-world
(`StreamAggregatedResources`) and incremental (`DeltaAggregatedResources`), to Gossamer's
sidecars, Envoy and proxyless gRPC clients. It knows no policy: the translation builds a
`Snapshot` per proxy (node id) and hands it over.

    server = XdsServer(callbacks)                 # callbacks: an XdsCallbacks, optional
    port = await server.start("0.0.0.0", 5678)    # server_credentials=... for (m)TLS
    server.set_snapshot("node-1", Snapshot(clusters=[...], endpoints=[...],
                                           listeners=[...], routes=[...], secrets=[...]))
    server.status()                               # -> list[StreamStatus]
    await server.stop(grace=1.0)

Snapshots (`resources`)
    `Snapshot` maps type URL (`LISTENER`, `ROUTE`, `CLUSTER`, `ENDPOINT`, `SECRET`) to a
    `ResourceSet` (name -> `Resource`); a missing type is empty. Each resource is
    serialised deterministically and hashed once and shared by content (and by message
    identity) across all snapshots, so identical clusters of 1,000 proxies cost one
    serialisation; equal sets are interned into one object. A type's version is a
    content hash (XOR of per-resource tokens): an unchanged type pushes nothing, and
    versions survive restarts. For speed, share one `ResourceSet` between proxies that
    see the same resources (or derive snapshots with `Snapshot.replace`): a push then
    costs each stream O(1) for unchanged types and O(changes) for changed ones. Messages
    given to a snapshot must not be mutated afterwards.

Server (`server.XdsServer`)
    `set_snapshot(node_id, snapshot)` pushes to that node's open streams whatever their
    subscriptions see changed, in make-before-break order CDS, EDS, LDS, RDS, SDS;
    `clear_snapshot(node_id)` forgets it without pushing. Until a node has a snapshot its
    requests wait: no empty configuration is ever sent. Call these on the server's loop.
    `status()` describes every open stream; `streams(node_id)` lists them.

Callbacks (`callbacks.XdsCallbacks`; subclass `BaseCallbacks`; sync or async methods,
awaited in the order of the stream's requests)
    on_stream_open(stream, node)          raise StreamRejected(code, message) to refuse
                                          the stream with that gRPC status
    on_subscription_change(stream, node, type_url, wildcard, names)
                                          first request of a type included; the stream
                                          answers only after it returns, so a snapshot
                                          set there is in the answer (on-demand names:
                                          a gRPC client's listener is its target host)
    on_ack(stream, node, type_url, version, nonce)
    on_nack(stream, node, nack: NackInfo) the client keeps its last good version
    on_stream_closed(stream, node)
    `stream` is a `StreamInfo`: id, kind, node id, peer, connected since, request
    metadata (`metadata_value("x-token")`), TLS auth context (peer SANs under mTLS).

Protocol (`sotw.SotwState`, `delta.DeltaState`: sans-IO, one per stream)
    ACK/NACK matched by response nonce; stale nonces are never ACK/NACK but their
    subscription changes are kept; at most one unacknowledged response per type; NACKed
    content is not resent (the next different content is); a reconnecting SotW client
    whose version equals the current content gets nothing; SotW RDS/EDS/SDS answers
    carry only what changed (and an empty answer moves the version when something was
    removed); delta honours initial_resource_versions, subscribe/unsubscribe, "*" and
    legacy wildcards, and sends removed_resources. See those modules for the rules.

Status (`status`)
    `StreamStatus` per stream: node id, cluster, metadata (dict), user agent, peer, kind,
    connected since, and per type a `TypeStatus`: wildcard and names, last sent version
    and nonce, last ACKed version, pending, last NACK (`NackInfo`: rejected version,
    nonce, error code and text, time). `StreamStatus.to_dict()` is JSON-able.
"""

from gossamer.controlplane.xds.callbacks import (
    BaseCallbacks,
    StreamInfo,
    StreamRejected,
    XdsCallbacks,
)
from gossamer.controlplane.xds.resources import Resource, ResourceCache, ResourceSet, Snapshot
from gossamer.controlplane.xds.server import XdsServer
from gossamer.controlplane.xds.status import NackInfo, StreamStatus, TypeStatus
from gossamer.controlplane.xds.types import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET

__all__ = [
    "CLUSTER",
    "ENDPOINT",
    "LISTENER",
    "ROUTE",
    "SECRET",
    "BaseCallbacks",
    "NackInfo",
    "Resource",
    "ResourceCache",
    "ResourceSet",
    "Snapshot",
    "StreamInfo",
    "StreamRejected",
    "StreamStatus",
    "TypeStatus",
    "XdsCallbacks",
    "XdsServer",
]
