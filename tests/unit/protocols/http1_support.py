"""A recording handler and feeding helpers shared by the HTTP/1 tests."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from gossamer.protocols.http1 import (
    ProtocolError,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
    request_parser,
    response_parser,
)

Event = tuple[object, ...]


@dataclass
class Recorder:
    """Records every event; optionally pauses the parser after chosen events."""

    events: list[Event] = field(default_factory=list)
    heads: list[RequestHead | ResponseHead] = field(default_factory=list)
    pause_on: set[str] = field(default_factory=set)
    parser: RequestParser | None = None

    def _maybe_pause(self, kind: str) -> None:
        if kind in self.pause_on and self.parser is not None:
            self.parser.pause()

    def on_request_head(self, head: RequestHead) -> None:
        self.heads.append(head)
        self.events.append(("head", head.method, head.target))
        self._maybe_pause("head")

    def on_interim_response(self, head: ResponseHead) -> None:
        self.heads.append(head)
        self.events.append(("interim", head.status))
        self._maybe_pause("interim")

    def on_response_head(self, head: ResponseHead) -> None:
        self.heads.append(head)
        self.events.append(("response", head.status))
        self._maybe_pause("head")

    def on_body(self, data: bytes) -> None:
        assert isinstance(data, bytes) and data
        if self.events and self.events[-1][0] == "body":
            self.events[-1] = ("body", cast(bytes, self.events[-1][1]) + data)
        else:
            self.events.append(("body", data))
        self._maybe_pause("body")

    def on_message_complete(self) -> None:
        self.events.append(("done",))
        self._maybe_pause("done")

    def on_upgrade(self, data: bytes) -> None:
        if self.events and self.events[-1][0] == "upgrade":
            self.events[-1] = ("upgrade", cast(bytes, self.events[-1][1]) + data)
        else:
            self.events.append(("upgrade", data))

    @property
    def bodies(self) -> list[bytes]:
        """The body of each complete message, in order."""
        out: list[bytes] = []
        current = b""
        for ev in self.events:
            if ev[0] == "body":
                current += cast(bytes, ev[1])
            elif ev[0] == "done":
                out.append(current)
                current = b""
        return out


def req_parser(backend: str, **kw: object) -> tuple[RequestParser, Recorder]:
    rec = Recorder()
    parser = request_parser(rec, backend, **kw)  # type: ignore[arg-type]
    rec.parser = parser
    return parser, rec


def resp_parser(backend: str, **kw: object) -> tuple[ResponseParser, Recorder]:
    rec = Recorder()
    parser = response_parser(rec, backend, **kw)  # type: ignore[arg-type]
    rec.parser = parser
    return parser, rec


def feed_pieces(parser: RequestParser, pieces: Iterable[bytes], eof: bool = False) -> None:
    for piece in pieces:
        parser.feed(piece)
    if eof:
        parser.feed_eof()


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    out, prev = [], 0
    for c in points:
        out.append(data[prev:c])
        prev = c
    out.append(data[prev:])
    return out


def outcome(
    backend: str, data: bytes, cuts: Iterable[int] = (), method: bytes | None = None
) -> tuple[str, list[Event], int]:
    """('ok'|'error', events, status) after feeding ``data`` in pieces then EOF; ``method``
    makes it a response stream answering that method."""
    if method is None:
        parser, rec = req_parser(backend)
    else:
        rparser, rec = resp_parser(backend)
        rparser.expect_response(method)
        parser = rparser
    try:
        feed_pieces(parser, split_at(data, cuts), eof=True)
    except ProtocolError as err:
        return "error", rec.events, err.status
    return "ok", rec.events, 0
