"""What the IO layer implements (handlers) and what it calls (parsers).

Flow for one connection, as the uvloop protocol drives it::

    parser = request_parser(handler)            # once per connection
    def data_received(self, data): parser.feed(data)
    def eof_received(self): parser.feed_eof()

and the parser calls, per request, in this order::

    handler.on_request_head(head)               # once, head complete (route it now)
    handler.on_body(data)                       # 0..n times, de-chunked body bytes
    handler.on_message_complete()               # once (head.trailers set if any)
    handler.on_upgrade(rest)                    # only after CONNECT / an upgrade request

A response parser is told the method of the request just sent upstream
(``expect_response(b"HEAD")``), since that decides whether a body follows; it may call
``on_interim_response`` (100 Continue, 103 Early Hints...) any number of times before
``on_response_head``.

Errors: ``feed``/``feed_eof`` raise :class:`~gossamer.protocols.http1.errors.ProtocolError`
carrying the status to answer; the parser is then dead (every later ``feed`` raises it again).
Exceptions raised by a handler method propagate unchanged out of ``feed``.

Pausing: a handler may call ``parser.pause()`` from any callback (typically
``on_message_complete`` when a pipelined request must wait for the current response).
No further events are delivered - including an error found in later bytes - until
``parser.resume()``, which delivers what is pending, in order, before returning. Bytes fed
while paused are kept, so the IO layer should also ``pause_reading()``.

Timers: ``head_in_progress`` is True while part of a head has been received but not all of
it: the IO layer starts its request-header timer (answering 408 when it fires) when this
becomes true after a ``feed`` and stops it at ``on_request_head``. ``idle`` is True between
messages with nothing pending (safe to close on keep-alive timeout).

After ``on_upgrade`` the connection no longer carries HTTP: later ``feed`` calls hand their
bytes straight to ``on_upgrade`` (or the IO layer relays them itself). After a message that
does not keep the connection alive (``Connection: close``, HTTP/1.0) the rest of the input
is ignored, as RFC 9112 §9.6 requires.
"""

from __future__ import annotations

from typing import Protocol

from gossamer.protocols.http1.head import RequestHead, ResponseHead


class RequestHandler(Protocol):
    """Receives the events of a request stream (from a client)."""

    def on_request_head(self, head: RequestHead) -> None: ...

    def on_body(self, data: bytes) -> None: ...

    def on_message_complete(self) -> None: ...

    def on_upgrade(self, data: bytes) -> None: ...


class ResponseHandler(Protocol):
    """Receives the events of a response stream (from an upstream)."""

    def on_interim_response(self, head: ResponseHead) -> None: ...

    def on_response_head(self, head: ResponseHead) -> None: ...

    def on_body(self, data: bytes) -> None: ...

    def on_message_complete(self) -> None: ...

    def on_upgrade(self, data: bytes) -> None: ...


class RequestParser(Protocol):
    """A request parser; both backends implement exactly this."""

    @property
    def backend(self) -> str: ...

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    @property
    def paused(self) -> bool: ...

    @property
    def head_in_progress(self) -> bool: ...

    @property
    def idle(self) -> bool: ...

    @property
    def upgraded(self) -> bool: ...


class ResponseParser(RequestParser, Protocol):
    """A response parser: as a request parser, plus the method of the pending request."""

    def expect_response(self, method: bytes) -> None: ...
