"""RetryPolicy → the route's `retry_policy` (Envoy v3), for the calling proxy's routes.

- `retryOn` conditions keep Envoy's names; listed status codes become
  `retriable-status-codes` + `retriable_status_codes`.
- Only idempotent methods are retried unless `retryNonIdempotent`: Envoy's
  `retriable_request_headers` with a `:method` regex says exactly that.
- `maxBodyBytes` is the route's `per_request_buffer_limit_bytes` (bodies up to it are
  buffered for replay; larger requests are not retried).
- The retry budget has no Envoy field (Envoy's is concurrency-based): it travels in the
  route's `gossamer` metadata, which Envoy and gRPC ignore.
"""

from __future__ import annotations

from typing import Any

from envoy.config.route.v3 import route_components_pb2

from gossamer.api.kinds.policies import IDEMPOTENT_METHODS, RetryConf
from gossamer.api.model import parse_duration
from gossamer.controlplane.translate import envoy as e

IDEMPOTENT_REGEX = "^(" + "|".join(sorted(IDEMPOTENT_METHODS)) + ")$"


def retry_policy(
    conf: RetryConf, per_try_timeout: float | None
) -> route_components_pb2.RetryPolicy:
    conditions = [c for c in conf.retry_on if isinstance(c, str)]
    statuses = sorted(conf.statuses())
    if statuses:
        conditions.append("retriable-status-codes")
    rp = route_components_pb2.RetryPolicy(retry_on=",".join(conditions))
    rp.num_retries.value = conf.num_retries
    if statuses:
        rp.retriable_status_codes.extend(statuses)
    per_try = conf.per_try_timeout_seconds() or per_try_timeout
    if per_try:
        rp.per_try_timeout.CopyFrom(e.duration(per_try))
    rp.retry_back_off.base_interval.CopyFrom(e.duration(conf.backoff.base_seconds()))
    rp.retry_back_off.max_interval.CopyFrom(e.duration(conf.backoff.max_seconds()))
    if not conf.retry_non_idempotent:
        rp.retriable_request_headers.append(e.header_matcher(":method", "regex", IDEMPOTENT_REGEX))
    return rp


def budget_metadata(conf: RetryConf) -> dict[str, Any]:
    budget = conf.budget
    if budget.disabled:
        return {"retry_budget": "off"}
    return {
        "retry_budget_percent": budget.percent,
        "retry_budget_min_per_second": budget.min_retries_per_second,
        "retry_budget_window": parse_duration(budget.window),
    }


def apply(
    route: route_components_pb2.Route, conf: RetryConf, per_try_timeout: float | None
) -> None:
    if conf.num_retries <= 0:
        return
    route.route.retry_policy.CopyFrom(retry_policy(conf, per_try_timeout))
    if conf.max_body_bytes:
        route.per_request_buffer_limit_bytes.value = conf.max_body_bytes
    route.metadata.filter_metadata["gossamer"].update(budget_metadata(conf))
