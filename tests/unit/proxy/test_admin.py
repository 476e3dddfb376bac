"""Admin endpoints without sockets: routing of paths and methods, the config dump."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from gossamer.proxy.admin.api import AdminApi
from gossamer.proxy.admin.dump import config_dump
from gossamer.proxy.config import model as m
from gossamer.proxy.filters.stats import Labels, Stats
from tests.unit.proxy.builders import cluster, config, forward, http_listener, route, table

KEY = b"-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n"


def sample_config() -> m.ProxyConfig:
    t = table("t", ("vh", ["*"], [route("r", forward("c"), r"/x/\d+", "regex")]))
    base = config([http_listener("l", 1, t)], [cluster("c", 2)])
    secret = m.Secret("cert", b"-----BEGIN CERTIFICATE-----\n", KEY, b"")
    return m.ProxyConfig(base.listeners, base.routes, base.clusters, {"cert": secret}, {"v": "1"})


def test_config_dump_is_json_and_never_has_private_keys() -> None:
    dump = config_dump(sample_config())
    text = json.dumps(dump)
    assert "secret" not in text.replace('"secrets"', "")
    assert dump["secrets"]["cert"]["private_key"] == "[redacted]"
    route_ = dump["listeners"]["l"]["handler"]["route_table"]["virtual_hosts"][0]["routes"][0]
    assert route_["match"]["regex"] == r"/x/\d+"
    assert config_dump(None) == {"applied": False}


class Target:
    def __init__(self) -> None:
        self.config: m.ProxyConfig | None = sample_config()
        self.drained = False
        self.quitting = False

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        return not self.drained, {"state": "draining" if self.drained else "live"}

    async def stats_snapshot(self) -> dict[str, Any]:
        stats = Stats()
        stats.listener("l").for_cluster("c").record(200, 0.01)
        return stats.snapshot()

    def gauges(self) -> dict[str, float]:
        return {"gossamer_ready": 1.0}

    def metric_labels(self) -> Labels:
        return Labels(directions={"l": "outbound"})

    def metric_info(self) -> dict[str, dict[str, str]]:
        return {"gossamer_config_info": {"listener": "1"}}

    async def listeners(self) -> list[dict[str, Any]]:
        return [{"worker": 0}]

    def drain(self) -> None:
        self.drained = True

    def quit(self) -> None:
        self.quitting = True


def test_paths_and_methods() -> None:
    target = Target()
    api = AdminApi(target)

    def call(method: str, path: str) -> tuple[int, str, bytes]:
        return asyncio.run(api.handle(method, path, b""))

    status, _, body = call("GET", "/ready")
    assert status == 200 and json.loads(body)["state"] == "live"
    assert call("GET", "/stats/prometheus")[0] == 200
    text = call("GET", "/stats/prometheus")[2]
    assert b'cluster="c",direction="outbound"' in text and b'class="2xx"} 1' in text
    assert b'gossamer_config_info{listener="1"} 1' in text
    assert json.loads(call("GET", "/stats?x=1")[2])["listeners"]["l"]["requests"]["c"]["2xx"] == 1
    assert call("GET", "/drain")[0] == 405 and not target.drained
    assert call("POST", "/drain")[0] == 200 and target.drained
    assert call("GET", "/ready")[0] == 503
    assert call("POST", "/ready")[0] == 405
    assert call("GET", "/nope")[0] == 404
    assert call("POST", "/quitquitquit")[0] == 200 and target.quitting
