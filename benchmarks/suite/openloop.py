"""Open-loop HTTP/1.1 client: requests at a fixed rate, evenly paced, each latency measured
from its scheduled send time (a stall delays the sends after it and shows in their
latencies instead of being hidden: no coordinated omission).

    python -m benchmarks.suite.openloop --port 8080 --rate 1000 --duration 5

A sender thread sleeps (clock_nanosleep, microsecond precision, unlike event loops'
millisecond timers) until each scheduled time and writes the request on an idle
keep-alive connection, opening a new one when all are busy; a receiver thread waits on
epoll, parses responses (httptools) and records completion times. Prints JSON:
p50/p99/p99.9 in microseconds, requests sent, completed, errors.
"""

from __future__ import annotations

import argparse
import collections
import json
import select
import socket
import sys
import threading
import time
from typing import Any

import httptools

MAX_CONNECTIONS = 512
WARM = 32


class Conn:
    __slots__ = ("inflight", "parser", "sink", "sock")

    def __init__(self, port: int, sink: Any) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sink = sink
        self.inflight = 0.0
        self.parser = httptools.HttpResponseParser(self)

    def on_message_complete(self) -> None:
        self.sink(self)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[i]


def run(port: int, rate: float, duration: float, path: str) -> dict[str, Any]:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    idle: collections.deque[Conn] = collections.deque()
    latencies: list[float] = []
    errors = 0
    ep = select.epoll()
    by_fd: dict[int, Conn] = {}
    lock = threading.Lock()
    sent = 0
    done = threading.Event()

    def complete(conn: Conn) -> None:
        latencies.append(time.perf_counter() - conn.inflight)
        idle.append(conn)

    def receiver() -> None:
        nonlocal errors
        while not done.is_set() or len(latencies) + errors < sent:
            for fd, _ in ep.poll(0.05):
                conn = by_fd.get(fd)
                if conn is None:
                    continue
                try:
                    data = conn.sock.recv(262144)
                    if not data:
                        raise ConnectionError("closed")
                    conn.parser.feed_data(data)
                except (OSError, httptools.HttpParserError):
                    errors += 1
                    ep.unregister(fd)
                    del by_fd[fd]
                    conn.sock.close()
            if done.is_set() and time.perf_counter() > drain_deadline:
                break

    def new_conn() -> Conn:
        conn = Conn(port, complete)
        with lock:
            by_fd[conn.sock.fileno()] = conn
            ep.register(conn.sock.fileno(), select.EPOLLIN)
        return conn

    # Warm connections, each with one exchange done, so that the run pays no connects
    # (nor a proxy's first-request costs, e.g. HAProxy's new server connection per new
    # client connection) unless responses are late enough to need more than WARM.
    warm = [new_conn() for _ in range(WARM)]
    warmed: list[Conn] = []
    for conn in warm:
        conn.sink = warmed.append
        conn.sock.sendall(request)
    for conn in warm:
        conn.sock.settimeout(10)
        while conn not in warmed:
            data = conn.sock.recv(262144)
            if not data:
                raise SystemExit("warm-up: connection closed")
            conn.parser.feed_data(data)
        conn.sock.settimeout(None)
        conn.sink = complete
        idle.append(conn)
    drain_deadline = float("inf")
    thread = threading.Thread(target=receiver, daemon=True)
    thread.start()
    n = int(rate * duration)
    interval = 1.0 / rate
    start = time.perf_counter() + 0.05
    for i in range(n):
        due = start + i * interval
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        if idle:
            conn = idle.popleft()
        elif len(by_fd) < MAX_CONNECTIONS:
            conn = new_conn()
        else:
            errors += 1  # every connection busy: counted as a failure, not waited for
            continue
        conn.inflight = due
        try:
            conn.sock.sendall(request)
            sent += 1
        except OSError:
            errors += 1
    drain_deadline = time.perf_counter() + 5.0
    done.set()
    thread.join(10)
    us = sorted(v * 1e6 for v in latencies)
    return {
        "p50": percentile(us, 0.50),
        "p99": percentile(us, 0.99),
        "p999": percentile(us, 0.999),
        "max": us[-1] if us else 0.0,
        "sent": sent,
        "completed": len(us),
        "errors": errors,
        "connections": len(by_fd),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--path", default="/")
    args = parser.parse_args()
    print(json.dumps(run(args.port, args.rate, args.duration, args.path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
