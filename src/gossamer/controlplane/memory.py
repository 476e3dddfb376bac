"""Hand freed heap back to the operating system.

A push to many proxies allocates large transient buffers (each stream's serialized
responses, gRPC's write buffers, on gRPC's own threads). glibc keeps what is freed in its
arenas, one per thread that allocated, so without help the control plane's RSS stays at
the peak of its busiest moment. Capping the number of arenas (before gRPC starts its
threads) and trimming the heap when it has grown since the last trim keeps RSS near what is
actually live.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter number
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - only glibc has it
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_arenas(arenas: int = 2) -> bool:
    """Call before any thread starts: fewer arenas, less memory stranded in them."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_ARENA_MAX, arenas))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def trim() -> None:
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


async def trim_when_grown(interval: float = 5.0, growth: int = 32 << 20) -> None:
    """Every `interval` seconds, trim if RSS grew by `growth` bytes since the last trim.

    The trim runs in a thread: on a heap of hundreds of MiB it takes tens of milliseconds,
    too long to hold the event loop that serves xDS.
    """
    if _LIBC is None:
        return
    baseline = rss_bytes()
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(OSError):
            if rss_bytes() - baseline >= growth:
                await asyncio.to_thread(trim)
            baseline = rss_bytes()
