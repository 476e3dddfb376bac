"""Active health checking: the per-endpoint state machine (pure; io/health.py probes).

An endpoint starts healthy (EDS already says it is up). `unhealthy_threshold` failed
checks in a row take it out of balancing; `healthy_threshold` passed checks in a row
bring it back. Availability folds EDS health, outlier ejection and this together
(EndpointState.refresh), so a pick never looks at any of them separately.
"""

from __future__ import annotations

from gossamer.proxy.config import model as m
from gossamer.proxy.filters.balance import EndpointState


def record(ep: EndpointState, ok: bool, cfg: m.HealthCheck) -> bool:
    """Count one check result; True when the endpoint's health changed."""
    if ok:
        ep.hc_failures = 0
        ep.hc_successes += 1
        if ep.hc_failed and ep.hc_successes >= cfg.healthy_threshold:
            ep.hc_failed = False
            ep.refresh()
            return True
        return False
    ep.hc_successes = 0
    ep.hc_failures += 1
    if not ep.hc_failed and ep.hc_failures >= cfg.unhealthy_threshold:
        ep.hc_failed = True
        ep.refresh()
        return True
    return False


def http_ok(cfg: m.HealthCheck, status: int) -> bool:
    return any(start <= status < end for start, end in cfg.expected_statuses)


def grpc_request(service: str) -> bytes:
    """grpc.health.v1.HealthCheckRequest{service}, encoded by hand (field 1, string)."""
    data = service.encode()
    if not data:
        return b""
    size, varint = len(data), bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        varint.append(byte | (0x80 if size else 0))
        if not size:
            break
    return b"\n" + bytes(varint) + data


def grpc_serving(response: bytes) -> bool:
    """HealthCheckResponse{status: SERVING (1)}: field 1, varint 1."""
    return response == b"\x08\x01"
