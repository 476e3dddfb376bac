"""The control plane's xDS transport: an Aggregated Discovery Service server.

It serves Envoy's ADS over gRPC (grpc.aio), state-of-the-world
(`StreamAggregatedResources`) and incremental (`DeltaAggregatedResources`), to Gossamer's
sidecars, Envoy and proxyless gRPC clients. It knows no policy: the translation builds a
`Snapshot` per proxy (node id) and hands it over.

    server = XdsServer(callbacks)                 # callbacks: an XdsCallbacks, optional
    port = await server.start("0.0.0.0", 5678)    # server_credentials=... for TLS
    server.set_snapshot("node-1", Snapshot(clusters=[...], endpoints=[...],
                                           listeners=[...], routes=[...], secrets=[...]))
    server.status()                               # -> list[StreamStatus]
    await server.stop(grace=1.0)

Snapshots (`resources`)
    `Snapshot` maps type URL (`types.LISTENER`, `ROUTE`, `CLUSTER`, `ENDPOINT`, `SECRET`)
    to a `ResourceSet` (name → `Resource`). Each resource is serialised deterministically
    and hashed once, and shared by content (and by message identity) across all
    snapshots, so identical clusters of 1,000 proxies cost one serialisation. A type's
    version is a hash of its (name, hash) pairs: an unchanged type pushes nothing, and
    versions survive restarts. Share one `ResourceSet` object between proxies that see
    the same resources, or derive with `Snapshot.replace`, to make unchanged types free.
    Messages given to a snapshot must not be mutated afterwards.

Server (`server.XdsServer`)
    `set_snapshot(node_id, snapshot)` pushes to that node's open streams whatever their
    subscriptions see changed, in make-before-break order CDS → EDS → LDS → RDS → SDS;
    `clear_snapshot(node_id)` forgets it without pushing. Until a node has a snapshot its
    requests wait: no empty configuration is ever sent. Call these on the server's loop.

Callbacks (`callbacks.XdsCallbacks`; subclass `BaseCallbacks`; sync or async methods)
    on_stream_open(stream, node)          raise StreamRejected(code, message) to refuse
    on_subscription_change(stream, node, type_url, wildcard, names)
                                          awaited before the request is answered, so a
                                          snapshot set there is in the answer (on-demand
                                          names: a gRPC client's listener is its target)
    on_ack(stream, node, type_url, version, nonce)
    on_nack(stream, node, nack: NackInfo) the client keeps its last good version
    on_stream_closed(stream, node)
    `stream` is a `StreamInfo` (id, kind, node id, peer, metadata, TLS auth context).

Protocol (`sotw.SotwState`, `delta.DeltaState`: sans-IO, one per stream)
    ACK/NACK are matched by response nonce; stale nonces are never ACK/NACK but their
    subscription changes are kept; at most one unacknowledged response per type; NACKed
    content is not resent (the next different content is); a reconnecting SotW client
    whose version equals the current content gets nothing; delta honours
    initial_resource_versions, subscribe/unsubscribe, "*" and legacy wildcards, and
    sends removed_resources. See those modules for the exact rules.

Status (`status`)
    `StreamStatus` per stream: node id, cluster, metadata, user agent, peer, kind,
    connected since, and per type a `TypeStatus`: wildcard/names, last sent version and
    nonce, last ACKed version, last NACK (`NackInfo`: version, nonce, error text, time).
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
