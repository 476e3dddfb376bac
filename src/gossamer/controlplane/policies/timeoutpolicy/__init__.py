"""TimeoutPolicy → Envoy timeouts.

Client side (`to`): the route's `timeout` (whole exchange; an HTTPRoute rule's own
`timeouts.request` wins, being more specific), `retry_policy.per_try_timeout` (see
retrypolicy), `idle_timeout` on the route (stream idle), and on the cluster
`connect_timeout` and `common_http_protocol_options.idle_timeout` (pooled connections).
Server side (`from`, Mesh callers): the inbound HTTP connection manager's
`stream_idle_timeout` and connection `idle_timeout`, the inbound route's `timeout` and
the inbound cluster's `connect_timeout`. "0" disables a timeout (Envoy's 0 duration).
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from gossamer.api.kinds.policies import TimeoutConf
from gossamer.controlplane.translate import envoy as e


def _d(value: float | None) -> object:
    return e.duration(value or 0.0)


def apply_route(
    route: route_components_pb2.Route, conf: TimeoutConf, rule_timeout: float | None
) -> None:
    if rule_timeout is None:
        route.route.timeout.CopyFrom(_d(conf.seconds("request_timeout")))
    route.route.idle_timeout.CopyFrom(_d(conf.seconds("stream_idle_timeout")))


def apply_cluster(cluster: cluster_pb2.Cluster, conf: TimeoutConf) -> None:
    connect = conf.seconds("connect_timeout")
    if connect:  # Envoy requires a positive connect timeout
        cluster.connect_timeout.CopyFrom(e.duration(connect))
    cluster.common_http_protocol_options.idle_timeout.CopyFrom(_d(conf.seconds("idle_timeout")))


def apply_tcp(proxy: tcp_proxy_pb2.TcpProxy, conf: TimeoutConf) -> None:
    """A TCP port (either side): only idleTimeout applies to the relayed connection."""
    proxy.idle_timeout.CopyFrom(_d(conf.seconds("idle_timeout")))


def apply_inbound(
    hcm: hcm_pb2.HttpConnectionManager,
    route: route_components_pb2.Route,
    cluster: cluster_pb2.Cluster,
    conf: TimeoutConf,
) -> None:
    hcm.stream_idle_timeout.CopyFrom(_d(conf.seconds("stream_idle_timeout")))
    hcm.common_http_protocol_options.idle_timeout.CopyFrom(_d(conf.seconds("idle_timeout")))
    route.route.timeout.CopyFrom(_d(conf.seconds("request_timeout")))
    connect = conf.seconds("connect_timeout")
    if connect:
        cluster.connect_timeout.CopyFrom(e.duration(connect))
