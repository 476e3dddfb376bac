"""`GET /api/v1/tap`: the live requests of a service or workload, from its sidecars.

The control plane finds the target's connected sidecars (controller.proxies: each
announces its admin address), opens their `/tap` streams (proxy/admin/api.py) and merges
them into one NDJSON response. Bounded: at most `limit` records and `duration` seconds;
a closing line `{"type": "end", "reason": ...}` says why it ended, how many records it
carried and how many were dropped (by a sidecar whose reader fell behind, or here).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from gossamer.controlplane.controller import MeshController, ProxyRecord
from gossamer.controlplane.http.api import HttpError
from gossamer.core.logs import get_logger

log = get_logger("controlplane.tap")

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000
DEFAULT_DURATION = 30.0
MAX_DURATION = 3600.0
MERGE_QUEUE = 1000  # records waiting for a slow reader before they are dropped here
TARGET_KINDS = {"svc": "service", "service": "service", "workload": "workload", "wl": "workload"}


@dataclass(frozen=True)
class Target:
    kind: str  # "service" | "workload" | "all" (every sidecar: `gossamer top`)
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.kind == "all":
            return "the mesh"
        return f"{self.kind} {self.namespace}/{self.name}"


def parse_target(text: str | None, namespace: str, param: str = "target") -> Target:
    """`svc/NAME` or `workload/NAME` (HttpError 400 naming the parameter)."""
    if not text:
        raise HttpError(400, f"{param}: required, e.g. svc/benigno or workload/benigno-v1")
    if text == "all":
        return Target("all", namespace or "default", "")
    prefix, sep, name = text.partition("/")
    if not sep or not name or prefix not in TARGET_KINDS:
        raise HttpError(400, f"{param}: expected svc/NAME or workload/NAME, got {text!r}")
    return Target(TARGET_KINDS[prefix], namespace or "default", name)


def sidecars_of(controller: MeshController, target: Target) -> list[ProxyRecord]:
    """The connected sidecars serving `target`; HttpError 404 when it is unknown or has
    none to ask."""
    registry = controller.translator.snapshot.registry if controller.translator else None
    known = False
    if registry is not None:
        if target.kind == "service":
            known = registry.service(target.namespace, target.name) is not None
        else:
            known = (target.namespace, target.name) in registry.workloads
    found: list[ProxyRecord] = []
    for record in controller.proxies.values():
        node = record.node
        if node.kind == "proxyless":
            continue
        if target.kind == "all":
            hit = True
        elif node.namespace != target.namespace:
            continue
        elif target.kind == "workload":
            hit = node.workload == target.name
        else:
            hit = node.service == target.name or _selected(controller, node.workload, target)
        if hit:
            known = True
            if record.streams > 0 and node.admin_port:
                found.append(record)
    if not known and target.kind != "all":
        raise HttpError(404, f"{target} not found")
    if not found:
        raise HttpError(404, f"{target}: no connected sidecar to tap")
    return sorted(found, key=lambda r: r.node.id)


def _selected(controller: MeshController, workload: str, target: Target) -> bool:
    """Does the service's selector pick this workload (benigno-v2 picks version=v2)?"""
    registry = controller.translator.snapshot.registry if controller.translator else None
    if registry is None:
        return False
    svc = registry.service(target.namespace, target.name)
    info = registry.workloads.get((target.namespace, workload))
    if svc is None or info is None or not svc.selector:
        return False
    return all(info.labels.get(k) == v for k, v in svc.selector.items())


def _bounded(value: str | None, name: str, default: float, top: float) -> float:
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise HttpError(400, f"{name}: not a number: {value!r}") from None
    if not 0 < number <= top:
        raise HttpError(400, f"{name}: must be > 0 and <= {top:g}, got {value}")
    return number


@dataclass(frozen=True)
class TapRequest:
    target: Target
    filters: dict[str, str]  # what every sidecar's /tap gets
    limit: int
    duration: float


