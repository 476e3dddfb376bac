"""A keep-alive HTTP/1.1 load client that counts every failure, as its own process.

    python -m tests.support.loadgen --port P --host benigno:5000 --connections 8 \
        --duration 20 --max-requests 200000 [--path /x] [--proxy]

Each connection sends requests one after the other on one keep-alive connection. Any
non-2xx status, exception, timeout or connection the server closes counts as an error
(the connection is then reopened, and counted). Bodies are JSON from tests.support.proxy
upstreams, so responses are also counted by the server that answered. Prints one JSON
line when done; with --progress FILE it also rewrites FILE once a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any


class Totals:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.connects = 0
        self.statuses: Counter[int] = Counter()
        self.servers: Counter[str] = Counter()
        self.error_kinds: Counter[str] = Counter()
        self.recent: Counter[str] = Counter()  # servers in the last second (progress)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "connects": self.connects,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "servers": dict(self.servers),
            "error_kinds": dict(self.error_kinds),
            "recent": dict(self.recent),
        }


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and b"close" in value.lower():
            close = True
    return status, await reader.readexactly(length), close


async def connection(args: argparse.Namespace, totals: Totals, deadline: float) -> None:
    if args.proxy:
        request = f"GET http://{args.host}{args.path} HTTP/1.1\r\nHost: {args.host}\r\n\r\n"
    else:
        request = f"GET {args.path} HTTP/1.1\r\nHost: {args.host}\r\n\r\n"
    raw = request.encode()
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.monotonic() < deadline and totals.requests < args.max_requests:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
                totals.connects += 1
            assert reader is not None
            writer.write(raw)
            status, body, close = await asyncio.wait_for(read_response(reader), args.timeout)
            totals.requests += 1
            totals.statuses[status] += 1
            if not 200 <= status < 300:
                totals.errors += 1
                totals.error_kinds[f"status {status}: {body[:80]!r}"] += 1
            else:
                try:
                    server = json.loads(body).get("server", "?")
                except ValueError:
                    server = "?"
                totals.servers[server] += 1
                totals.recent[server] += 1
            if close:
                totals.errors += 1
                totals.error_kinds["server closed the connection"] += 1
                writer.close()
                writer = None
        except Exception as exc:  # every failure counts; reconnect and go on
            totals.errors += 1
            totals.error_kinds[type(exc).__name__ + ": " + str(exc)[:80]] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    totals = Totals()
    deadline = time.monotonic() + args.duration
    tasks = [
        asyncio.create_task(connection(args, totals, deadline)) for _ in range(args.connections)
    ]
    while not all(t.done() for t in tasks):
        await asyncio.sleep(1.0)
        if args.progress:
            tmp = Path(args.progress + ".tmp")
            tmp.write_text(json.dumps(totals.as_dict()))
            tmp.replace(args.progress)
            totals.recent.clear()
    await asyncio.gather(*tasks)
    return totals.as_dict()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="svc")
    p.add_argument("--path", default="/")
    p.add_argument("--proxy", action="store_true", help="absolute-form requests")
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--max-requests", type=int, default=500_000)
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--progress")
    return p.parse_args(argv)


if __name__ == "__main__":
    import uvloop

    print(json.dumps(uvloop.run(main(parse()))), flush=True)
