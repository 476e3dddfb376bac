"""CircuitBreakerPolicy → the cluster's `circuit_breakers` and `outlier_detection`.

Connection limits become the default-priority thresholds. Outlier detection maps field
for field; a detector set to 0 is not enforced (`enforcing_* = 0`), and the consecutive
gateway-error detector, off by default in Envoy, is enforced when given a count.
"""

from __future__ import annotations

from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2

from gossamer.api.kinds.policies import CircuitBreakerConf
from gossamer.api.model import parse_duration
from gossamer.controlplane.translate import envoy as e


def apply(cluster: cluster_pb2.Cluster, conf: CircuitBreakerConf) -> None:
    limits = conf.connection_limits
    t = circuit_breaker_pb2.CircuitBreakers.Thresholds(
        max_connections=e.u32(limits.max_connections),
        max_pending_requests=e.u32(limits.max_pending_requests),
        max_requests=e.u32(limits.max_requests),
    )
    if limits.max_retries is not None:
        t.max_retries.value = limits.max_retries
    cluster.circuit_breakers.CopyFrom(circuit_breaker_pb2.CircuitBreakers(thresholds=[t]))
    od = conf.outlier_detection
    if od.disabled:
        cluster.ClearField("outlier_detection")
        return
    out = outlier_detection_pb2.OutlierDetection(
        interval=e.duration(parse_duration(od.interval)),
        base_ejection_time=e.duration(parse_duration(od.base_ejection_time)),
        max_ejection_time=e.duration(parse_duration(od.max_ejection_time)),
        max_ejection_percent=e.u32(round(od.max_ejection_percent)),
    )
    if od.consecutive_5xx:
        out.consecutive_5xx.value = od.consecutive_5xx
    else:
        out.enforcing_consecutive_5xx.value = 0
    if od.consecutive_gateway_errors:
        out.consecutive_gateway_failure.value = od.consecutive_gateway_errors
        out.enforcing_consecutive_gateway_failure.value = 100
    if od.success_rate is not None:
        sr = od.success_rate
        out.success_rate_minimum_hosts.value = sr.minimum_hosts
        out.success_rate_request_volume.value = sr.request_volume
        out.success_rate_stdev_factor.value = round(sr.stdev_factor * 1000)
    else:
        out.enforcing_success_rate.value = 0
    cluster.outlier_detection.CopyFrom(out)
