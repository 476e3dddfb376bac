"""Access log formats (Envoy command operators) and the line-whole log file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gossamer.protocols.http1 import RequestHead
from gossamer.proxy.filters.accesslog import AccessLogger, LogFile, Record, compile_format


class Exchange:
    def __init__(self) -> None:
        self.head = RequestHead(
            b"GET", b"/a?b=1", b"1.1", [(b"Host", b"svc"), (b"X-Request-Id", b"r1")], None
        )
        self.head.host = b"svc"
        self.peer_ip = "127.0.0.1"
        self.peer_identity: str | None = "spiffe://gossamer.local/ns/default/sa/caller"
        self.rx = 3
        self.tx = 12
        self.upstream = None


def test_operators_and_literals(tmp_path: Path) -> None:
    file = LogFile.open(str(tmp_path / "a.log"))
    fields = (
        ("time", "%START_TIME%"),
        ("method", "%REQ(:METHOD)%"),
        ("authority", "%REQ(:AUTHORITY)%"),
        ("path", "%REQ(:PATH)%"),
        ("rid", "%REQ(X-REQUEST-ID)%"),
        ("missing", "%REQ(X-NOPE)%"),
        ("status", "%RESPONSE_CODE%"),
        ("flags", "%RESPONSE_FLAGS%"),
        ("ms", "%DURATION%"),
        ("rx", "%BYTES_RECEIVED%"),
        ("tx", "%BYTES_SENT%"),
        ("source", "%DOWNSTREAM_PEER_URI_SAN%"),
        ("destination", "%UPSTREAM_PEER_URI_SAN%"),
        ("trace", "%TRACE_ID%"),
        ("kind", "inbound"),
    )
    logger = AccessLogger("a", fields, file)
    logger.log(Record(Exchange(), 1767225600.25, 0.0125, 503, "UH", "ab" * 16, "c", "h:1"))
    file.close()
    entry = json.loads((tmp_path / "a.log").read_text())
    assert entry == {
        "time": "2026-01-01T00:00:00.250Z",
        "method": "GET",
        "authority": "svc",
        "path": "/a?b=1",
        "rid": "r1",
        "status": 503,
        "flags": "UH",
        "ms": 12,
        "rx": 3,
        "tx": 12,
        "source": "spiffe://gossamer.local/ns/default/sa/caller",
        "trace": "ab" * 16,
        "kind": "inbound",
    }  # absent values (no such header, no upstream certificate) leave their key out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("%UPSTREAM_FOO%", "%UPSTREAM_FOO% is not supported"),
        ("a %DURATION%", "only one whole command operator"),
        ("%DURATION%%BYTES_SENT%", "only one whole command operator"),
    ],
)
def test_unsupported_operators_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compile_format((("k", spec),))


def test_log_file_writes_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "b.log"
    files = [LogFile.open(str(path)), LogFile.open(str(path))]  # two processes' views
    line = "x" * 999 + "\n"
    for i in range(300):  # past the buffer limit several times, interleaved
        files[i % 2].write(line)
    for f in files:
        f.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 300 and set(lines) == {"x" * 999}
