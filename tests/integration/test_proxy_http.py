"""The sidecar's HTTP/1.1 data path: a real `gossamer proxy run --config` process in front
of real upstream servers, driven by raw sockets and curl."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.proxy import (
    Sidecar,
    Upstream,
    closed,
    eds_cluster,
    free_port,
    get,
    http_listener,
    read_response,
    request,
    route_config,
    rss_kib,
    static_cluster,
    to_cluster,
    vhost,
)
from tests.support.wait import wait_for
from tests.unit.protocols.malformed_cases import MALFORMED_REQUESTS

pytestmark = pytest.mark.integration


class Env:
    def __init__(self, sidecar: Sidecar, port: int, a: Upstream, b: Upstream) -> None:
        self.sidecar = sidecar
        self.port = port
        self.a = a
        self.b = b


def free_port_pair() -> int:
    """A free port whose successor is free too (the "stall" listener uses port + 1)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise AssertionError("no pair of free ports")


def config(port: int, a: Upstream, b: Upstream, dead_port: int) -> dict[str, Any]:
    routes = route_config(
        "main",
        vhost(
            "svc",
            ["svc", "benigno", "benigno:5000"],
            to_cluster([("a", 80), ("b", 20)], "/split"),
            to_cluster("a", "/timeout", timeout="0.5s"),
            to_cluster("dead", "/dead"),
            to_cluster("empty", "/empty"),
            to_cluster("nope", "/nope"),
            {
                "match": {"prefix": "/direct"},
                "direct_response": {"status": 418, "body": {"inline_string": "teapot\n"}},
            },
            {
                "match": {"prefix": "/moved/"},
                "redirect": {"prefix_rewrite": "/new/", "response_code": "FOUND"},
            },
            {
                "match": {"prefix": "/rewrite/"},
                "route": {
                    "cluster": "b",
                    "prefix_rewrite": "/rewritten/",
                    "host_rewrite_literal": "b.internal",
                },
                "request_headers_to_add": [
                    {
                        "header": {"key": "x-added", "value": "yes"},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                ],
                "request_headers_to_remove": ["x-secret"],
                "response_headers_to_add": [{"header": {"key": "x-route", "value": "rewrite"}}],
            },
            to_cluster("a", "/"),
        ),
    )
    return {
        "listeners": [
            http_listener("main", port, rds="main", forward_proxy=True),
            http_listener("stall", port + 1, rds="main", stream_idle_timeout="1s"),
        ],
        "routes": [routes],
        "clusters": [
            static_cluster("a", a.port),
            static_cluster("b", b.port),
            static_cluster("dead", dead_port),
            eds_cluster("empty"),
        ],
        "endpoints": [{"cluster_name": "empty"}],
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    a, b = Upstream("a").start(), Upstream("b").start()
    port, dead = free_port_pair(), free_port()
    workdir = tmp_path_factory.mktemp("proxy-http")
    sidecar = Sidecar(workdir, config(port, a, b, dead), "--request-header-timeout", "1", workers=1)
    sidecar.start()
    try:
        yield Env(sidecar, port, a, b)
    finally:
        sidecar.stop()
        a.stop()
        b.stop()


def test_keep_alive_both_sides(env: Env) -> None:
    env.a.reset_counts()
    with socket.create_connection(("127.0.0.1", env.port)) as s:
        for i in range(50):
            r = request(env.port, f"GET /k{i} HTTP/1.1\r\nHost: svc\r\n\r\n".encode(), sock=s)
            assert r.status == 200 and r.json()["target"] == f"/k{i}"
            assert "connection" not in r.headers
    assert env.a.requests == 50
    assert env.a.accepted <= 1  # the pooled upstream connection was reused


def test_forwarding_headers(env: Env) -> None:
    r = get(env.port, "/h", Connection="keep-alive, x-hop", X_Hop="1", Keep_Alive="timeout=5")
    seen = {k.lower(): v for k, v in r.json()["headers"]}
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert len(seen["x-request-id"]) == 32
    for hop in ("connection", "x-hop", "keep-alive"):
        assert hop not in seen
    kept = get(env.port, "/h", X_Request_Id="abc-123").json()["headers"]
    assert ["x-request-id", "abc-123"] in [[k.lower(), v] for k, v in kept]


def test_absolute_form_is_routed_by_its_authority(env: Env) -> None:
    raw = b"GET http://benigno:5000/x?y=1 HTTP/1.1\r\nHost: benigno:5000\r\n\r\n"
    r = request(env.port, raw)
    assert r.status == 200
    body = r.json()
    assert body["target"] == "/x?y=1"  # origin-form upstream
    assert ["Host", "benigno:5000"] in body["headers"] or ["host", "benigno:5000"] in body[
        "headers"
    ]
    # The authority wins over a disagreeing Host header (RFC 9112 3.2.2).
    r = request(env.port, b"GET http://benigno/z HTTP/1.1\r\nHost: elsewhere\r\n\r\n")
    assert r.status == 200 and r.json()["target"] == "/z"
    # Through curl, as an app with HTTP_PROXY does.
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-x",
            f"http://127.0.0.1:{env.port}",
            "http://benigno:5000/curl",
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert '"target": "/curl"' in out.stdout, out.stderr


def test_no_route_and_unknown_host(env: Env) -> None:
    r = get(env.port, "/", host="magnanimo:4000")
    assert r.status == 404 and r.headers["x-gossamer-flags"] == "NR"
    assert r.body == b"no route\n"


def test_local_replies_direct_redirect_rewrite(env: Env) -> None:
    r = get(env.port, "/direct")
    assert (r.status, r.body) == (418, b"teapot\n")
    r = get(env.port, "/moved/thing?q=1", host="benigno")
    assert r.status == 302 and r.headers["location"] == "http://benigno/new/thing?q=1"
    r = get(env.port, "/rewrite/item", X_Secret="s", X_Added="client")
    body = r.json()
    assert body["server"] == "b" and body["target"] == "/rewritten/item"
    headers = {k.lower(): v for k, v in body["headers"]}
    assert headers["host"] == "b.internal"
    assert headers["x-added"] == "yes" and "x-secret" not in headers
    assert r.headers["x-route"] == "rewrite"


def test_errors_carry_status_reason_and_flags(env: Env) -> None:
    cases = {
        "/dead": (503, "UF", b"upstream connect error\n"),
        "/empty": (503, "UH", b"no healthy upstream\n"),
        "/nope": (503, "NC", b"cluster not found: nope\n"),
        "/close": (502, "UC", b"upstream connection closed\n"),
        "/timeout/slow?ms=3000": (504, "UT", b"upstream request timeout\n"),
    }
    for path, (status, flag, body) in cases.items():
        started = time.monotonic()
        r = get(env.port, path)
        assert (r.status, r.headers.get("x-gossamer-flags"), r.body) == (status, flag, body), path
        if flag == "UT":
            assert 0.4 < time.monotonic() - started < 2.0
    flags = env.sidecar.stats()["listeners"]["main"]["response_flags"]
    assert {"UF", "UH", "NC", "UC", "UT"} <= set(flags)


def test_local_replies_keep_the_connection(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.port)) as s:
        assert request(env.port, b"GET /empty HTTP/1.1\r\nHost: svc\r\n\r\n", sock=s).status == 503
        assert request(env.port, b"GET /x HTTP/1.1\r\nHost: nowhere\r\n\r\n", sock=s).status == 404
        assert request(env.port, b"GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n", sock=s).status == 200


def test_pipelined_requests_answered_in_order(env: Env) -> None:
    raw = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: svc\r\n\r\n".encode() for i in range(5))
    with socket.create_connection(("127.0.0.1", env.port)) as s:
        s.sendall(raw)
        targets = [read_response(s).json()["target"] for _ in range(5)]
    assert targets == [f"/p{i}" for i in range(5)]


def test_weighted_split_within_tolerance(env: Env) -> None:
    servers: Counter[str] = Counter()
    with socket.create_connection(("127.0.0.1", env.port)) as s:
        for _ in range(1000):
            servers[
                request(env.port, b"GET /split HTTP/1.1\r\nHost: svc\r\n\r\n", sock=s).json()[
                    "server"
                ]
            ] += 1
    assert servers["a"] + servers["b"] == 1000
    assert 0.75 < servers["a"] / 1000 < 0.85  # 80/20 split


@pytest.mark.parametrize(
    ("name", "raw", "status"), MALFORMED_REQUESTS, ids=[c[0] for c in MALFORMED_REQUESTS]
)
def test_malformed_requests_never_reach_the_upstream(
    env: Env, name: str, raw: bytes, status: int
) -> None:
    before = (env.a.accepted, env.a.requests, env.b.requests)
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(raw)
        with __import__("contextlib").suppress(OSError):
            s.shutdown(socket.SHUT_WR)
        r = read_response(s)
        assert r.status == status, (name, r)
        assert r.headers.get("connection") == "close"
        assert closed(s)
    assert (env.a.accepted, env.a.requests, env.b.requests) == before


def test_slow_headers_get_408(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: svc\r\nX-Slow: ")
        started = time.monotonic()
        r = read_response(s)
        assert r.status == 408 and r.headers["x-gossamer-flags"] == "SI"
        assert 0.8 < time.monotonic() - started < 2.5
        assert closed(s)
    # A connection that never sends anything is just closed.
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        assert closed(s, 3.0)


def test_expect_100_continue(env: Env) -> None:
    body = b"x" * 10000
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(
            b"POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: %d\r\n"
            b"Expect: 100-continue\r\n\r\n" % len(body)
        )
        interim = read_response(s, head_only=True)
        assert interim.status == 100 and interim.body == b""
        s.sendall(body)
        r = read_response(s)
    assert r.status == 200 and r.json()["bytes"] == len(body)
    assert "expect" not in {k.lower() for k, _ in r.json()["headers"]}


def test_upgrade_tunnel(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(
            b"GET /chat HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        r = read_response(s)
        assert r.status == 101 and r.headers["upgrade"] == "websocket"
        data = r.body
        for message in (b"\x81\x05hello", b"\x00" * 100000):
            s.sendall(message)
            while len(data) < len(message):
                data += s.recv(65536)
            assert data == message
            data = b""


def _rss_of_sidecar(env: Env) -> int:
    return rss_kib(env.sidecar.process.pid)


def test_large_bodies_stream_without_buffering(env: Env, tmp_path: Path) -> None:
    size = 20 * 1024 * 1024
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(size))
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    before = _rss_of_sidecar(env)
    peak = [before]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_of_sidecar(env))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # Upload (chunked, through curl with a rate limit so the stream lasts), download, echo.
        up = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "30",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                f"@{payload}",
                f"http://127.0.0.1:{env.port}/upload",
                "-H",
                "Host: svc",
            ],
            capture_output=True,
            timeout=40,
        )
        assert up.returncode == 0, up.stderr
        assert f'"bytes": {size}' in up.stdout.decode() and digest in up.stdout.decode()
        down = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "30",
                "-o",
                str(tmp_path / "down.bin"),
                "-w",
                "%{http_code} %{size_download}",
                f"http://127.0.0.1:{env.port}/download?bytes={size}",
                "-H",
                "Host: svc",
            ],
            capture_output=True,
            text=True,
            timeout=40,
        )
        assert down.stdout == f"200 {size}", down.stderr
        echo = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "30",
                "--data-binary",
                f"@{payload}",
                "-o",
                str(tmp_path / "echo.bin"),
                f"http://127.0.0.1:{env.port}/echo",
                "-H",
                "Host: svc",
            ],
            capture_output=True,
            timeout=40,
        )
        assert echo.returncode == 0, echo.stderr
        assert hashlib.sha256((tmp_path / "echo.bin").read_bytes()).hexdigest() == digest
    finally:
        stop.set()
        watcher.join()
    growth_mib = (peak[0] - before) / 1024
    assert growth_mib < 8, f"RSS grew by {growth_mib:.1f} MiB while streaming 3 x 20 MiB"


