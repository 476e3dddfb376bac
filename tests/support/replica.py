"""An upstream replica as its own process, so a test can kill it (SIGKILL) for real.

    python -m tests.support.replica --port P --name N [--mode ok|fail|stall]

Modes: ok answers 200 with {"server": N, "attempt": x-gossamer-attempt or null, "body":
sha256 of the request body}; fail answers 500; flaky answers 503 to every other request
(the first, third, ...); stall reads the request and never answers. Control requests (not counted):
GET /__mode/<mode> switches the mode; GET /__stats answers {"requests": n, "modes": {...}}
with the requests received per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections import Counter


class Replica:
    def __init__(self, name: str, mode: str) -> None:
        self.name = name
        self.mode = mode
        self.requests: Counter[str] = Counter()
        self.attempts: Counter[str] = Counter()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                body = b""
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                        chunk = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        body += chunk[:-2]
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    body = await reader.readexactly(length)
                if target.startswith("/__mode/"):
                    self.mode = target.rsplit("/", 1)[1]
                    await self._answer(writer, 200, {"mode": self.mode})
                    continue
                if target == "/__stats":
                    stats = {
                        "requests": sum(self.requests.values()),
                        "modes": dict(self.requests),
                        "attempts": dict(self.attempts),
                    }
                    await self._answer(writer, 200, stats)
                    continue
                self.requests[self.mode] += 1
                attempt = headers.get("x-gossamer-attempt")
                self.attempts[attempt or "1"] += 1
                if self.mode == "stall":
                    await asyncio.Event().wait()  # never answers (until the client leaves)
                status = 500 if self.mode == "fail" else 200
                if self.mode == "flaky" and sum(self.requests.values()) % 2:
                    status = 503
                digest = hashlib.sha256(body).hexdigest()
                answer = {"server": self.name, "attempt": attempt, "body": digest}
                await self._answer(writer, status, answer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        writer.write(
            b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (status, len(data), data)
        )
        await writer.drain()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--mode", default="ok", choices=["ok", "fail", "flaky", "stall"])
    args = parser.parse_args()
    replica = Replica(args.name, args.mode)
    server = await asyncio.start_server(replica.serve, "127.0.0.1", args.port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
