"""Tap's filters, bounds and records (the data path part is in tests/integration/test_tap.py)."""

from __future__ import annotations

import pytest

from gossamer.proxy.filters import tap


def test_filter_from_query_and_matching() -> None:
    f = tap.TapFilter.from_query({"method": "get", "path": "/api", "authority": "svc"})
    assert f == tap.TapFilter("GET", "/api", "svc", False)
    assert f.matches("GET", "/api/x", "svc")
    assert f.matches("GET", "/api/x", "svc:8080")  # the host, whatever the port
    assert not f.matches("POST", "/api/x", "svc")
    assert not f.matches("GET", "/other", "svc")
    assert not f.matches("GET", "/api", "other")
    assert tap.TapFilter.from_dict(f.to_dict()) == f
    assert tap.TapFilter.from_query({"showHeaders": "true"}).show_headers


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"path": "api"}, "path"),
        ({"method": "G T"}, "method"),
        ({"showHeaders": "x"}, "showHeaders"),
    ],
)
def test_filter_refuses_bad_parameters(query: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        tap.TapFilter.from_query(query)


def test_headers_redacted_unless_asked() -> None:
    names = [("host", b"svc"), ("x-token", b"secret"), ("x-token", b"two")]
    assert tap._headers(names, False) == {"host": "<redacted>", "x-token": "<redacted>"}
    assert tap._headers(names, True) == {"host": "svc", "x-token": "secret, two"}


def test_trace_id_from_w3c_and_b3() -> None:
    tid = b"4bf92f3577b34da6a3ce929d0e0e4736"
    w3c = [("traceparent", b"00-" + tid + b"-00f067aa0ba902b7-01")]
    assert tap._trace_id(w3c) == tid.decode()
    assert tap._trace_id([("x-b3-traceid", tid)]) == tid.decode()
    assert tap._trace_id([("b3", tid + b"-00f067aa0ba902b7-1")]) == tid.decode()
    assert tap._trace_id([("host", b"x")]) is None


def test_queue_is_bounded_and_counts_drops() -> None:
    q = tap.Queue(limit=3)
    for i in range(5):
        q.put({"i": i})
    assert [r["i"] for r in q.take()] == [0, 1, 2] and q.dropped == 2
    q.put_many([{"i": 9}], dropped=4)
    assert q.take() == [{"i": 9}] and q.dropped == 6


def test_sink_is_none_unless_someone_taps() -> None:
    tapper = tap.Tapper()
    assert tap.sink is None
    tapper.add(tap.Subscription(1, tap.TapFilter(), lambda r: None))
    assert tap.sink is tapper
    tapper.remove(1)
    assert tap.sink is None
