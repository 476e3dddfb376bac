"""HealthCheckPolicy → the cluster's `health_checks` (one active check per cluster).

The calling sidecars run the checks against every endpoint (proxy/filters/health.py)
and report the results to the control plane, which shows them in `gossamer get
endpoints`. TCP payloads are hex text, as in Envoy.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2, health_check_pb2
from envoy.type.v3 import range_pb2

from gossamer.api.kinds.policies import HealthCheckConf
from gossamer.api.model import parse_duration
from gossamer.controlplane.translate import envoy as e


def health_check(conf: HealthCheckConf) -> health_check_pb2.HealthCheck:
    hc = health_check_pb2.HealthCheck(
        timeout=e.duration(conf.timeout_seconds()),
        interval=e.duration(conf.interval_seconds()),
        healthy_threshold=e.u32(conf.healthy_threshold),
        unhealthy_threshold=e.u32(conf.unhealthy_threshold),
    )
    if conf.interval_jitter:
        hc.interval_jitter.CopyFrom(e.duration(parse_duration(conf.interval_jitter)))
    if conf.http is not None:
        http = hc.http_health_check
        http.path = conf.http.path
        if conf.http.method != "GET":
            http.method = base_pb2.RequestMethod.Value(conf.http.method)
        http.request_headers_to_add.extend(
            e.header_options([(h.name, h.value) for h in conf.http.headers or ()], append=False)
        )
        for status in conf.http.expected_statuses or ():
            http.expected_statuses.append(range_pb2.Int64Range(start=status, end=status + 1))
    elif conf.tcp is not None:
        tcp = hc.tcp_health_check
        if conf.tcp.send:
            tcp.send.text = conf.tcp.send.encode().hex()
        if conf.tcp.receive:
            tcp.receive.add(text=conf.tcp.receive.encode().hex())
    elif conf.grpc is not None:
        grpc = hc.grpc_health_check
        grpc.service_name = conf.grpc.service_name or ""
        if conf.grpc.authority:
            grpc.authority = conf.grpc.authority
    return hc


def apply(cluster: cluster_pb2.Cluster, conf: HealthCheckConf) -> None:
    del cluster.health_checks[:]
    cluster.health_checks.append(health_check(conf))