def tap_request(params: dict[str, str]) -> TapRequest:
    """The query of /api/v1/tap (and /api/v1/top), validated."""
    namespace = params.get("namespace") or "default"
    target = parse_target(params.get("target"), namespace)
    filters: dict[str, str] = {}
    path = params.get("path")
    if path:
        if not path.startswith("/"):
            raise HttpError(400, f"path: must start with '/', got {path!r}")
        filters["path"] = path
    method = params.get("method")
    if method:
        if not method.isalpha():
            raise HttpError(400, f"method: not an HTTP method: {method!r}")
        filters["method"] = method.upper()
    if params.get("authority"):
        filters["authority"] = params["authority"]
    show = (params.get("showHeaders") or "false").lower()
    if show not in ("true", "false"):
        raise HttpError(400, f"showHeaders: expected true or false, got {show!r}")
    filters["showHeaders"] = show
    limit = int(_bounded(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT))
    duration = _bounded(params.get("duration"), "duration", DEFAULT_DURATION, MAX_DURATION)
    return TapRequest(target, filters, max(1, limit), duration)


class Merge:
    """Records from many sidecar streams into one bounded queue."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(MERGE_QUEUE)
        self.dropped = 0
        self.errors: list[str] = []
        self.open = 0

    def put(self, item: dict[str, Any] | None) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            if item is None:  # a source ended: that must get through
                self.queue.get_nowait()
                self.dropped += 1
                self.queue.put_nowait(item)
            else:
                self.dropped += 1

    async def follow(
        self, client: httpx.AsyncClient, record: ProxyRecord, query: dict[str, str]
    ) -> None:
        node = record.node
        url = f"http://{node.address}:{node.admin_port}/tap"
        try:
            async with client.stream("GET", url, params=query) as response:
                if response.status_code != 200:
                    body = (await response.aread()).decode(errors="replace").strip()
                    self.errors.append(f"{node.id}: {response.status_code} {body}")
                    return
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    item = json.loads(line)
                    kind = item.get("type")
                    if kind == "request":
                        item.setdefault("proxy", node.id)
                        self.put(item)
                    elif kind == "dropped":
                        self.dropped += int(item.get("count", 0))
                    elif kind == "error":
                        self.errors.append(f"{node.id}: {item.get('reason')}")
        except (httpx.HTTPError, ValueError) as exc:
            self.errors.append(f"{node.id}: {type(exc).__name__}: {exc}")
        finally:
            self.put(None)


async def merged(
    records: list[ProxyRecord], req: TapRequest
) -> AsyncGenerator[dict[str, Any], None]:
    """The merged stream, ending with the "end" line (cancel it to stop early)."""
    merge = Merge()
    deadline = time.monotonic() + req.duration
    count = 0
    reason = "sources-ended"
    timeout = httpx.Timeout(5.0, read=None)
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        tasks = [asyncio.create_task(merge.follow(client, r, req.filters)) for r in records]
        remaining = len(tasks)
        try:
            while remaining:
                left = deadline - time.monotonic()
                if left <= 0:
                    reason = "duration"
                    break
                try:
                    item = await asyncio.wait_for(merge.queue.get(), left)
                except TimeoutError:
                    reason = "duration"
                    break
                if item is None:
                    remaining -= 1
                    continue
                yield item
                count += 1
                if count >= req.limit:
                    reason = "limit"
                    break
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
    yield {
        "type": "end",
        "reason": reason,
        "count": count,
        "dropped": merge.dropped,
        "proxies": [r.node.id for r in records],
        "errors": merge.errors,
    }


def tap_routes(controller: MeshController) -> Callable[[FastAPI], None]:
    def add(app: FastAPI) -> None:
        @app.get("/api/v1/tap", tags=["observability"])
        async def tap(request: Request) -> StreamingResponse:
            """Live requests of `target` (svc/NAME or workload/NAME), as NDJSON."""
            req = tap_request(dict(request.query_params))
            records = sidecars_of(controller, req.target)

            async def lines() -> AsyncIterator[bytes]:
                # aclosing: a reader that goes away closes the sidecars' streams now,
                # not when the garbage collector finds the generator.
                async with contextlib.aclosing(merged(records, req)) as items:
                    async for item in items:
                        yield json.dumps(item, separators=(",", ":")).encode() + b"\n"

            return StreamingResponse(lines(), media_type="application/x-ndjson")

    return add
