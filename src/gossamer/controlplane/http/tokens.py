"""`/api/v1/tokens` (admin only): create (the token is shown once), list, revoke."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request

from gossamer.controlplane.auth import TokenAuthority
from gossamer.controlplane.http.api import HttpError


def _admin(request: Request) -> None:
    principal = getattr(request.state, "principal", None)
    if principal is None or principal.role != "admin":
        raise HttpError(403, "tokens are managed with an admin token")


def token_routes(tokens: TokenAuthority) -> Callable[[FastAPI], None]:
    def add(app: FastAPI) -> None:
        @app.post("/api/v1/tokens", tags=["tokens"])
        async def create(request: Request) -> dict[str, Any]:
            _admin(request)
            try:
                body = await request.json()
            except ValueError:
                raise HttpError(400, "request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise HttpError(400, "expected an object: {role, service, namespace, name}")
            try:
                record, token = tokens.store.create(
                    str(body.get("role") or "dataplane"),
                    str(body.get("name") or ""),
                    str(body.get("service") or ""),
                    str(body.get("namespace") or "default"),
                )
            except ValueError as exc:
                raise HttpError(422, f"token: {exc}") from None
            return {**record.public(), "token": token}

        @app.get("/api/v1/tokens", tags=["tokens"])
        async def list_tokens(request: Request) -> dict[str, Any]:
            _admin(request)
            return {"kind": "TokenList", "items": [r.public() for r in tokens.store.list()]}

        @app.delete("/api/v1/tokens/{token_id}", tags=["tokens"])
        async def revoke(token_id: str, request: Request) -> dict[str, Any]:
            _admin(request)
            try:
                return tokens.store.revoke(token_id).public()
            except KeyError:
                raise HttpError(404, f"token {token_id!r} not found") from None

    return add
