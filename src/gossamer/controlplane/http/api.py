"""The REST API (FastAPI): resources CRUD, apply, watch, health.

Paths follow Kubernetes' shape so kubectl habits carry over:
  GET    /api/v1/{plural}                               all namespaces
  GET    /api/v1/namespaces/{ns}/{plural}               one namespace
  GET|PUT|DELETE /api/v1/namespaces/{ns}/{plural}/{name}
  GET|PUT|DELETE /api/v1/{plural}/{name}                cluster-scoped kinds (Mesh)
  POST   /api/v1/apply                                  many documents, one transaction
  GET    /api/v1/watch?fromRevision=N                   server-sent events
`{plural}` may be any name the CLI accepts (plural, kind, short name, `kind.group`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gossamer import __version__
from gossamer.api.errors import ApplyError, ResourceError
from gossamer.api.loader import load_documents, parse_resource, parse_resources
from gossamer.api.registry import KindInfo, UnknownKind, all_kinds, resolve
from gossamer.controlplane.auth import Principal, TokenAuthority
from gossamer.controlplane.store import BaseStore, Compacted, ObjectKey, StoreError
from gossamer.core.logs import get_logger
from gossamer.core.selectors import Selector

log = get_logger("controlplane.api")

ReadAccess = Literal["loopback", "token"]
# The built-in trace collector (http/traces.py): the one path data-plane tokens may use.
SPANS_PATH = "/api/v2/spans"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class ApiContext:
    store: BaseStore
    tokens: TokenAuthority
    # "loopback": reads from 127.0.0.0/8 need no token; "token": every request needs one.
    read_access: ReadAccess = "loopback"
    ready: Callable[[], bool] = lambda: True
    heartbeat_seconds: float = 15.0
    extra_routes: list[Callable[[FastAPI], None]] = field(default_factory=list)


class HttpError(Exception):
    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def _error(status: int, message: str, details: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message, "status": status}
    if details is not None:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _loopback(request: Request) -> bool:
    return _is_loopback(request.client.host if request.client else None)


def _kind(name: str) -> KindInfo:
    try:
        return resolve(name)
    except UnknownKind as exc:
        raise HttpError(404, str(exc)) from None


def _list_body(items: list[dict[str, Any]], revision: int) -> dict[str, Any]:
    return {"kind": "List", "metadata": {"resourceVersion": str(revision)}, "items": items}


async def _read_documents(request: Request) -> tuple[list[dict[str, Any]], str]:
    raw = await request.body()
    source = request.headers.get("x-gossamer-source", "")
    ctype = request.headers.get("content-type", "")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HttpError(400, "request body is not UTF-8") from None
    if "json" in ctype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise HttpError(400, f"request body is not valid JSON: {exc}") from None
        if isinstance(data, dict) and "documents" in data:
            docs = data["documents"]
            source = str(data.get("source") or source)
            if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
                raise HttpError(400, "`documents` must be a list of objects")
            return docs, source
    try:
        return load_documents(text, source), source
    except ApplyError as exc:
        raise HttpError(422, str(exc), exc.to_dict()) from None


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="Gossamer control plane",
        version=__version__,
        description="Resources, apply and watch. Writes need `Authorization: Bearer <token>`.",
    )
    store = ctx.store

    @app.middleware("http")
    async def authorize(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        # The dashboard's page and files hold no data: its API calls are authorized.
        if path in ("/healthz", "/readyz", "/") or path.startswith("/ui/"):
            return await call_next(request)
        header = request.headers.get("authorization")
        principal = ctx.tokens.authenticate(header)
        if header and principal is None:
            # Credentials that do not verify (unknown, malformed, revoked) are refused,
            # not taken for anonymous.
            return _error(401, "the bearer token is not valid (unknown or revoked)")
        if path == SPANS_PATH and request.method == "POST":
            # The built-in trace collector: sidecars post spans with their data-plane
            # token; loopback clients may too when reads need none (any Zipkin exporter).
            if principal is None and (ctx.read_access == "token" or not _loopback(request)):
                return _error(401, "posting spans needs a bearer token from this address")
            request.state.principal = principal or Principal("anonymous", "reader")
            return await call_next(request)
        if principal is not None and principal.role == "dataplane":
            return _error(403, f"token {principal.name!r} is a data-plane token: xDS only")
        if request.method in WRITE_METHODS:
            if principal is None:
                return _error(401, "this request needs a bearer token (see `gossamer --help`)")
            if principal.role != "admin":
                return _error(403, f"token {principal.name!r} may only read")
        elif principal is None and (ctx.read_access == "token" or not _loopback(request)):
            return _error(401, "reads need a bearer token from this address")
        request.state.principal = principal or Principal("anonymous", "reader")
        return await call_next(request)

    @app.exception_handler(HttpError)
    async def http_error(_: Request, exc: HttpError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.details)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = files("gossamer.controlplane.http").joinpath("static/index.html").read_bytes()
        return Response(
            page, media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"}
        )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        if ctx.ready():
            return JSONResponse({"status": "ready"})
        return _error(503, "not ready")

    @app.get("/api/v1/version", tags=["meta"])
    async def version() -> dict[str, Any]:
        return {"version": __version__, "revision": store.revision()}

    @app.get("/api/v1/kinds", tags=["meta"])
    async def kinds() -> list[dict[str, Any]]:
        return [
            {
                "group": k.group,
                "kind": k.kind,
                "versions": list(k.versions),
                "apiVersion": k.preferred_api_version,
                "plural": k.plural,
                "shortNames": list(k.short_names),
                "namespaced": k.namespaced,
            }
            for k in all_kinds()
        ]

    # Other subsystems' routes (proxies, metrics, dashboard) go before the generic
    # /api/v1/{plural} routes, which would otherwise capture them.
    for add_routes in ctx.extra_routes:
        add_routes(app)

    @app.get("/api/v1/watch", tags=["resources"])
    async def watch(
        fromRevision: int | None = None, kind: str | None = None, namespace: str | None = None
    ) -> StreamingResponse:
        """Server-sent events after `fromRevision` (list first, then watch from its revision).
        A revision that was compacted answers 410: list again."""
        info = _kind(kind) if kind else None
        start = store.revision() if fromRevision is None else fromRevision
        try:
            stream = store.watch(start)
        except Compacted as exc:
            raise HttpError(410, str(exc)) from None

        async def events() -> AsyncIterator[bytes]:
            try:
                yield f": watching from revision {start}\n\n".encode()
                while True:
                    try:
                        event = await stream.next(timeout=ctx.heartbeat_seconds)
                    except Compacted as exc:
                        yield f"event: ERROR\ndata: {json.dumps({'error': str(exc)})}\n\n".encode()
                        return
                    if event is None:
                        yield b": heartbeat\n\n"
                        continue
                    if info and (event.key.group, event.key.kind) != (info.group, info.kind):
                        continue
                    if namespace and event.key.namespace != namespace:
                        continue
                    data = json.dumps(event.to_dict(), separators=(",", ":"))
                    yield f"id: {event.revision}\nevent: {event.type}\ndata: {data}\n\n".encode()
            finally:
                stream.close()

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    @app.post("/api/v1/apply", tags=["resources"])
    async def apply(request: Request, dryRun: bool = False) -> dict[str, Any]:
        """Validate every document, then store all of them in one transaction, or none."""
        docs, source = await _read_documents(request)
        if not docs:
            raise HttpError(400, "no documents to apply")
        try:
            resources = parse_resources(docs, source)
        except ApplyError as exc:
            log.info("apply refused", source=source, errors=len(exc.errors))
            raise HttpError(422, str(exc), exc.to_dict()) from None
        results = await asyncio.to_thread(store.apply, resources, dryRun)
        for r in results:
            if r.action != "unchanged" and not dryRun:
                log.info("resource applied", resource=r.key.ref, action=r.action)
        return {
            "dryRun": dryRun,
            "results": [
                {
                    "resource": r.key.ref,
                    "kind": r.key.kind,
                    "namespace": r.key.namespace,
                    "name": r.key.name,
                    "action": r.action,
                    "resourceVersion": r.document["metadata"].get("resourceVersion"),
                }
                for r in results
            ],
            "revision": store.revision(),
        }

    def list_objects(
        plural: str, namespace: str | None, label_selector: str | None
    ) -> dict[str, Any]:
        info = _kind(plural)
        selector = None
        if label_selector:
            try:
                selector = Selector.parse(label_selector)
            except ValueError as exc:
                raise HttpError(400, f"labelSelector: {exc}") from None
        items, revision = store.list(
            info.group, info.kind, namespace if info.namespaced else None, selector
        )
        return _list_body(items, revision)

    @app.get("/api/v1/namespaces/{namespace}/{plural}", tags=["resources"])
    def list_namespaced(
        namespace: str, plural: str, labelSelector: str | None = None
    ) -> dict[str, Any]:
        return list_objects(plural, namespace, labelSelector)

    @app.get("/api/v1/{plural}", tags=["resources"])
    def list_all(
        plural: str, namespace: str | None = None, labelSelector: str | None = None
    ) -> dict[str, Any]:
        return list_objects(plural, namespace, labelSelector)

    def object_key(plural: str, namespace: str, name: str) -> tuple[KindInfo, ObjectKey]:
        info = _kind(plural)
        return info, ObjectKey(info.group, info.kind, namespace if info.namespaced else "", name)

    def get_object(plural: str, namespace: str, name: str) -> dict[str, Any]:
        _, key = object_key(plural, namespace, name)
        doc = store.get(key)
        if doc is None:
            raise HttpError(404, f"{key.ref} not found")
        return doc

    @app.get("/api/v1/namespaces/{namespace}/{plural}/{name}", tags=["resources"])
    def get_namespaced(namespace: str, plural: str, name: str) -> dict[str, Any]:
        return get_object(plural, namespace, name)

    @app.get("/api/v1/{plural}/{name}", tags=["resources"])
    def get_cluster(plural: str, name: str) -> dict[str, Any]:
        return get_object(plural, "", name)

    async def put_object(request: Request, plural: str, namespace: str, name: str) -> Any:
        info, key = object_key(plural, namespace, name)
        docs, source = await _read_documents(request)
        if len(docs) != 1:
            raise HttpError(400, f"PUT takes exactly one object, got {len(docs)}")
        try:
            resource = parse_resource(docs[0], 1, source)
        except ResourceError as exc:
            raise HttpError(422, str(exc), ApplyError([exc]).to_dict()) from None
        if (resource.GROUP, resource.KIND, resource.namespace, resource.name) != tuple(key):
            raise HttpError(
                400, f"body is {resource.ref} but the path names {key.ref} ({info.qualified})"
            )
        [result] = store.apply([resource])
        log.info("resource applied", resource=key.ref, action=result.action)
        return JSONResponse(result.document, status_code=201 if result.action == "created" else 200)

    @app.put("/api/v1/namespaces/{namespace}/{plural}/{name}", tags=["resources"])
    async def put_namespaced(request: Request, namespace: str, plural: str, name: str) -> Any:
        return await put_object(request, plural, namespace, name)

    @app.put("/api/v1/{plural}/{name}", tags=["resources"])
    async def put_cluster(request: Request, plural: str, name: str) -> Any:
        return await put_object(request, plural, "", name)

    def delete_object(
        plural: str, namespace: str, name: str, resource_version: str | None
    ) -> dict[str, Any]:
        _, key = object_key(plural, namespace, name)
        doc = store.delete(key, resource_version)
        log.info("resource deleted", resource=key.ref)
        return doc

    @app.delete("/api/v1/namespaces/{namespace}/{plural}/{name}", tags=["resources"])
    def delete_namespaced(
        namespace: str, plural: str, name: str, resourceVersion: str | None = None
    ) -> dict[str, Any]:
        return delete_object(plural, namespace, name, resourceVersion)

    @app.delete("/api/v1/{plural}/{name}", tags=["resources"])
    def delete_cluster(
        plural: str, name: str, resourceVersion: str | None = None
    ) -> dict[str, Any]:
        return delete_object(plural, "", name, resourceVersion)

    return app
