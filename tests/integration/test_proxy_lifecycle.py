"""Sidecar lifecycle: readiness, drain, SIGTERM with a request in flight, workers, memory."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.proxy import (
    Sidecar,
    Upstream,
    free_port,
    get,
    http_listener,
    read_response,
    route_config,
    rss_kib,
    static_cluster,
    to_cluster,
    vhost,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def simple(port: int, upstream: Upstream) -> dict[str, Any]:
    return {
        "listeners": [
            http_listener(
                "main", port, routes=route_config("main", vhost("svc", ["*"], to_cluster("up")))
            )
        ],
        "clusters": [static_cluster("up", upstream.port)],
    }


def test_sigterm_drains_in_flight_request(tmp_path: Path) -> None:
    up = Upstream("up").start()
    port = free_port()
    sidecar = Sidecar(tmp_path, simple(port, up), "--drain-timeout", "10", workers=1).start()
    try:
        idle = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert get(port, "/warm").status == 200
        # HTTP/1.0 without Host: the default domain routes it; upstream gets a Host.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /old HTTP/1.0\r\n\r\n")
            old = read_response(s)
        assert old.status == 200 and old.headers.get("connection") == "close"
        assert ["host", f"127.0.0.1:{up.port}"] in [
            [k.lower(), v] for k, v in old.json()["headers"]
        ]
        result: dict[str, Any] = {}

        def slow() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /slow?ms=1500 HTTP/1.1\r\nHost: svc\r\n\r\n")
                result["response"] = read_response(s, timeout=10)

        thread = threading.Thread(target=slow)
        thread.start()
        wait_for(lambda: up.requests >= 3, 5, message="the slow request upstream")
        started = time.monotonic()
        sidecar.process.signal(signal.SIGTERM)
        # Draining: not ready, no new connections, the idle connection is closed.
        wait_for(lambda: sidecar.get("/ready").status_code == 503, 5)
        assert sidecar.get("/ready").json()["state"] == "draining"
        wait_for(lambda: _refused(port), 5, message="listener to stop accepting")
        idle.settimeout(5)
        assert idle.recv(10) == b""
        thread.join(10)
        response = result["response"]
        assert response.status == 200 and response.headers.get("connection") == "close"
        assert sidecar.process.proc is not None
        assert sidecar.process.proc.wait(10) == 0
        assert 1.0 < time.monotonic() - started < 8
    finally:
        sidecar.stop()
        up.stop()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_drain_endpoint_and_quitquitquit(tmp_path: Path) -> None:
    up = Upstream("up").start()
    port = free_port()
    sidecar = Sidecar(tmp_path, simple(port, up), workers=2).start()
    try:
        assert get(port).status == 200
        assert sidecar.post("/drain").json() == {"draining": True}
        assert sidecar.get("/ready").status_code == 503
        wait_for(lambda: _refused(port), 5, message="both workers to stop accepting")
        assert sidecar.post("/quitquitquit").status_code == 200
        assert sidecar.process.proc is not None
        assert sidecar.process.proc.wait(15) == 0
    finally:
        sidecar.stop()
        up.stop()


def test_not_ready_until_a_config_and_bad_config_keeps_the_old_one(tmp_path: Path) -> None:
    up = Upstream("up").start()
    port = free_port()
    sidecar = Sidecar(tmp_path, simple(port, up), workers=1)
    sidecar.write_config({"listeners": "not a list"})
    try:
        sidecar.process.start()
        assert sidecar.process.proc is not None
        assert sidecar.process.proc.wait(20) == 2  # a static config that does not compile
        assert "static config rejected" in sidecar.output()
        sidecar = Sidecar(tmp_path, simple(port, up), workers=1, name="second").start()
        sidecar.write_config({"listeners": [{"name": "x", "bogus": 1}]})
        sidecar.process.signal(signal.SIGHUP)
        wait_for(lambda: "static config rejected" in sidecar.output(), 5)
        assert get(port).status == 200  # still serving the last good config
        assert sidecar.get("/ready").status_code == 200
    finally:
        sidecar.stop()
        up.stop()


def test_workers_share_the_port_and_their_stats_are_merged(tmp_path: Path) -> None:
    up = Upstream("up").start()
    port = free_port()
    sidecar = Sidecar(tmp_path, simple(port, up), workers=2).start()
    try:
        pids = wait_for(lambda: p if len(p := sidecar.pids()) == 2 else None, 10)
        for _ in range(200):
            assert get(port, "/w").status == 200
        stats = sidecar.stats()
        assert stats["listeners"]["main"]["requests"]["up"]["2xx"] == 200
        answers = sidecar.get("/listeners").json()
        assert [a["worker"] for a in answers] == [0, 1]
        served = [a["listeners"][0]["name"] for a in answers]
        assert served == ["main", "main"]
        rss = [rss_kib(pid) / 1024 for pid in pids]
        # Static mode: no grpc in the main process either; the worker is the lean one.
        assert rss[1] < 30, f"worker RSS {rss[1]:.1f} MiB"
        # A killed worker is started again and serves again.
        import os

        os.kill(pids[1], signal.SIGKILL)
        wait_for(lambda: len(sidecar.pids()) == 2 and sidecar.pids()[1] != pids[1], 10)
        wait_for(lambda: sidecar.get("/ready").status_code == 200, 10)
        for _ in range(20):
            assert get(port, "/again").status == 200
    finally:
        sidecar.stop()
        up.stop()


def test_admin_port_file_and_cli_errors(tmp_path: Path) -> None:
    from tests.support.processes import run_cli

    result = run_cli(
        "proxy",
        "run",
        "--inbound",
        "5000:80",
        "--config",
        "/nonexistent",
        env={"GOSSAMER_STATE_DIR": str(tmp_path)},
    )
    assert result.returncode != 0 and "--inbound" in result.stderr
    result = run_cli("proxy", "run", env={"GOSSAMER_STATE_DIR": str(tmp_path)})
    assert result.returncode == 1 and "no control plane found" in result.stderr
    help_text = run_cli("proxy", "run", "--help").stdout
    for flag in (
        "--xds",
        "--token",
        "--id",
        "--workload",
        "--namespace",
        "--service",
        "--label",
        "--address",
        "--inbound",
        "--http-proxy-port",
        "--outbound",
        "--admin-port",
        "--ready-file",
        "--workers",
        "--drain-timeout",
        "--log-level",
        "--config",
    ):
        assert flag in help_text, flag
    _ = httpx
