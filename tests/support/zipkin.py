"""A Zipkin-format receiver for tests: `POST /api/v2/spans` collects the spans it gets.

Stands in for an external Zipkin, Jaeger or OpenTelemetry collector (all accept Zipkin
v2 JSON on this path). `delay` holds each answer that long: a slow collector, to show a
full export queue never slows requests.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from tests.support.proxy import _LoopThread


class ZipkinReceiver:
    def __init__(self, delay: float = 0.0, status: int = 202) -> None:
        self.delay = delay
        self.status = status
        self.port = 0
        self.posts = 0
        self.spans: list[dict[str, Any]] = []
        self.authorization: list[str | None] = []
        self._lock = threading.Lock()
        self._thread: _LoopThread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    def start(self) -> ZipkinReceiver:
        self._thread = _LoopThread()
        self._server = self._thread.call(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v2/spans"

    def stop(self) -> None:
        if self._thread is not None and self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()
                for task in list(self._handlers):  # e.g. a slow answer still waiting
                    task.cancel()
                await asyncio.gather(*self._handlers, return_exceptions=True)

            self._thread.call(close())
            self._thread.stop()

    def traces(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            out: dict[str, list[dict[str, Any]]] = {}
            for span in self.spans:
                out.setdefault(span["traceId"], []).append(span)
            return out

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            ok = lines[0].startswith("POST /api/v2/spans ")
            if ok:
                spans = json.loads(body)
                with self._lock:
                    self.posts += 1
                    self.spans.extend(spans)
                    self.authorization.append(headers.get("authorization"))
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.status if ok else 404
            writer.write(
                b"HTTP/1.1 %d X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n" % status
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)
