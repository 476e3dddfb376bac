"""Finding the control plane and talking to its REST API."""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gossamer.api.registry import KindInfo

DEFAULT_API = "http://127.0.0.1:5681"


def default_state_dir() -> Path:
    if env := os.environ.get("GOSSAMER_STATE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gossamer"


class CliError(Exception):
    """A failure to report as one line on stderr, exit code 1."""


@dataclass
class Target:
    api: str
    token: str | None
    ca_bundle: str | None = None  # verify an https API with this (else the system's)


def find_target(cp: str | None, token: str | None, state_dir: Path | None) -> Target:
    """Flag, then environment, then the state dir of a control plane on this machine."""
    state = state_dir or default_state_dir()
    api = cp or os.environ.get("GOSSAMER_CP")
    if not api:
        try:
            api = json.loads((state / "controlplane.json").read_text())["api"]
        except (OSError, ValueError, KeyError):
            api = DEFAULT_API
    bundle = os.environ.get("GOSSAMER_CA_BUNDLE")
    if not bundle:
        try:
            bundle = json.loads((state / "controlplane.json").read_text()).get("caBundle")
        except (OSError, ValueError):
            bundle = None
    tok = token or os.environ.get("GOSSAMER_TOKEN")
    if not tok:
        try:
            tok = (state / "admin.token").read_text().strip() or None
        except OSError:
            tok = None
    return Target(api.rstrip("/"), tok, bundle)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:200]}"
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return f"HTTP {response.status_code}"


def resource_path(info: KindInfo, namespace: str | None, name: str | None = None) -> str:
    plural = info.plural if _unique_plural(info) else f"{info.plural}.{info.group}"
    if info.namespaced and namespace:
        base = f"/api/v1/namespaces/{namespace}/{plural}"
    else:
        base = f"/api/v1/{plural}"
    return f"{base}/{name}" if name else base


def _unique_plural(info: KindInfo) -> bool:
    from gossamer.api.registry import kinds_named

    return len(kinds_named(info.kind)) == 1


class Client:
    def __init__(self, target: Target, timeout: float = 30.0) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=target.ca_bundle) if target.ca_bundle else True
        )
        self._http = httpx.Client(
            base_url=target.api, headers=headers, timeout=timeout, verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise CliError(
                f"cannot reach the control plane at {self.target.api} "
                "(is `gossamer controlplane run` running? set --cp or GOSSAMER_CP)"
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to {self.target.api} failed: {exc}") from None
        if response.status_code >= 400:
            raise ApiError(response.status_code, _message(response), _details(response))
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def apply(self, documents: list[dict[str, Any]], source: str, dry_run: bool) -> Any:
        return self.request(
            "POST",
            "/api/v1/apply",
            params={"dryRun": "true"} if dry_run else None,
            json={"documents": documents, "source": source},
        )

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(self, path: str, **params: Any) -> Iterator[tuple[str, str]]:
        """Server-sent events as (event, data) pairs."""
        try:
            with self._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, _message(response), None)
                event, data = "message", list[str]()
                for line in response.iter_lines():
                    if not line:
                        if data:
                            yield event, "\n".join(data)
                        event, data = "message", list[str]()
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
        except httpx.ConnectError:
            raise CliError(f"cannot reach the control plane at {self.target.api}") from None

    def ndjson(self, endpoint: str, /, **params: Any) -> Iterator[dict[str, Any]]:
        """A streamed NDJSON response, object by object (tap)."""
        query = {k: v for k, v in params.items() if v is not None}
        try:
            with self._http.stream("GET", endpoint, params=query, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiError(response.status_code, _message(response), _details(response))
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.ConnectError:
            raise CliError(f"cannot reach the control plane at {self.target.api}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"stream from {self.target.api} failed: {exc}") from None


class ApiError(CliError):
    def __init__(self, status: int, message: str, details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.details = details


def _details(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("details") if isinstance(body, dict) else None
