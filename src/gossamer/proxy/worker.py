"""An extra data-path process: `python -m gossamer.proxy.worker --fd N --index I`.

Started by the main sidecar process (proxy/workers.py), which sends it configs and asks
it for stats over the inherited socket `--fd`. Imports no grpc and no protobuf: its
memory is the interpreter, uvloop, httptools and the data path. It exits when told to,
on SIGTERM (after draining), or when the main process goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import signal
import socket
import sys
from typing import Any

from gossamer.core.logs import configure, get_logger
from gossamer.proxy.filters import tap
from gossamer.proxy.filters.stats import Stats
from gossamer.proxy.io.channel import Channel
from gossamer.proxy.runtime import Runtime

log = get_logger("proxy.worker")
ORPHAN_DRAIN = 5.0  # the main process died: finish what is in flight, briefly


class Worker:
    def __init__(self, index: int, header_timeout: float, request_metrics: bool = True) -> None:
        self.index = index
        self.runtime = Runtime(
            Stats(), header_timeout=header_timeout, worker=index, request_metrics=request_metrics
        )
        self.channel: Channel | None = None
        self.done = asyncio.Event()
        self._exiting = False
        self._latest: tuple[int, bytes] | None = None
        self._wake = asyncio.Event()
        self._taps: dict[int, tap.Batcher] = {}

    async def run(self, fd: int) -> None:
        sock = socket.socket(fileno=fd)
        self.channel = await Channel.open(sock, self._on_message, self._on_close)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._exit, 10.0)
        # Ctrl-C reaches the whole process group: the main process decides for us.
        loop.add_signal_handler(signal.SIGINT, lambda: None)
        self.runtime.start()
        applier = loop.create_task(self._apply_loop())
        await self.done.wait()
        applier.cancel()

    async def _apply_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._latest is None:
                continue
            generation, blob = self._latest
            self._latest = None
            try:
                await self.runtime.apply(pickle.loads(blob))
            except Exception:
                log.error("applying a config failed", worker=self.index, exc_info=True)
                continue
            if self.channel is not None:
                self.channel.send(("applied", generation, dict(self.runtime.listener_errors)))

    def _on_message(self, message: Any) -> None:
        kind = message[0]
        if kind == "config":
            # Only the newest matters if several arrive while one is being applied.
            self._latest = (message[1], message[2])
            self._wake.set()
        elif kind == "stats":
            self._reply(message[1], self.runtime.stats.snapshot())
        elif kind == "listeners":
            self._reply(message[1], self.runtime.describe())
        elif kind == "tap":
            self._tap(message[1], message[2], message[3])
        elif kind == "untap":
            batcher = self._taps.pop(message[1], None)
            if batcher is not None:
                batcher.close()
            tap.tapper.remove(message[1])
        elif kind == "drain":
            self.runtime.drain()
        elif kind == "exit":
            self._exit(float(message[1]))

    def _tap(self, sub_id: int, filter: dict[str, Any], me: dict[str, Any]) -> None:
        def send(records: list[dict[str, Any]], dropped: int) -> None:
            channel = self.channel
            if channel is None:
                return
            transport = channel.transport
            if transport is not None and transport.get_write_buffer_size() > tap.CHANNEL_LIMIT:
                batcher.dropped += len(records) + dropped  # the main process is behind
                return
            channel.send(("tapped", sub_id, records, dropped))

        batcher = tap.Batcher(send)
        self._taps[sub_id] = batcher
        tap.tapper.me = tap.Identity(**me)
        tap.tapper.add(tap.Subscription(sub_id, tap.TapFilter.from_dict(filter), batcher.deliver))

    def _reply(self, request_id: int, payload: Any) -> None:
        if self.channel is not None:
            self.channel.send(("reply", request_id, payload))

    def _on_close(self) -> None:
        if not self._exiting:
            log.warning("main process gone; draining", worker=self.index)
            self._exit(ORPHAN_DRAIN)

    def _exit(self, timeout: float) -> None:
        if self._exiting:
            return
        self._exiting = True
        asyncio.get_running_loop().create_task(self._shutdown(timeout))

    async def _shutdown(self, timeout: float) -> None:
        await self.runtime.shutdown(timeout)
        if self.channel is not None:
            self.channel.close()
        self.done.set()


def main(argv: list[str] | None = None) -> None:
    # Not argparse: it costs a worker 0.4 MiB, and the only caller is proxy/workers.py.
    args = sys.argv[1:] if argv is None else argv
    options = dict(zip(args[::2], args[1::2], strict=False))
    configure(options.get("--log-level", "info"))
    import uvloop

    worker = Worker(
        int(options["--index"]),
        float(options.get("--header-timeout", 10.0)),
        options.get("--request-metrics", "on") != "off",
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(worker.run(int(options["--fd"])))


if __name__ == "__main__":
    main()
