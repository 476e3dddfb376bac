"""`GET /api/v1/explain`: what the mesh will do with a request, and why (gossamer.explain).

The explanation runs the sidecar's own compiler, route matching and authorization on the
config the control plane sends (or would send) the source's sidecar; that code lives in
gossamer.explain, imported here on first use so the control plane does not load the proxy
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from gossamer.controlplane.controller import MeshController
from gossamer.controlplane.http.api import HttpError

MAX_HEADERS = 50


def explain_routes(
    controller: MeshController, health: Callable[[], list[dict[str, Any]]] | None = None
) -> Callable[[FastAPI], None]:
    def add(app: FastAPI) -> None:
        @app.get("/api/v1/explain", tags=["observability"])
        async def explain(request: Request) -> dict[str, Any]:
            """?source=svc/NAME|workload/NAME&destination=HOST[:PORT][&namespace=NS]
            [&method=GET][&path=/][&header=NAME:VALUE ...][&flags=UH]"""
            from gossamer.explain import ExplainError, ExplainRequest
            from gossamer.explain import explain as run

            q = request.query_params
            for required in ("source", "destination"):
                if not q.get(required):
                    raise HttpError(400, f"{required}: required")
            headers = []
            raw_headers = q.getlist("header")
            if len(raw_headers) > MAX_HEADERS:
                raise HttpError(400, f"header: at most {MAX_HEADERS}")
            for raw in raw_headers:
                name, sep, value = raw.partition(":")
                if not sep or not name.strip() or not name.strip().replace("-", "").isalnum():
                    raise HttpError(400, f"header: expected NAME:VALUE, got {raw!r}")
                headers.append((name.strip().lower(), value.strip()))
            req = ExplainRequest(
                source=q["source"],
                destination=q["destination"],
                namespace=q.get("namespace") or "default",
                method=q.get("method") or "GET",
                path=q.get("path") or "/",
                headers=tuple(headers),
                flags=q.get("flags") or None,
            )
            try:
                return run(controller, req, health)
            except ExplainError as exc:
                raise HttpError(exc.status, exc.message) from None

    return add
