"""Micro-benchmark: ``python -m gossamer.protocols.http1.bench [-n N] [--backend NAME]``.

Feeds N keep-alive messages one read at a time (as a proxy sees them) and prints the cost
per message in microseconds, for each backend:

* ``parse``      request parsing alone (head + body events);
* ``parse+ser``  parsing plus the upstream head (x-forwarded-for, x-forwarded-proto,
  x-request-id added);
* ``resp``       response parsing plus the head for the client.

Three request shapes: ``wrk`` (GET, Host only), ``client`` (a library's GET with
User-Agent, Accept, Connection: keep-alive...), ``post`` (JSON POST with a 64-byte body).
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

from gossamer.protocols.http1 import (
    BACKENDS,
    RequestHead,
    ResponseHead,
    build_request_head,
    build_response_head,
    request_parser,
    response_parser,
)

REQUESTS: dict[str, bytes] = {
    "wrk": b"GET /hello HTTP/1.1\r\nHost: benigno:5000\r\n\r\n",
    "client": (
        b"GET /api/items?id=42 HTTP/1.1\r\n"
        b"Host: benigno:5000\r\n"
        b"User-Agent: python-requests/2.31.0\r\n"
        b"Accept-Encoding: gzip, deflate\r\n"
        b"Accept: */*\r\n"
        b"Connection: keep-alive\r\n"
        b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n"
    ),
    "post": (
        b"POST /api/items HTTP/1.1\r\n"
        b"Host: benigno:5000\r\n"
        b"User-Agent: curl/7.88.1\r\n"
        b"Accept: */*\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 64\r\n\r\n"
        + b'{"name": "gossamer", "kind": "mesh", "x": "'
        + b"x" * 19
        + b'"}'
    ),
}
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"server: uvicorn\r\n"
    b"content-length: 12\r\n"
    b"content-type: text/plain; charset=utf-8\r\n\r\n"
    b"hello world\n"
)


class _Sink:
    """Keeps the last head and counts bytes, like a proxy would touch them."""

    def __init__(self) -> None:
        self.head: RequestHead | None = None
        self.rhead: ResponseHead | None = None
        self.body = 0
        self.done = 0

    def on_request_head(self, head: RequestHead) -> None:
        self.head = head

    def on_interim_response(self, head: ResponseHead) -> None:
        pass

    def on_response_head(self, head: ResponseHead) -> None:
        self.rhead = head

    def on_body(self, data: bytes) -> None:
        self.body += len(data)

    def on_message_complete(self) -> None:
        self.done += 1

    def on_upgrade(self, data: bytes) -> None:
        pass


def _time(fn: Callable[[int], None], n: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t)
    return best / n * 1e6


def bench_parse(backend: str, raw: bytes, n: int, serialise: bool) -> float:
    sink = _Sink()
    parser = request_parser(sink, backend)
    feed = parser.feed

    def run(n: int) -> None:
        for _ in range(n):
            feed(raw)
            if serialise:
                head = sink.head
                assert head is not None
                head.request_id = None  # the same head object is not reused in real life
                build_request_head(head, client_addr=b"10.0.0.7", proto=b"http")

    run(100)
    return _time(run, n)


def bench_response(backend: str, n: int) -> float:
    sink = _Sink()
    parser = response_parser(sink, backend)
    feed = parser.feed
    expect = parser.expect_response

    def run(n: int) -> None:
        for _ in range(n):
            expect(b"GET")
            feed(RESPONSE)
            head = sink.rhead
            assert head is not None
            build_response_head(head)

    run(100)
    return _time(run, n)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("-n", type=int, default=50_000, help="messages per measurement")
    ap.add_argument("--backend", choices=BACKENDS, action="append")
    args = ap.parse_args(argv)
    backends = args.backend or list(BACKENDS)
    print(f"µs per message, best of 5 x {args.n} (one read per message, keep-alive)")
    print(f"{'backend':<10} {'shape':<8} {'parse':>7} {'parse+ser':>10}")
    for backend in backends:
        for shape, raw in REQUESTS.items():
            p = bench_parse(backend, raw, args.n, False)
            ps = bench_parse(backend, raw, args.n, True)
            print(f"{backend:<10} {shape:<8} {p:7.2f} {ps:10.2f}")
        print(f"{backend:<10} {'resp':<8} {'':>7} {bench_response(backend, args.n):10.2f}")


if __name__ == "__main__":
    main()
