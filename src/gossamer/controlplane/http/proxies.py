"""`/api/v1/proxies`: who is connected, what config they run, and what they rejected."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from google.protobuf.json_format import MessageToDict

from gossamer.controlplane.controller import MeshController, ProxyRecord
from gossamer.controlplane.http.api import HttpError
from gossamer.controlplane.xds import XdsServer
from gossamer.controlplane.xds.status import NackInfo, StreamStatus

SHORT = {
    "type.googleapis.com/envoy.config.listener.v3.Listener": "LDS",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": "RDS",
    "type.googleapis.com/envoy.config.cluster.v3.Cluster": "CDS",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "EDS",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "SDS",
}


def _nack(n: NackInfo | None) -> dict[str, Any] | None:
    if n is None:
        return None
    return {
        "type": SHORT.get(n.type_url, n.type_url),
        "version": n.rejected_version,
        "error": n.message,
        "at": n.at,
    }


def proxy_summary(record: ProxyRecord, streams: list[StreamStatus]) -> dict[str, Any]:
    node = record.node
    types: dict[str, Any] = {}
    nacking = None
    for stream in streams:
        for type_url, ts in stream.types.items():
            short = SHORT.get(type_url, type_url)
            types[short] = {
                "sent": ts.sent_version,
                "acked": ts.acked_version,
                "pending": ts.pending,
                "nack": _nack(ts.last_nack),
            }
            # NACKing: the last thing it said about this type was a NACK.
            if ts.last_nack and (ts.acked_at is None or ts.last_nack.at > ts.acked_at):
                nacking = _nack(ts.last_nack)
    if record.streams == 0:
        state = "disconnected"
    elif nacking:
        state = "nacking"
    elif any(t["sent"] and t["sent"] != t["acked"] for t in types.values()):
        state = "syncing"
    else:
        state = "connected"
    return {
        "name": node.id,
        "kind": node.kind,
        "workload": node.workload,
        "namespace": node.namespace,
        "service": node.service,
        "labels": dict(node.labels),
        "address": node.address,
        "adminPort": node.admin_port,
        "state": state,
        "streams": record.streams,
        "streamKind": streams[0].kind if streams else None,
        "userAgent": streams[0].user_agent if streams else "",
        "peer": streams[0].peer if streams else "",
        "connectedSince": record.connected_since,
        "disconnectedAt": record.disconnected_at,
        "types": types,
        "nack": nacking,
        "lastNack": _nack(record.last_nack),
    }


def proxy_routes(controller: MeshController, server: XdsServer) -> Callable[[FastAPI], None]:
    def add(app: FastAPI) -> None:
        def streams_by_node() -> dict[str, list[StreamStatus]]:
            out: dict[str, list[StreamStatus]] = {}
            for status in server.status():
                out.setdefault(status.node_id, []).append(status)
            return out

        @app.get("/api/v1/proxies", tags=["proxies"])
        async def list_proxies() -> dict[str, Any]:
            streams = streams_by_node()
            items = [
                proxy_summary(r, streams.get(node_id, []))
                for node_id, r in sorted(controller.proxies.items())
            ]
            return {"kind": "ProxyList", "items": items, "time": time.time()}

        @app.get("/api/v1/proxies/{node_id}", tags=["proxies"])
        async def get_proxy(node_id: str, config: bool = False) -> dict[str, Any]:
            record = controller.proxies.get(node_id)
            if record is None:
                raise HttpError(404, f"proxy {node_id!r} is not connected")
            body = proxy_summary(record, streams_by_node().get(node_id, []))
            if config:
                snapshot = server.get_snapshot(node_id)
                dump: dict[str, Any] = {}
                if snapshot is not None:
                    for type_url in snapshot.type_urls:
                        resources = snapshot.get(type_url)
                        dump[SHORT.get(type_url, type_url)] = {
                            name: MessageToDict(resources[name].message)
                            for name in sorted(resources)
                        }
                body["config"] = dump
            return body

    return add
