"""The built-in collector's API: Zipkin v2 spans in, recent traces out.

POST /api/v2/spans                       Zipkin v2 JSON array (the path Zipkin uses, so
                                         any Zipkin exporter can send here); 202
GET  /api/v1/traces[?service=S][&limit]  summaries, newest first
GET  /api/v1/traces/{traceId}            one trace's spans, oldest first; 404 if unknown
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gossamer.controlplane.collector import SpanError, TraceStore
from gossamer.controlplane.http.api import SPANS_PATH, HttpError

MAX_BODY = 16 * 1024 * 1024


def trace_routes(store: TraceStore) -> Callable[[FastAPI], None]:
    def add(app: FastAPI) -> None:
        @app.post(SPANS_PATH, tags=["traces"], status_code=202)
        async def post_spans(request: Request) -> JSONResponse:
            raw = await request.body()
            if len(raw) > MAX_BODY:
                raise HttpError(413, f"at most {MAX_BODY} bytes of spans per request")
            try:
                payload = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise HttpError(400, f"request body is not valid JSON: {exc}") from None
            try:
                count = store.add(payload)
            except SpanError as exc:
                raise HttpError(400, str(exc)) from None
            return JSONResponse({"accepted": count}, status_code=202)

        @app.get("/api/v1/traces", tags=["traces"])
        async def list_traces(service: str | None = None, limit: int = 50) -> dict[str, Any]:
            if not 1 <= limit <= 1000:
                raise HttpError(400, f"limit: must be between 1 and 1000, got {limit}")
            return {"items": store.list(service, limit)}

        @app.get("/api/v1/traces/{trace_id}", tags=["traces"])
        async def get_trace(trace_id: str) -> dict[str, Any]:
            trace = store.get(trace_id)
            if trace is None:
                raise HttpError(404, f"trace {trace_id!r} not found (unknown or expired)")
            return trace

    return add