def test_slow_client_gets_backpressure_not_buffering(env: Env) -> None:
    """A client that does not read: the sidecar pauses the upstream instead of buffering."""
    size = 30 * 1024 * 1024
    before = _rss_of_sidecar(env)
    with socket.create_connection(("127.0.0.1", env.port), timeout=10) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(f"GET /download?bytes={size} HTTP/1.1\r\nHost: svc\r\n\r\n".encode())
        time.sleep(1.0)  # let it stall: buffers fill up and reading pauses
        stalled = _rss_of_sidecar(env)
        received = 0
        s.settimeout(10)
        while True:
            data = s.recv(1 << 20)
            received += len(data)
            if not data or data.endswith(b"0\r\n\r\n"):
                break
    assert (stalled - before) / 1024 < 8
    assert received > size


def test_admin_endpoints(env: Env) -> None:
    ready = env.sidecar.get("/ready")
    assert ready.status_code == 200
    detail = ready.json()
    assert detail["state"] == "live" and detail["config"]["source"] == "static"
    assert detail["config"]["listeners"] == ["main", "stall"]
    dump = env.sidecar.get("/config_dump").json()
    assert dump["applied"] and "main" in dump["listeners"] and "a" in dump["clusters"]
    stats = env.sidecar.stats()
    assert stats["listeners"]["main"]["requests"]["a"]["2xx"] > 0
    assert "upstream_cx_connect_fail" in stats["clusters"]["dead"]
    text = env.sidecar.get("/stats/prometheus").text
    assert 'gossamer_requests_total{listener="main",cluster="a",direction="outbound"' in text
    assert 'code="200",class="2xx"}' in text
    assert 'gossamer_downstream_connections_active{listener="main"}' in text
    assert 'gossamer_upstream_connect_failures_total{cluster="dead"}' in text
    assert env.sidecar.get("/drain").status_code == 405  # state changes need POST
    assert env.sidecar.get("/nothing").status_code == 404
    listeners = env.sidecar.get("/listeners").json()
    assert listeners[0]["listeners"][0]["name"] == "main"


