"""Every response flag the sidecar emits (grep `flag(` and `_local(` in proxy/io), as a
sentence an operator can act on. The codes follow Envoy's %RESPONSE_FLAGS% where Envoy
has one."""

from __future__ import annotations

from typing import Final

FLAGS: Final[dict[str, str]] = {
    "NR": "No route: no virtual host or route of the caller's sidecar matched the "
    "request's authority, method, path and headers (check the host:port the app calls, "
    "and the HTTPRoute matches; `gossamer explain` shows which routes exist).",
    "NC": "No cluster: the route names a cluster the sidecar does not have (a backend "
    "service or port that does not exist, or config still propagating).",
    "UH": "No healthy upstream: every endpoint of the chosen backend is unhealthy, "
    "ejected by outlier detection or failing its health checks, or the service has no "
    "endpoints at all (`gossamer get endpoints`).",
    "UF": "Upstream connection failure: the sidecar could not connect to the endpoint "
    "(refused, unreachable, timed out, or the mTLS handshake failed) after trying other "
    "endpoints.",
    "UC": "Upstream connection termination: the upstream closed or reset the connection "
    "before the response was complete.",
    "UO": "Upstream overflow: a circuit breaker limit (max connections, pending or "
    "active requests, or retries) was reached, so the request was refused at once "
    "(see the CircuitBreakerPolicy).",
    "UT": "Upstream request timeout: the route's timeout (or the retry policy's per-try "
    "timeout) expired before the response arrived (see the TimeoutPolicy or the route's "
    "timeouts).",
    "SI": "Stream idle timeout: the client stopped sending the request (its head or body) "
    "for longer than the idle timeout.",
    "DC": "Downstream connection termination: the client went away before the response "
    "was complete.",
    "DPE": "Downstream protocol error: the client sent a malformed HTTP request.",
    "UPE": "Upstream protocol error: the upstream answered with a malformed HTTP response.",
    "RBAC": "Denied by authorization: a TrafficPermission or TrafficTarget (or the Mesh "
    "defaultAccess: deny) refused the caller's identity for this request at the "
    "destination's sidecar (403; the x-gossamer-authz header names the policy).",
    "RL": "Rate limited: the destination's local rate limit (RateLimitPolicy) refused the "
    "request (429) or the connection.",
    "FI": "Fault injected: a FaultInjectionPolicy aborted the request on purpose.",
    "DI": "Delay injected: a FaultInjectionPolicy delayed the request on purpose.",
    "IDLE": "Idle timeout: a TCP connection carried no bytes for the idle timeout and was closed.",
}


def explain_flags(text: str) -> list[tuple[str, str]]:
    """(flag, sentence) for each flag of `text` ("UH" or "UF,URX"); ValueError for an
    unknown one, naming the known ones."""
    out = []
    for flag in (f.strip().upper() for f in text.split(",")):
        if not flag:
            continue
        if flag not in FLAGS:
            raise ValueError(f"unknown flag {flag!r}; known: {', '.join(sorted(FLAGS))}")
        out.append((flag, FLAGS[flag]))
    if not out:
        raise ValueError("no flag given")
    return out
