"""Static configs: proto-JSON Envoy resources through the same compile functions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gossamer.proxy.config import model as m
from gossamer.proxy.static import StaticConfigError, compile_document, load_file, parse_document

HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
TCP = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"

YAML = f"""
listeners:
- name: outbound:http
  address: {{socket_address: {{address: 127.0.0.1, port_value: 15001}}}}
  filter_chains:
  - filters:
    - name: hcm
      typed_config:
        "@type": {HCM}
        stat_prefix: outbound:http
        http_protocol_options: {{allow_absolute_url: true}}
        rds: {{route_config_name: outbound:http, config_source: {{ads: {{}}}}}}
        http_filters: [{{name: router, typed_config: {{"@type": {ROUTER}}}}}]
- name: tcp
  address: {{socket_address: {{address: 127.0.0.1, port_value: 15002}}}}
  filter_chains:
  - filters:
    - name: tcp
      typed_config:
        "@type": {TCP}
        statPrefix: tcp
        weightedClusters: {{clusters: [{{name: a, weight: 3}}, {{name: b, weight: 1}}]}}
routes:
- name: outbound:http
  virtual_hosts:
  - name: benigno
    domains: ["benigno:5000", benigno]
    routes:
    - match: {{prefix: /}}
      route: {{weighted_clusters: {{clusters: [{{name: a, weight: 90}}, {{name: b, weight: 10}}]}}}}
clusters:
- name: a
  type: STATIC
  load_assignment:
    cluster_name: a
    endpoints:
    - lb_endpoints:
      - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 9001}}}}}}
- name: b
  type: EDS
  eds_cluster_config: {{eds_config: {{ads: {{}}}}}}
  lb_policy: LEAST_REQUEST
endpoints:
- cluster_name: b
  endpoints:
  - lb_endpoints:
    - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: 9002}}}}}}
"""


def test_yaml_compiles_to_a_proxy_config(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.yaml"
    path.write_text(YAML)
    config = load_file(path)
    http = config.listeners["outbound:http"]
    assert isinstance(http.handler, m.HttpConnectionManager)
    assert http.handler.forward_proxy and http.handler.route_config_name == "outbound:http"
    tcp = config.listeners["tcp"].handler
    assert isinstance(tcp, m.TcpProxy) and tcp.cumulative == (3, 4)
    assert [e.port for e in config.clusters["b"].endpoints] == [9002]  # EDS folded in
    assert config.clusters["b"].lb_policy == "least_request"
    vh = config.routes["outbound:http"].virtual_host("benigno:5000")
    assert vh is not None and vh.name == "benigno"
    assert len(set(config.versions.values())) == 1


def test_json_works_too() -> None:
    import yaml

    data = yaml.safe_load(YAML)
    assert compile_document(parse_document(json.dumps(data))).listeners.keys() == {
        "outbound:http",
        "tcp",
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- a list", "expected a mapping"),
        ("listners: []", "unknown section"),
        ("listeners: [{name: x, bogus: 1}]", "listeners[0]"),
        (YAML.replace("route_config_name: outbound:http", "route_config_name: missing"), "missing"),
        (
            YAML.replace("type: STATIC", "type: ORIGINAL_DST\n  lb_policy: MAGLEV\n  x: 1"),
            "clusters",
        ),
    ],
)
def test_errors_name_the_problem(text: str, error: str) -> None:
    with pytest.raises(StaticConfigError, match=re.escape(error)):
        compile_document(parse_document(text))
