"""Small constructors for Envoy v3 messages, so translation code reads like the config."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from google.protobuf import any_pb2, duration_pb2, struct_pb2, wrappers_pb2
from google.protobuf.message import Message

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
TYPE_URLS = (LISTENER, ROUTE, CLUSTER, ENDPOINT, SECRET)

INBOUND, OUTBOUND = 1, 2  # core.TrafficDirection


def pack(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def u32(value: int) -> wrappers_pb2.UInt32Value:
    return wrappers_pb2.UInt32Value(value=value)


def ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def socket_address(address: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(
        socket_address=address_pb2.SocketAddress(address=address, port_value=port)
    )


def metadata(values: Mapping[str, Any]) -> base_pb2.Metadata:
    struct = struct_pb2.Struct()
    struct.update(dict(values))
    meta = base_pb2.Metadata()
    meta.filter_metadata["gossamer"].CopyFrom(struct)
    return meta


# --- matchers ----------------------------------------------------------------------------


def string_matcher(kind: str, value: str = "", ignore_case: bool = False) -> Any:
    if kind == "regex":
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=value))
    return string_pb2.StringMatcher(**{kind: value}, ignore_case=ignore_case)


def header_matcher(name: str, kind: str, value: str = "", invert: bool = False) -> Any:
    if kind == "present":
        return route_components_pb2.HeaderMatcher(
            name=name, present_match=True, invert_match=invert
        )
    return route_components_pb2.HeaderMatcher(
        name=name, string_match=string_matcher(kind, value), invert_match=invert
    )


def query_matcher(name: str, kind: str, value: str = "") -> Any:
    if kind == "present":
        return route_components_pb2.QueryParameterMatcher(name=name, present_match=True)
    return route_components_pb2.QueryParameterMatcher(
        name=name, string_match=string_matcher(kind, value)
    )


def header_options(pairs: Iterable[tuple[str, str]], append: bool) -> list[Any]:
    action = (
        base_pb2.HeaderValueOption.APPEND_IF_EXISTS_OR_ADD
        if append
        else base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    )
    return [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=k, value=v), append_action=action
        )
        for k, v in pairs
    ]


# --- listeners ---------------------------------------------------------------------------


def router_filter() -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(
        name="envoy.filters.http.router", typed_config=pack(router_pb2.Router())
    )


def http_connection_manager(
    stat_prefix: str,
    *,
    rds: str | None = None,
    route_config: route_pb2.RouteConfiguration | None = None,
    filters: Iterable[hcm_pb2.HttpFilter] = (),
    forward_proxy: bool = False,
) -> hcm_pb2.HttpConnectionManager:
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=stat_prefix,
        codec_type=hcm_pb2.HttpConnectionManager.AUTO,
        http_filters=[*filters, router_filter()],
    )
    if rds is not None:
        hcm.rds.CopyFrom(hcm_pb2.Rds(config_source=ads(), route_config_name=rds))
    elif route_config is not None:
        hcm.route_config.CopyFrom(route_config)
    if forward_proxy:
        hcm.http_protocol_options.allow_absolute_url.value = True
    return hcm


def listener(
    name: str,
    address: str,
    port: int,
    direction: int,
    network_filter: Message,
    filter_name: str,
    transport_socket: Any = None,
) -> listener_pb2.Listener:
    chain = listener_components_pb2.FilterChain(
        filters=[
            listener_components_pb2.Filter(name=filter_name, typed_config=pack(network_filter))
        ]
    )
    if transport_socket is not None:
        chain.transport_socket.CopyFrom(transport_socket)
    return listener_pb2.Listener(
        name=name,
        address=socket_address(address, port),
        traffic_direction=direction,
        filter_chains=[chain],
    )


def http_listener(
    name: str, address: str, port: int, direction: int, hcm: hcm_pb2.HttpConnectionManager
) -> listener_pb2.Listener:
    return listener(
        name, address, port, direction, hcm, "envoy.filters.network.http_connection_manager"
    )


def tcp_proxy(stat_prefix: str, clusters: Iterable[tuple[str, int]]) -> tcp_proxy_pb2.TcpProxy:
    weighted = [(n, w) for n, w in clusters if w > 0]
    if len(weighted) == 1:
        return tcp_proxy_pb2.TcpProxy(stat_prefix=stat_prefix, cluster=weighted[0][0])
    return tcp_proxy_pb2.TcpProxy(
        stat_prefix=stat_prefix,
        weighted_clusters=tcp_proxy_pb2.TcpProxy.WeightedCluster(
            clusters=[
                tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(name=n, weight=w)
                for n, w in weighted
            ]
        ),
    )


def api_listener(name: str, hcm: hcm_pb2.HttpConnectionManager) -> listener_pb2.Listener:
    """A listener for proxyless gRPC clients: no address, just the HTTP connection manager."""
    out = listener_pb2.Listener(name=name)
    out.api_listener.api_listener.CopyFrom(pack(hcm))
    return out


# --- clusters ----------------------------------------------------------------------------


def eds_cluster(name: str, connect_timeout: float = 5.0, **fields: Any) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ads()),
        connect_timeout=duration(connect_timeout),
        **fields,
    )


def static_cluster(
    name: str, endpoints: Iterable[tuple[str, int]], connect_timeout: float = 5.0, **fields: Any
) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.STATIC,
        connect_timeout=duration(connect_timeout),
        load_assignment=load_assignment(name, [("", [(a, p, True, None) for a, p in endpoints])]),
        **fields,
    )


EndpointSpec = tuple[str, int, bool, Mapping[str, Any] | None]  # address, port, healthy, meta


def load_assignment(
    cluster: str, groups: Iterable[tuple[str, Iterable[EndpointSpec]]]
) -> endpoint_pb2.ClusterLoadAssignment:
    """Endpoints grouped by zone. gRPC clients drop a group without locality and weight."""
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster)
    for zone, endpoints in groups:
        group = endpoint_components_pb2.LocalityLbEndpoints(load_balancing_weight=u32(1))
        group.locality.zone = zone
        for address, port, healthy, meta in endpoints:
            lb = endpoint_components_pb2.LbEndpoint(
                endpoint=endpoint_components_pb2.Endpoint(address=socket_address(address, port)),
                health_status=health_check_pb2.HEALTHY if healthy else health_check_pb2.UNHEALTHY,
            )
            if meta:
                lb.metadata.CopyFrom(metadata(meta))
            group.lb_endpoints.append(lb)
        cla.endpoints.append(group)
    return cla
