"""RateLimitPolicy → Envoy's local rate limit filter (`envoy.filters.http.local_ratelimit`)
on the selected proxies' inbound HTTP listeners: one token bucket per sidecar holding
`requests` tokens, refilled with `requests` every `interval`. Limited requests get the
configured status (429) with `x-ratelimit-*` headers (draft 03) and `retry-after`.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2
from envoy.extensions.common.ratelimit.v3 import ratelimit_pb2
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2 as lrl_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.local_ratelimit.v3 import (
    local_rate_limit_pb2 as net_lrl_pb2,
)
from envoy.type.v3 import http_status_pb2, percent_pb2, token_bucket_pb2

from gossamer.api.kinds.policies import HttpLocalRateLimit, TcpLocalRateLimit
from gossamer.controlplane.translate import envoy as e

FILTER_NAME = "envoy.filters.http.local_ratelimit"
NETWORK_FILTER_NAME = "envoy.filters.network.local_ratelimit"
_ALL = base_pb2.RuntimeFractionalPercent(
    default_value=percent_pb2.FractionalPercent(
        numerator=100, denominator=percent_pb2.FractionalPercent.HUNDRED
    )
)


def local_rate_limit(stat_prefix: str, conf: HttpLocalRateLimit) -> lrl_pb2.LocalRateLimit:
    requests = conf.requests or 1
    out = lrl_pb2.LocalRateLimit(
        stat_prefix=stat_prefix,
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=requests,
            tokens_per_fill=e.u32(requests),
            fill_interval=e.duration(conf.interval_seconds() or 1.0),
        ),
        filter_enabled=_ALL,
        filter_enforced=_ALL,
        enable_x_ratelimit_headers=ratelimit_pb2.DRAFT_VERSION_03,
    )
    on = conf.on_rate_limit
    if on is not None:
        out.status.CopyFrom(http_status_pb2.HttpStatus(code=on.status))
        if on.headers is not None:
            out.response_headers_to_add.extend(
                e.header_options([(h.name, h.value) for h in on.headers.set or ()], append=False)
            )
            out.response_headers_to_add.extend(
                e.header_options([(h.name, h.value) for h in on.headers.add or ()], append=True)
            )
    return out


def network_filter(
    stat_prefix: str, conf: TcpLocalRateLimit
) -> listener_components_pb2.Filter | None:
    """`local.tcp` on a TCP inbound listener: new connections per interval."""
    if conf.disabled:
        return None
    connections = conf.connections or 1
    limit = net_lrl_pb2.LocalRateLimit(
        stat_prefix=stat_prefix,
        token_bucket=token_bucket_pb2.TokenBucket(
            max_tokens=connections,
            tokens_per_fill=e.u32(connections),
            fill_interval=e.duration(conf.interval_seconds() or 1.0),
        ),
    )
    return listener_components_pb2.Filter(name=NETWORK_FILTER_NAME, typed_config=e.pack(limit))


def http_filter(stat_prefix: str, conf: HttpLocalRateLimit) -> hcm_pb2.HttpFilter | None:
    if conf.disabled:
        return None
    return hcm_pb2.HttpFilter(
        name=FILTER_NAME, typed_config=e.pack(local_rate_limit(stat_prefix, conf))
    )