def test_config_reload_keeps_connections(env: Env, tmp_path: Path) -> None:
    with socket.create_connection(("127.0.0.1", env.port)) as s:
        assert (
            request(env.port, b"GET /r HTTP/1.1\r\nHost: svc\r\n\r\n", sock=s).json()["server"]
            == "a"
        )
        new = config(env.port, env.b, env.a, free_port())  # a and b swapped
        env.sidecar.reload(new)
        assert (
            request(env.port, b"GET /r HTTP/1.1\r\nHost: svc\r\n\r\n", sock=s).json()["server"]
            == "b"
        )
        env.sidecar.reload(config(env.port, env.a, env.b, free_port()))
        assert (
            request(env.port, b"GET /r HTTP/1.1\r\nHost: svc\r\n\r\n", sock=s).json()["server"]
            == "a"
        )
    wait_for(lambda: env.sidecar.stats()["listeners"]["main"]["downstream_cx_active"] == 0, 5)


def test_http10_and_head(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(b"GET /old HTTP/1.0\r\n\r\n")  # no Host: only a "*" domain matches
        r = read_response(s)
        assert r.status == 404 and r.headers.get("connection") == "close"
        assert closed(s)
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(b"GET /ka HTTP/1.0\r\nHost: svc\r\nConnection: keep-alive\r\n\r\n")
        r = read_response(s)
        assert r.status == 200 and r.headers.get("connection") == "keep-alive"
        s.sendall(b"HEAD /h HTTP/1.1\r\nHost: svc\r\n\r\n")
        r = read_response(s, head_only=True)
        assert r.status == 200 and int(r.headers["content-length"]) > 0 and r.body == b""
        s.sendall(b"GET /after-head HTTP/1.1\r\nHost: svc\r\n\r\n")
        assert read_response(s).json()["target"] == "/after-head"


def test_connect_is_refused(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(b"CONNECT benigno:443 HTTP/1.1\r\nHost: benigno:443\r\n\r\n")
        r = read_response(s)
        assert r.status == 405 and r.headers.get("connection") == "close"


def test_stalled_request_body_gets_408(env: Env) -> None:
    with socket.create_connection(("127.0.0.1", env.port + 1), timeout=5) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: svc\r\nContent-Length: 100\r\n\r\nabc")
        started = time.monotonic()
        r = read_response(s)
        assert (r.status, r.headers["x-gossamer-flags"]) == (408, "SI")
        assert 0.8 < time.monotonic() - started < 2.5
        assert closed(s)
