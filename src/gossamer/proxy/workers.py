"""Extra worker processes: more cores for the data path, at a small memory cost each.

The main process holds the xDS client (grpc, protobufs: ~16 MiB) and worker 0's data
path. Workers 1..N-1 are fresh interpreters (`python -m gossamer.proxy.worker`, not forks
of a process that has grpc threads) that import neither grpc nor protobuf. Each binds the
listeners itself with SO_REUSEPORT. The main process sends every new ProxyConfig (pickled
once: the config model is plain frozen dataclasses and dicts) over a socketpair, and asks
the workers for their stats when the admin endpoints need them. A worker that dies is
started again with the current config; a worker whose main process dies drains and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from gossamer.core.logs import get_logger
from gossamer.proxy.config import model as m
from gossamer.proxy.io.channel import Channel

log = get_logger("proxy.workers")

REPLY_TIMEOUT = 2.0
RESPAWN_DELAY = 1.0


class WorkerProcess:
    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: Channel | None = None
        self.applied = 0  # generation of the last config it applied
        self.errors: dict[str, str] = {}
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


class WorkerSupervisor:
    def __init__(
        self,
        count: int,
        log_level: str = "info",
        header_timeout: float = 10.0,
        request_metrics: bool = True,
    ) -> None:
        self.workers = [WorkerProcess(i) for i in range(1, count)]
        self.log_level = log_level
        self.header_timeout = header_timeout
        self.request_metrics = request_metrics
        self.generation = 0
        self._blob: bytes | None = None
        self._ids = itertools.count(1)
        self._stopping = False
        self._draining = False
        # Tap subscriptions: id -> (filter and identity, where their records go).
        self.taps: dict[int, tuple[tuple[Any, ...], Callable[[list[Any], int], None]]] = {}

    async def start(self) -> None:
        for worker in self.workers:
            await self._spawn(worker)

    async def _spawn(self, worker: WorkerProcess) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        args = [
            sys.executable,
            # No docstrings, asserts or column tables: 0.9 MiB less per worker, which
            # never shows a docstring and whose asserts only narrow types.
            "-OO",
            "-X",
            "no_debug_ranges",
            "-m",
            "gossamer.proxy.worker",
            "--fd",
            str(child.fileno()),
            "--index",
            str(worker.index),
            "--log-level",
            self.log_level,
            "--header-timeout",
            str(self.header_timeout),
            "--request-metrics",
            "on" if self.request_metrics else "off",
        ]
        worker.proc = subprocess.Popen(args, pass_fds=(child.fileno(),), close_fds=True)
        child.close()
        worker.started_at = time.monotonic()
        worker.channel = await Channel.open(
            parent,
            lambda message: self._on_message(worker, message),
            lambda: self._on_close(worker),
        )
        if self._blob is not None:
            worker.channel.send(("config", self.generation, self._blob))
        if self._draining:
            worker.channel.send(("drain",))
        for sub_id, (tap_args, _) in self.taps.items():
            worker.channel.send(("tap", sub_id, *tap_args))
        log.debug("worker started", worker=worker.index, pid=worker.pid)

    def _on_message(self, worker: WorkerProcess, message: Any) -> None:
        kind = message[0]
        if kind == "applied":
            _, generation, errors = message
            worker.applied = max(worker.applied, generation)
            worker.errors = errors
        elif kind == "reply":
            _, request_id, payload = message
            future = worker.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(payload)
        elif kind == "tapped":
            _, sub_id, records, dropped = message
            tap = self.taps.get(sub_id)
            if tap is not None:
                tap[1](records, dropped)

    def _on_close(self, worker: WorkerProcess) -> None:
        worker.channel = None
        for future in worker.pending.values():
            if not future.done():
                future.set_result(None)
        worker.pending.clear()
        if self._stopping:
            return
        code = worker.proc.poll() if worker.proc is not None else None
        log.warning("worker exited; starting it again", worker=worker.index, exit_code=code)
        worker.applied = 0
        asyncio.get_running_loop().create_task(self._respawn(worker))

    async def _respawn(self, worker: WorkerProcess) -> None:
        if worker.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(worker.proc.wait, 5.0)
        await asyncio.sleep(RESPAWN_DELAY)
        if not self._stopping:
            await self._spawn(worker)

    # --- what the main process asks ----------------------------------------------------

    def push(self, config: m.ProxyConfig) -> None:
        self.generation += 1
        self._blob = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send(("config", self.generation, self._blob))

    @property
    def all_applied(self) -> bool:
        """Every worker has applied some config (they are serving)."""
        return all(w.applied > 0 for w in self.workers)

    async def ask(self, what: str) -> list[Any]:
        """One answer per live worker (None for a worker that did not answer in time)."""
        loop = asyncio.get_running_loop()
        futures = []
        for worker in self.workers:
            if worker.channel is None:
                continue
            request_id = next(self._ids)
            future: asyncio.Future[Any] = loop.create_future()
            worker.pending[request_id] = future
            worker.channel.send((what, request_id))
            futures.append(future)
        if not futures:
            return []
        done, _ = await asyncio.wait(futures, timeout=REPLY_TIMEOUT)
        return [f.result() if f in done else None for f in futures]

    def tap(
        self,
        sub_id: int,
        filter: dict[str, Any],
        me: dict[str, Any],
        deliver: Callable[[list[Any], int], None],
    ) -> None:
        """Subscribe in every worker (and in those started later) until `untap`."""
        self.taps[sub_id] = ((filter, me), deliver)
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send(("tap", sub_id, filter, me))

    def untap(self, sub_id: int) -> None:
        if self.taps.pop(sub_id, None) is None:
            return
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send(("untap", sub_id))

    def drain(self) -> None:
        self._draining = True
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send(("drain",))

    async def stop(self, timeout: float) -> None:
        """Ask each worker to finish within `timeout`; kill the ones that do not."""
        self._stopping = True
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send(("exit", timeout))
        deadline = time.monotonic() + timeout + 2.0
        for worker in self.workers:
            proc = worker.proc
            if proc is None:
                continue
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                log.warning("worker did not exit in time; killing it", worker=worker.index)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, 9)
                await asyncio.to_thread(proc.wait, 5.0)
            if worker.channel is not None:
                worker.channel.close()

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "worker": w.index,
                "pid": w.pid,
                "alive": w.channel is not None,
                "appliedGeneration": w.applied,
                "listenerErrors": w.errors,
            }
            for w in self.workers
        ]
