"""FaultInjectionPolicy → Envoy's HTTP fault filter (`envoy.filters.http.fault`) on the
selected proxies' inbound HTTP listeners: delays and aborts, each with a percentage
(in millionths, so 0.1% is exact), optionally only for requests matching headers.
"""

from __future__ import annotations

from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.type.v3 import percent_pb2

from gossamer.api.kinds.policies import FaultInjectionConf
from gossamer.api.model import parse_duration
from gossamer.controlplane.translate import envoy as e

FILTER_NAME = "envoy.filters.http.fault"
_KINDS = {"Exact": "exact", "RegularExpression": "regex", "Present": "present"}


def percent(value: float) -> percent_pb2.FractionalPercent:
    return percent_pb2.FractionalPercent(
        numerator=round(value * 10_000), denominator=percent_pb2.FractionalPercent.MILLION
    )


def fault(conf: FaultInjectionConf) -> fault_pb2.HTTPFault:
    out = fault_pb2.HTTPFault()
    if conf.delay is not None:
        out.delay.fixed_delay.CopyFrom(e.duration(parse_duration(conf.delay.value)))
        out.delay.percentage.CopyFrom(percent(conf.delay.percentage))
    if conf.abort is not None:
        if conf.abort.http_status is not None:
            out.abort.http_status = conf.abort.http_status
        else:
            out.abort.grpc_status = conf.abort.grpc_status or 0
        out.abort.percentage.CopyFrom(percent(conf.abort.percentage))
    for h in conf.headers or ():
        out.headers.append(e.header_matcher(h.name.lower(), _KINDS[h.type], h.value or ""))
    return out


def http_filter(conf: FaultInjectionConf) -> hcm_pb2.HttpFilter:
    return hcm_pb2.HttpFilter(name=FILTER_NAME, typed_config=e.pack(fault(conf)))
