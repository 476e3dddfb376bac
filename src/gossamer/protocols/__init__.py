"""Sans-IO protocol state machines (HTTP/1.1, later HTTP/2 and TLS sniffing).

Nothing in this package does IO or imports asyncio: bytes go in, callbacks and bytes come
out, so every layer is testable without sockets. See :mod:`gossamer.protocols.http1`.
"""
