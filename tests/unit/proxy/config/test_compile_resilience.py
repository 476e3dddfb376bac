"""The sidecar compiler NACKs resilience config it cannot honour, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format

from gossamer.proxy.config.compile import (
    ConfigError,
    compile_cluster,
    compile_listener,
    compile_route_configuration,
)
from gossamer.proxy.config.support import _import_typed_configs

_import_typed_configs()  # registers the typed configs for json_format's Any parsing

HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
ROUTER = {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
NET_RL = "type.googleapis.com/envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"


def routes(retry: dict[str, Any]) -> Any:
    rc = {
        "name": "r",
        "virtual_hosts": [
            {
                "name": "vh",
                "domains": ["*"],
                "routes": [
                    {"match": {"prefix": "/"}, "route": {"cluster": "c", "retry_policy": retry}}
                ],
            }
        ],
    }
    return json_format.ParseDict(rc, route_pb2.RouteConfiguration())


def listener(
    filters: list[dict[str, Any]], http_filters: list[dict[str, Any]] | None = None
) -> Any:
    chain = []
    for f in filters:
        chain.append(f)
    if http_filters is not None:
        hcm = {
            "@type": HCM,
            "stat_prefix": "l",
            "route_config": {"name": "r"},
            "http_filters": [*http_filters, {"name": "router", "typed_config": ROUTER}],
        }
        chain.append({"name": "hcm", "typed_config": hcm})
    doc = {
        "name": "l",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
        "filter_chains": [{"filters": chain}],
    }
    return json_format.ParseDict(doc, listener_pb2.Listener())


def test_unknown_retry_condition_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        compile_route_configuration(routes({"retry_on": "5xx,bogus"}))
    assert "retry_policy.retry_on" in str(info.value) and "bogus" in str(info.value)


def test_retriable_request_headers_only_on_method() -> None:
    bad = {"retry_on": "5xx", "retriable_request_headers": [{"name": "x-a", "present_match": True}]}
    with pytest.raises(ConfigError) as info:
        compile_route_configuration(routes(bad))
    assert "retriable_request_headers[0]" in str(info.value)


def test_fault_delay_needs_a_fixed_delay() -> None:
    fault = {"@type": FAULT, "delay": {"header_delay": {}, "percentage": {"numerator": 1}}}
    with pytest.raises(ConfigError) as info:
        compile_listener(listener([], [{"name": "fault", "typed_config": fault}]))
    # Envoy's header-controlled delay is not a field the sidecar honours.
    assert "header_delay" in str(info.value) or "fixed_delay" in str(info.value)


def test_connection_rate_limit_only_before_tcp_proxy() -> None:
    limit = {
        "@type": NET_RL,
        "stat_prefix": "l",
        "token_bucket": {"max_tokens": 1, "fill_interval": "1s"},
    }
    with pytest.raises(ConfigError) as info:
        compile_listener(listener([{"name": "rl", "typed_config": limit}], []))
    assert "filter_chains[0].filters[0]" in str(info.value) and "tcp_proxy" in str(info.value)


def test_zone_order_must_be_a_json_list() -> None:
    c = cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.STATIC)
    c.metadata.filter_metadata["gossamer"].update({"zone_order": "a,b"})
    with pytest.raises(ConfigError) as info:
        compile_cluster(c)
    assert "zone_order" in str(info.value)
