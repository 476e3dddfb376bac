"""tcp-echo: each line received is echoed back prefixed with the version
(`one is my version` for input `is my version` on v1, `two ...` on v2)."""

from __future__ import annotations

import asyncio
import os
import signal

NAMES = {"v1": "one", "v2": "two"}


async def main() -> None:
    prefix = NAMES.get(os.environ.get("VERSION", "v1"), os.environ.get("VERSION", "v1"))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(f"{prefix} ".encode() + line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "9000"))
    server = await asyncio.start_server(handle, host, port)
    print(f"tcp-echo {prefix} listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
