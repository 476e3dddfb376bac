"""Endpoint health as the sidecars' active health checks see it.

Sidecars report over the xDS port (a unary gRPC method next to ADS, JSON body):

    /gossamer.health.v1.EndpointHealth/Report   {"node": ID, "clusters":
        {"web.default:80": {"127.0.0.1:8000": true, "127.0.0.1:8001": false}}}

A report replaces the node's previous one; it is accepted only from a node with an open
ADS stream, and forgotten when the node goes. `GET /api/v1/endpoints` (and `gossamer get
endpoints`) shows every service endpoint with what its checkers last said. The results
inform; they do not change EDS (each sidecar already stops sending to what it sees down).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import grpc
from fastapi import FastAPI

from gossamer.controlplane.controller import MeshController
from gossamer.core.logs import get_logger

log = get_logger("controlplane.health")

SERVICE = "gossamer.health.v1.EndpointHealth"
METHOD = f"/{SERVICE}/Report"


class HealthReports:
    def __init__(self, controller: MeshController) -> None:
        self.controller = controller
        # node → (time, {cluster: {"address:port": healthy}})
        self.reports: dict[str, tuple[float, dict[str, dict[str, bool]]]] = {}

    def accept(self, body: dict[str, Any]) -> str:
        """Store a report; returns "" or why it was refused."""
        node = body.get("node")
        clusters = body.get("clusters")
        if not isinstance(node, str) or not isinstance(clusters, dict):
            return "needs node (string) and clusters (mapping)"
        record = self.controller.proxies.get(node)
        if record is None or record.streams <= 0:
            return f"node {node!r} has no open ADS stream"
        clean: dict[str, dict[str, bool]] = {}
        for cluster, results in clusters.items():
            if not isinstance(results, dict):
                return f"clusters[{cluster!r}]: must be a mapping"
            clean[str(cluster)] = {str(k): bool(v) for k, v in results.items()}
        self.reports[node] = (time.time(), clean)
        return ""

    def _prune(self) -> None:
        for node in [n for n in self.reports if n not in self.controller.proxies]:
            del self.reports[node]

    def endpoints(self) -> list[dict[str, Any]]:
        """Every service endpoint, with the checks reported for it."""
        self._prune()
        translator = self.controller.translator
        if translator is None:
            return []
        registry = translator.snapshot.registry
        items = []
        for svc in registry.services.values():
            for sport in svc.ports:
                cluster = f"{svc.name}.{svc.namespace}:{sport.port}"
                for ep in registry.endpoints(svc, sport.port):
                    key = f"{ep.address}:{ep.port}"
                    checks = {
                        node: results[cluster][key]
                        for node, (_, results) in sorted(self.reports.items())
                        if key in results.get(cluster, {})
                    }
                    if not ep.healthy:
                        health = "unhealthy"
                    elif not checks:
                        health = "unchecked"
                    else:
                        health = "healthy" if all(checks.values()) else "failing"
                    items.append(
                        {
                            "service": svc.name,
                            "namespace": svc.namespace,
                            "port": sport.port,
                            "address": key,
                            "workload": ep.workload,
                            "zone": ep.zone,
                            "health": health,
                            "checks": {n: "pass" if ok else "fail" for n, ok in checks.items()},
                        }
                    )
        return items

    def grpc_handler(self) -> grpc.GenericRpcHandler:
        async def report(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            try:
                body = json.loads(request)
            except ValueError:
                body = None
            error = self.accept(body) if isinstance(body, dict) else "body must be a JSON object"
            if error:
                log.warning("health report refused", reason=error)
            return json.dumps({"accepted": not error, "error": error}).encode()

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Report": grpc.unary_unary_rpc_method_handler(
                    report, request_deserializer=None, response_serializer=None
                )
            },
        )

    def routes(self) -> Callable[[FastAPI], None]:
        def add(app: FastAPI) -> None:
            @app.get("/api/v1/endpoints", tags=["proxies"])
            async def list_endpoints() -> dict[str, Any]:
                return {"kind": "EndpointList", "items": self.endpoints(), "time": time.time()}

        return add
