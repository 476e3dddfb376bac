"""LoadBalancerPolicy → the cluster's `lb_policy` (+ its options) and the routes'
`hash_policy` for RingHash and Maglev. PeakEWMA has no Envoy equivalent: it is carried
as `metadata.filter_metadata["gossamer"].lb`, which the sidecar honours.

Locality: EDS groups endpoints by zone for every caller alike, so the caller's own
preference travels in its variant of the cluster, as `metadata.filter_metadata
["gossamer"].zone_order` (JSON list): its zone, then the failover zones of the first
rule that applies to it. The sidecar tries those zones in order, then all the others.
"""

from __future__ import annotations

import json

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_components_pb2

from gossamer.api.kinds.policies import LoadBalancerConf

_POLICIES = {
    "RoundRobin": cluster_pb2.Cluster.ROUND_ROBIN,
    "Random": cluster_pb2.Cluster.RANDOM,
    "LeastRequest": cluster_pb2.Cluster.LEAST_REQUEST,
    "PeakEWMA": cluster_pb2.Cluster.LEAST_REQUEST,  # the nearest Envoy has
    "RingHash": cluster_pb2.Cluster.RING_HASH,
    "Maglev": cluster_pb2.Cluster.MAGLEV,
}


def zone_order(conf: LoadBalancerConf, zone: str) -> list[str]:
    order = [zone]
    for rule in conf.locality_aware.failover or ():
        if rule.from_zones is None or zone in rule.from_zones:
            order += [z for z in rule.to_zones if z not in order]
            break
    return order


def apply_cluster(
    cluster: cluster_pb2.Cluster, conf: LoadBalancerConf, zone: str | None = None
) -> None:
    cluster.lb_policy = _POLICIES[conf.algorithm]
    if conf.locality_aware.enabled and zone is not None:
        order = json.dumps(zone_order(conf, zone))
        cluster.metadata.filter_metadata["gossamer"].update({"zone_order": order})
    if conf.algorithm == "PeakEWMA":
        cluster.metadata.filter_metadata["gossamer"].update({"lb": "peak_ewma"})
    if conf.least_request is not None:
        cluster.least_request_lb_config.choice_count.value = conf.least_request.choice_count
    if conf.ring_hash is not None:
        cluster.ring_hash_lb_config.minimum_ring_size.value = conf.ring_hash.min_ring_size
        cluster.ring_hash_lb_config.maximum_ring_size.value = conf.ring_hash.max_ring_size


def apply_route(route: route_components_pb2.Route, conf: LoadBalancerConf) -> None:
    if not conf.hash_based:
        return
    for hp in conf.hash_policies or ():
        out = route.route.hash_policy.add(terminal=hp.terminal)
        if hp.type == "Header":
            out.header.header_name = hp.name or ""
        elif hp.type == "Cookie":
            out.cookie.name = hp.name or ""
        elif hp.type == "QueryParameter":
            out.query_parameter.name = hp.name or ""
        else:
            out.connection_properties.source_ip = True
