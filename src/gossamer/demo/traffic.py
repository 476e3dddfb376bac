"""Traffic for the demo: keep-alive HTTP or one TCP connection per sample, classified by
backend (which version answered), with latency. Bounded in time and count."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Classifier = Callable[[str], str]


@dataclass
class Window:
    """What the driver saw since the last reset."""

    started: float = field(default_factory=time.monotonic)
    ended: float | None = None  # set when the window is closed
    backends: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    errors: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + self.errors

    def rps(self) -> float:
        elapsed = (self.ended or time.monotonic()) - self.started
        return self.total / elapsed if elapsed > 0 else 0.0

    def success_rate(self) -> float:
        return self.ok / self.total if self.total else 1.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def shares(self) -> dict[str, float]:
        n = sum(self.backends.values())
        return {k: v / n for k, v in self.backends.items()} if n else {}


class Driver:
    """`concurrency` threads sending requests until stopped, at most `max_rate` per second."""

    def __init__(
        self,
        kind: str,
        host: str,
        port: int,
        classify: Classifier,
        path: str = "/",
        concurrency: int = 4,
        max_rate: float = 200.0,
    ) -> None:
        self.kind = kind
        self.host = host
        self.port = port
        # Several paths ("a|b|c"): each thread takes them in turn, so each gets an equal share.
        self.paths = tuple(path.split("|"))
        self.classify = classify
        self.concurrency = concurrency
        self.interval = concurrency / max_rate
        self.window = Window()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for _ in range(self.concurrency):
            t = threading.Thread(target=self._loop, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def reset(self) -> Window:
        with self._lock:
            old, self.window = self.window, Window()
        old.ended = time.monotonic()
        return old

    def _record(self, backend: str | None, latency: float, error: str = "") -> None:
        with self._lock:
            w = self.window
            if backend is None:
                w.errors += 1
                w.error_kinds[error] += 1
            else:
                w.ok += 1
                w.backends[backend] += 1
                w.latencies.append(latency)

    def _loop(self) -> None:
        conn: http.client.HTTPConnection | None = None
        turn = 0
        while not self._stop.is_set():
            path = self.paths[turn % len(self.paths)]
            turn += 1
            began = time.monotonic()
            try:
                if self.kind == "tcp":
                    backend = self._tcp_once()
                else:
                    if conn is None:
                        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                    conn.request("GET", path)
                    response = conn.getresponse()
                    body = response.read().decode(errors="replace")
                    if response.status != 200:
                        raise ValueError(f"HTTP {response.status}")
                    backend = self.classify(body)
                self._record(backend, time.monotonic() - began)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                self._record(None, 0.0, str(exc).split(":")[0][:40] or type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None
            spent = time.monotonic() - began
            if spent < self.interval:
                self._stop.wait(self.interval - spent)
        if conn is not None:
            conn.close()

    def _tcp_once(self) -> str:
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(b"is my version\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(1024)
                if not chunk:
                    raise ValueError("connection closed")
                data += chunk
        return self.classify(data.decode())
