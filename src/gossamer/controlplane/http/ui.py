"""The dashboard's files: `/` (the page) and `/ui/...` (its scripts, styles and libraries).

Our own files ship in the package (static/). The browser libraries (charts, graph layout,
YAML) are installed from npm by `make web` into web/node_modules at the repository root,
never copied into the repo; they are served from there, or from $GOSSAMER_UI_MODULES.
Each is optional: without them the pages show tables instead of charts and graphs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

from gossamer.controlplane.http.api import HttpError

# Served name → file under node_modules. Only these are reachable.
VENDOR = {
    "uplot.js": "uplot/dist/uPlot.iife.min.js",
    "uplot.css": "uplot/dist/uPlot.min.css",
    "cytoscape.js": "cytoscape/dist/cytoscape.min.js",
    "js-yaml.js": "js-yaml/dist/browser/js-yaml.umd.min.js",
}
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Our assets change with the code: revalidate every time (cheap on loopback).
HEADERS = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}


def modules_dir() -> Path:
    """Where `make web` installed the libraries (src/gossamer/controlplane/http → repo)."""
    env = os.environ.get("GOSSAMER_UI_MODULES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[4] / "web" / "node_modules"


def vendor_available() -> dict[str, bool]:
    root = modules_dir()
    return {name: (root / rel).is_file() for name, rel in VENDOR.items()}


def _static(name: str) -> bytes | None:
    node = files("gossamer.controlplane.http").joinpath("static")
    for part in name.split("/"):
        if not part or part.startswith("."):
            return None
        node = node.joinpath(part)
    return node.read_bytes() if node.is_file() else None


def _typed(name: str, body: bytes) -> Response:
    suffix = name[name.rfind(".") :] if "." in name else ""
    return Response(body, media_type=TYPES.get(suffix, "application/octet-stream"), headers=HEADERS)


def ui_routes() -> Callable[[FastAPI], None]:
    def add(app: FastAPI) -> None:
        @app.get("/ui/vendor/{name}", include_in_schema=False)
        async def vendor(name: str) -> Response:
            rel = VENDOR.get(name)
            if rel is None:
                raise HttpError(404, f"no library {name!r} (known: {', '.join(sorted(VENDOR))})")
            path = modules_dir() / rel
            if not path.is_file():
                raise HttpError(404, f"{name}: not installed (run `make web`)")
            return _typed(name, path.read_bytes())

        @app.get("/ui/{name:path}", include_in_schema=False)
        async def asset(name: str) -> Response:
            body = _static(name)
            if body is None:
                raise HttpError(404, f"no dashboard file {name!r}")
            return _typed(name, body)

    return add
