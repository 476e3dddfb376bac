"""Minimal xDS resources, in the shapes a proxyless gRPC client accepts."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def listener(name: str, route_name: str) -> listener_pb2.Listener:
    """An API listener (what gRPC looks up by its target's host) using RDS over ADS."""
    hcm = hcm_pb2.HttpConnectionManager(
        stat_prefix=name,
        rds=hcm_pb2.Rds(config_source=_ads(), route_config_name=route_name),
    )
    router = hcm.http_filters.add(name="envoy.filters.http.router")
    router.typed_config.Pack(router_pb2.Router())
    out = listener_pb2.Listener(name=name)
    out.api_listener.api_listener.Pack(hcm)
    assert isinstance(out.api_listener, api_listener_pb2.ApiListener)
    return out


def route(name: str, domain: str, cluster: str) -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(
        name=name,
        virtual_hosts=[
            route_components_pb2.VirtualHost(
                name=domain,
                domains=[domain],
                routes=[
                    route_components_pb2.Route(
                        match=route_components_pb2.RouteMatch(prefix=""),
                        route=route_components_pb2.RouteAction(cluster=cluster),
                    )
                ],
            )
        ],
    )


def cluster(name: str) -> cluster_pb2.Cluster:
    out = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
    )
    out.eds_cluster_config.eds_config.CopyFrom(_ads())
    out.connect_timeout.seconds = 1
    return out


def endpoints(
    cluster_name: str, *ports: int, host: str = "127.0.0.1"
) -> endpoint_pb2.ClusterLoadAssignment:
    """One locality (gRPC drops a group without locality and load_balancing_weight)."""
    group = endpoint_components_pb2.LocalityLbEndpoints(
        locality=base_pb2.Locality(region="local", zone="a"),
        priority=0,
    )
    group.load_balancing_weight.value = 1
    for port in ports:
        group.lb_endpoints.add().endpoint.address.CopyFrom(
            address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address=host, port_value=port)
            )
        )
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name, endpoints=[group])


def secret(name: str, value: str = "x") -> secret_pb2.Secret:
    return secret_pb2.Secret(
        name=name,
        generic_secret=secret_pb2.GenericSecret(secret=base_pb2.DataSource(inline_string=value)),
    )
