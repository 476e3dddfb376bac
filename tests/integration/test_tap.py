"""Tap on the sidecar: `GET /tap` on the admin port streams a record per completed
request, from every worker process, filtered, with header values redacted by default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.ndjson import StreamReader
from tests.support.proxy import (
    Sidecar,
    Upstream,
    free_port,
    get,
    http_listener,
    route_config,
    static_cluster,
    to_cluster,
    vhost,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


class Env:
    def __init__(self, sidecar: Sidecar, port: int) -> None:
        self.sidecar = sidecar
        self.port = port


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    up = Upstream("a").start()
    port = free_port()
    config: dict[str, Any] = {
        "listeners": [http_listener("main", port, rds="main")],
        "routes": [
            route_config(
                "main",
                vhost("svc", ["svc"], to_cluster("gone", "/gone"), to_cluster("a", "/")),
            )
        ],
        "clusters": [static_cluster("a", up.port), static_cluster("gone", free_port())],
    }
    sidecar = Sidecar(tmp_path_factory.mktemp("tap"), config, workers=2).start()
    try:
        yield Env(sidecar, port)
    finally:
        sidecar.stop()
        up.stop()


def taps(env: Env) -> int:
    return int(env.sidecar.get("/ready").json()["taps"])


def test_tap_streams_requests_from_every_worker(env: Env) -> None:
    tap = StreamReader(env.sidecar.admin + "/tap", params={"path": "/t/"})
    try:
        assert tap.status == 200
        wait_for(lambda: taps(env) == 1, 5, message="the tap subscribed")
        # New connections spread over both processes (SO_REUSEPORT): all must report.
        for i in range(30):
            assert get(env.port, f"/t/{i}", X_Secret="hunter2").status == 200
        get(env.port, "/other")  # filtered out
        records = tap.wait(
            lambda seen: len(r := [x for x in seen if x["type"] == "request"]) >= 30 and r,
            message="30 tapped requests",
        )
        assert sorted(r["path"] for r in records) == sorted(f"/t/{i}" for i in range(30))
        first = records[0]
        assert first["method"] == "GET" and first["status"] == 200
        assert first["direction"] == "outbound" and first["authority"] == "svc"
        assert first["latencyMs"] > 0 and first["destination"]["service"] == "a"
        assert first["headers"]["x-secret"] == "<redacted>"
        assert "hunter2" not in repr(tap.collect())
    finally:
        tap.close()
    wait_for(lambda: taps(env) == 0, 5, message="the tap to end with its reader")


def test_tap_shows_headers_flags_and_filters_by_method(env: Env) -> None:
    tap = StreamReader(env.sidecar.admin + "/tap", params={"showHeaders": "true", "method": "get"})
    try:
        wait_for(lambda: taps(env) == 1, 5, message="the tap subscribed")
        get(
            env.port,
            "/gone/x",
            X_Secret="hunter2",
            traceparent="00-" + "ab" * 16 + "-" + "cd" * 8 + "-01",
        )
        httpx.post(f"http://127.0.0.1:{env.port}/post", headers={"host": "svc"}, timeout=5)
        (r,) = tap.wait(lambda seen: [x for x in seen if x.get("path") == "/gone/x"])
        assert r["headers"]["x-secret"] == "hunter2"
        assert r["status"] == 503 and r["flags"] == "UF"
        assert r["traceId"] == "ab" * 16
        assert not [x for x in tap.collect() if x.get("path") == "/post"]
    finally:
        tap.close()


def test_tap_refuses_bad_filters(env: Env) -> None:
    r = env.sidecar.get("/tap?path=nope")
    assert r.status_code == 400 and "path" in r.text
    r = env.sidecar.get("/tap?showHeaders=maybe")
    assert r.status_code == 400 and "showHeaders" in r.text
