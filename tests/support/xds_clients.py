"""Simulated sidecars: real gRPC ADS streams (state of the world) from one helper process.

Each node asks for CDS and LDS, then EDS and RDS as a sidecar would, and ACKs what it
gets; the nodes named with --nack reject every Listener response instead (a NACK with
error_detail, as a sidecar that cannot honour its config does). For the dashboard's tests:
a NACKing proxy, and hundreds of proxies registered.

    python -m tests.support.xds_clients --xds 127.0.0.1:5678 --token T --count 300 \\
        --prefix sim- --nack sim-0 --ready-file ready.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"
RDS = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CDS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
EDS = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
NACK_ERROR = "listener outbound:http: simulated rejection (this client NACKs every Listener)"


async def _client(channel: Any, node_id: str, token: str, nack: bool, got: set[str]) -> None:
    from envoy.config.core.v3 import base_pb2
    from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
    from google.protobuf import struct_pb2
    from google.rpc import status_pb2

    meta = struct_pb2.Struct()
    meta.update({"gossamer": {"kind": "sidecar", "workload": node_id, "outboundHttpPort": 15001}})
    node = base_pb2.Node(id=node_id, metadata=meta, user_agent_name="simulated")
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for t in (CDS, LDS):
        queue.put_nowait(discovery_pb2.DiscoveryRequest(node=node, type_url=t))

    async def requests() -> Any:
        while True:
            yield await queue.get()

    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
    names: dict[str, list[str]] = {EDS: [], RDS: []}
    accepted: dict[str, str] = {}
    async for response in stub.StreamAggregatedResources(
        requests(), metadata=(("authorization", f"Bearer {token}"),)
    ):
        t = response.type_url
        if nack and t == LDS:
            queue.put_nowait(
                discovery_pb2.DiscoveryRequest(
                    node=node,
                    type_url=t,
                    version_info=accepted.get(t, ""),
                    response_nonce=response.nonce,
                    error_detail=status_pb2.Status(code=3, message=NACK_ERROR),
                )
            )
            got.add(node_id)
            continue
        accepted[t] = response.version_info
        queue.put_nowait(
            discovery_pb2.DiscoveryRequest(
                node=node,
                type_url=t,
                version_info=response.version_info,
                response_nonce=response.nonce,
                resource_names=names.get(t, []),
            )
        )
        got.add(node_id)
        if t == CDS and not names[EDS]:
            from envoy.config.cluster.v3 import cluster_pb2

            for any_msg in response.resources:
                c = cluster_pb2.Cluster()
                any_msg.Unpack(c)
                names[EDS].append(c.name)
            if names[EDS]:
                queue.put_nowait(
                    discovery_pb2.DiscoveryRequest(
                        node=node, type_url=EDS, resource_names=names[EDS]
                    )
                )
        if t == LDS and not names[RDS]:
            names[RDS] = ["outbound:http"]
            queue.put_nowait(
                discovery_pb2.DiscoveryRequest(node=node, type_url=RDS, resource_names=names[RDS])
            )


async def run(xds: str, token: str, ids: list[str], nack: set[str], ready: Path | None) -> None:
    import grpc

    channels = [grpc.aio.insecure_channel(xds) for _ in range(max(1, len(ids) // 50))]
    got: set[str] = set()
    tasks = [
        asyncio.create_task(
            _client(channels[i % len(channels)], node_id, token, node_id in nack, got)
        )
        for i, node_id in enumerate(ids)
    ]
    written = False
    while True:
        await asyncio.sleep(0.1)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"a simulated client failed: {failed[0].exception()!r}")
        if ready is not None and not written and len(got) == len(ids):
            ready.write_text(json.dumps({"clients": len(ids)}))
            written = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--xds", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--prefix", default="sim-")
    parser.add_argument("--nack", action="append", default=[])
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args()
    ids = [f"{args.prefix}{i}" for i in range(args.count)]
    import uvloop

    uvloop.run(run(args.xds, args.token, ids, set(args.nack), args.ready_file))


if __name__ == "__main__":
    main()
