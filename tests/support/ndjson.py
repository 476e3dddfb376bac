"""Reading a streamed NDJSON response (tap) from a thread, for tests.

A raw socket rather than an HTTP client: `close()` must end the stream at once, as a
user's Ctrl-C does (shutting the socket down unblocks the reading thread).
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from typing import Any
from urllib.parse import urlencode, urlsplit

from tests.support.wait import wait_for


class StreamReader:
    """GET `url` (HTTP/1.1, chunked) and collect its NDJSON lines until `close()`."""

    def __init__(self, url: str, params: dict[str, Any] | None = None) -> None:
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.status = 0
        self.body = ""  # of a response that is not 200
        self.done = threading.Event()
        parts = urlsplit(url)
        target = parts.path + ("?" + urlencode(params, doseq=True) if params else "")
        self.sock = socket.create_connection((parts.hostname or "", parts.port or 80), 5)
        self.sock.settimeout(None)
        host = parts.netloc
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait_for(lambda: self.status or self.done.is_set(), 10, message=f"response of {url}")

    def _run(self) -> None:
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                data = self.sock.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            self.status = int(head.split(b" ", 2)[1])
            chunked = b"transfer-encoding: chunked" in head.lower()
            text = b""
            while True:
                if chunked:
                    while b"\r\n" in buf:
                        size_line, rest = buf.split(b"\r\n", 1)
                        size = int(size_line, 16)
                        if len(rest) < size + 2:
                            break
                        text += rest[:size]
                        buf = rest[size + 2 :]
                        if size == 0:
                            return
                else:
                    text, buf = text + buf, b""
                while b"\n" in text:
                    line, text = text.split(b"\n", 1)
                    if line.strip():
                        self.lines.put(json.loads(line))
                if self.status != 200:
                    self.body = text.decode(errors="replace")
                data = self.sock.recv(65536)
                if not data:
                    return
                buf += data
        except OSError:
            return
        finally:
            self.done.set()

    def collect(self) -> list[dict[str, Any]]:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return self.seen

    def requests(self) -> list[dict[str, Any]]:
        return [r for r in self.collect() if r.get("type") == "request"]

    def wait(self, condition: Any, timeout: float = 10.0, message: str = "tap lines") -> Any:
        return wait_for(lambda: condition(self.collect()), timeout, message=message)

    def wait_done(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        wait_for(self.done.is_set, timeout, message="the stream to end")
        return self.collect()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(5)
