"""A tiny threaded HTTP server for the demo apps (stdlib only)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Handler = Callable[[str, dict[str, str]], tuple[int, str]]

# What an app forwards from the request it serves to the requests it makes, so the mesh
# can link the hops into one trace (sidecars cannot: they do not know which outgoing
# request belongs to which incoming one). The same list as Istio's.
TRACE_HEADERS = (
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-request-id",
)


def trace_headers(headers: dict[str, str]) -> dict[str, str]:
    """The trace context of an incoming request, to send on with the next call."""
    lower = {k.lower(): v for k, v in headers.items()}
    return {name: lower[name] for name in TRACE_HEADERS if name in lower}


def serve(name: str, routes: dict[str, Handler]) -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8080"))

    class Request(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # small responses must not wait for delayed ACKs

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            handler = routes.get(path)
            if handler is None:
                status, body = 404, f"{name}: no route {path}\n"
            else:
                try:
                    status, body = handler(path, dict(self.headers.items()))
                except Exception as exc:  # a demo app answers 500 rather than dying
                    status, body = 500, f"{name}: {exc}\n"
            data = body.encode()
            reason = self.responses.get(status, ("",))[0]
            head = (
                f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
                f"content-length: {len(data)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + data)  # one write: head and body together

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the sidecar measures every request

    server = ThreadingHTTPServer((host, port), Request)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{name} listening on {host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
