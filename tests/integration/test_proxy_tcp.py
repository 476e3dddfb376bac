"""The TCP proxy: weighted clusters per connection, relaying with half-close."""

from __future__ import annotations

import contextlib
import socket
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.support.proxy import Sidecar, TcpEcho, free_port, static_cluster, tcp_listener
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def relay(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Sidecar, int, int, TcpEcho, TcpEcho]]:
    e1, e2 = TcpEcho("one").start(), TcpEcho("two").start()
    port, dead_port = free_port(), free_port()
    config = {
        "listeners": [
            tcp_listener("tcp", port, [("one", 3), ("two", 1)]),
            tcp_listener("dead", dead_port, [("nowhere", 1)]),
        ],
        "clusters": [
            static_cluster("one", e1.port),
            static_cluster("two", e2.port),
            static_cluster("nowhere", free_port()),
        ],
    }
    sidecar = Sidecar(tmp_path_factory.mktemp("proxy-tcp"), config, workers=2).start()
    try:
        yield sidecar, port, dead_port, e1, e2
    finally:
        sidecar.stop()
        e1.stop()
        e2.stop()


def exchange(port: int, payload: bytes) -> tuple[str, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # half-close: the echo still comes back
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    name, _, echoed = data.partition(b"\n")
    return name.decode(), echoed


def test_weighted_relay_per_connection(relay: tuple[Sidecar, int, int, TcpEcho, TcpEcho]) -> None:
    sidecar, port, _, e1, e2 = relay
    names: Counter[str] = Counter()
    for i in range(400):
        name, echoed = exchange(port, b"ping %d" % i)
        assert echoed == b"ping %d" % i
        names[name] += 1
    assert 0.68 < names["one"] / 400 < 0.82  # 3:1
    assert e1.accepted + e2.accepted >= 400
    wait_for(lambda: sidecar.stats()["listeners"]["tcp"]["downstream_cx_active"] == 0, 5)
    stats = sidecar.stats()  # summed over both workers
    assert stats["listeners"]["tcp"]["downstream_cx_total"] == 400
    # TCP golden series: connections opened and closed, bytes both ways, per cluster.
    text = sidecar.get("/stats/prometheus").text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("gossamer_tcp_") and 'listener="tcp"' in line
    }

    def total(metric: str) -> float:
        return sum(v for k, v in samples.items() if k.startswith(metric + "{"))

    assert total("gossamer_tcp_connections_opened_total") == 400
    assert total("gossamer_tcp_connections_closed_total") == 400
    assert total("gossamer_tcp_received_bytes_total") == sum(
        len(b"ping %d" % i) for i in range(400)
    )
    assert total("gossamer_tcp_sent_bytes_total") > total("gossamer_tcp_received_bytes_total")
    assert any('cluster="one"' in k for k in samples) and any('cluster="two"' in k for k in samples)


def test_large_stream_both_ways(relay: tuple[Sidecar, int, int, TcpEcho, TcpEcho]) -> None:
    _, port, _, _, _ = relay
    payload = bytes(range(256)) * 40000  # 10 MB
    _, echoed = exchange(port, payload)
    assert echoed == payload


def test_connect_failure_closes_the_client(
    relay: tuple[Sidecar, int, int, TcpEcho, TcpEcho],
) -> None:
    sidecar, _, dead_port, _, _ = relay
    with (
        socket.create_connection(("127.0.0.1", dead_port), timeout=5) as s,
        contextlib.suppress(ConnectionResetError),  # closed or reset: both fine
    ):
        assert s.recv(10) == b""
    flags = wait_for(lambda: sidecar.stats()["listeners"]["dead"]["response_flags"], 5)
    assert flags.get("UF") == 1
