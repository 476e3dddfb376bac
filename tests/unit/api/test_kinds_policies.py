"""Gossamer's policy kinds: TrafficPermission, Retry-, Timeout-, CircuitBreaker-,
HealthCheck-, FaultInjection-, RateLimit- and LoadBalancerPolicy."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from gossamer.api.errors import ApplyError
from gossamer.api.kinds import policies as p
from gossamer.api.loader import dump_yaml, parse_resources, parse_text, to_document
from gossamer.api.model import Resource, TargetRef
from gossamer.api.registry import resolve

DOCS = Path(__file__).resolve().parents[3] / "docs" / "resources"

# --- helpers -----------------------------------------------------------------------------

DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of doc with the field at `spec.to[0].default.x` set (or deleted)."""
    doc = copy.deepcopy(doc)
    steps: list[str | int] = [
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(path)
    ]
    node: Any = doc
    for step in steps[:-1]:
        node = node[step]
    if value is DELETE:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value
    return doc


def errors_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ApplyError) as info:
        parse_resources([doc])
    return str(info.value).splitlines()


def load(text: str) -> list[Resource]:
    return parse_text(textwrap.dedent(text))


def round_trip(text: str) -> list[dict[str, Any]]:
    first = [to_document(r) for r in load(text)]
    again = [to_document(r) for r in parse_resources(first)]
    assert again == first
    via_yaml = [to_document(r) for r in parse_text(dump_yaml(first))]
    assert via_yaml == first
    return first


# --- one full example per kind -----------------------------------------------------------

EXAMPLES: dict[str, str] = {
    "TrafficPermission": """
        apiVersion: gossamer.io/v1alpha1
        kind: TrafficPermission
        metadata: {name: tp1, namespace: bookstore}
        spec:
          targetRef: {kind: Service, name: bookstore, labels: {version: v1}, port: 8080}
          mode: shadow
          from:
            - targetRef: {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}
              default:
                action: ALLOW
                rules:
                  - methods: [GET, HEAD]
                    paths:
                      - {type: Exact, value: /books-bought}
                      - {value: /api}
                      - {type: RegularExpression, value: ".*a-book.*new"}
                    headers:
                      - {name: client-app, value: bookbuyer}
                      - {name: user-agent, type: RegularExpression, value: ".*-http-client/.*"}
                      - {name: x-debug, type: Present}
            - targetRef: {kind: Namespace, name: bookthief}
              default: {action: DENY}
            - targetRef: {kind: Service, name: bookwarehouse}
              default: {action: ALLOW}
            - targetRef: {kind: Mesh}
              default: {action: DENY}
    """,
    "RetryPolicy": """
        apiVersion: gossamer.io/v1alpha1
        kind: RetryPolicy
        metadata: {name: rp1, namespace: default}
        spec:
          targetRef: {kind: Service, name: magnanimo, labels: {version: v1}}
          to:
            - targetRef: {kind: Service, name: benigno, port: 5000}
              default:
                numRetries: 3
                perTryTimeout: 500ms
                retryOn: [5xx, gateway-error, reset, connect-failure, refused-stream,
                          retriable-4xx, cancelled, deadline-exceeded, resource-exhausted,
                          unavailable, internal, 409, "429"]
                backoff: {baseInterval: 50ms, maxInterval: 1s}
                retryNonIdempotent: true
                maxBodyBytes: 131072
                budget: {disabled: false, percent: 25, minRetriesPerSecond: 5, window: 10s}
            - targetRef: {kind: ExternalService, name: payments-api}
              default: {numRetries: 0}
            - targetRef: {kind: HTTPRoute, name: benigno-hello}
              default: {numRetries: 1}
            - targetRef: {kind: GRPCRoute, name: greeter}
              default: {retryOn: [unavailable]}
            - targetRef: {kind: Mesh}
              default: {}
    """,
    "TimeoutPolicy": """
        apiVersion: gossamer.io/v1alpha1
        kind: TimeoutPolicy
        metadata: {name: to1, namespace: default}
        spec:
          targetRef: {kind: Gateway, name: ingress}
          to:
            - targetRef: {kind: Service, name: benigno}
              default:
                connectTimeout: 1s
                requestTimeout: 2s
                perTryTimeout: 500ms
                idleTimeout: 1h
                streamIdleTimeout: "0"
          from:
            - targetRef: {kind: Mesh}
              default: {requestTimeout: 20s, idleTimeout: 10m, connectTimeout: 250ms}
    """,
    "CircuitBreakerPolicy": """
        apiVersion: gossamer.io/v1alpha1
        kind: CircuitBreakerPolicy
        metadata: {name: cb1, namespace: default}
        spec:
          to:
            - targetRef: {kind: Service, name: benigno}
              default:
                connectionLimits:
                  maxConnections: 100
                  maxPendingRequests: 50
                  maxRequests: 200
                  maxRetries: 10
                outlierDetection:
                  disabled: false
                  interval: 5s
                  baseEjectionTime: 30s
                  maxEjectionTime: 5m
                  maxEjectionPercent: 50
                  consecutive5xx: 5
                  consecutiveGatewayErrors: 3
                  successRate: {minimumHosts: 3, requestVolume: 50, stdevFactor: 1.9}
            - targetRef: {kind: ExternalService, name: payments-api}
              default:
                outlierDetection: {disabled: true}
    """,
    "HealthCheckPolicy": """
        apiVersion: gossamer.io/v1alpha1
        kind: HealthCheckPolicy
        metadata: {name: hc1, namespace: default}
        spec:
          to:
            - targetRef: {kind: Service, name: benigno}
              default:
                interval: 5s
                timeout: 1s
                intervalJitter: 500ms
                healthyThreshold: 2
                unhealthyThreshold: 3
                http:
                  path: /healthz
                  method: HEAD
                  expectedStatuses: [200, 204]
                  headers: [{name: x-probe, value: gossamer}]
            - targetRef: {kind: Service, name: tcp-echo}
              default:
                tcp: {send: "ping\\n", receive: ping}
            - targetRef: {kind: Service, name: greeter}
              default:
                grpc: {serviceName: helloworld.Greeter, authority: greeter.default}
    """,
    "FaultInjectionPolicy": """
        apiVersion: gossamer.io/v1alpha1
        kind: FaultInjectionPolicy
        metadata: {name: fi1, namespace: bookstore}
        spec:
          targetRef: {kind: Service, name: bookstore}
          from:
            - targetRef: {kind: ServiceAccount, name: bookbuyer}
              default:
                delay: {value: 2s, percentage: 10}
                abort: {httpStatus: 503, percentage: 12.5}
                headers: [{name: x-chaos, value: "on"}]
            - targetRef: {kind: Namespace, name: bookwarehouse}
              default:
                abort: {grpcStatus: 14, percentage: 50}
    """,
    "RateLimitPolicy": """
        apiVersion: gossamer.io/v1alpha1
        kind: RateLimitPolicy
        metadata: {name: rl1, namespace: default}
        spec:
          targetRef: {kind: Service, name: benigno, port: 5000}
          from:
            - targetRef: {kind: Mesh}
              default:
                local:
                  http:
                    requests: 100
                    interval: 1s
                    onRateLimit:
                      status: 429
                      headers:
                        set: [{name: retry-after, value: "1"}]
                        add: [{name: x-rate-limited-by, value: gossamer}]
                  tcp: {connections: 50, interval: 1s}
            - targetRef: {kind: Service, name: magnanimo}
              default:
                local:
                  http: {disabled: true}
                  tcp: {disabled: true}
    """,
    "LoadBalancerPolicy": """
        apiVersion: gossamer.io/v1alpha1
        kind: LoadBalancerPolicy
        metadata: {name: lb1, namespace: default}
        spec:
          targetRef: {kind: Mesh}
          to:
            - targetRef: {kind: Service, name: benigno}
              default:
                algorithm: LeastRequest
                leastRequest: {choiceCount: 3}
                localityAware:
                  enabled: true
                  failover:
                    - {fromZones: [east-1], toZones: [east-2, west-1]}
                    - {toZones: [west-1]}
            - targetRef: {kind: Service, name: cart, port: 8080}
              default:
                algorithm: RingHash
                hashPolicies:
                  - {type: Cookie, name: session, terminal: true}
                  - {type: Header, name: x-user-id}
                  - {type: QueryParameter, name: user}
                  - {type: SourceIP}
                ringHash: {minRingSize: 1024, maxRingSize: 65536}
            - targetRef: {kind: ExternalService, name: payments-api}
              default: {algorithm: Maglev, hashPolicies: [{type: SourceIP}]}
            - targetRef: {kind: Mesh}
              default: {algorithm: PeakEWMA, localityAware: {enabled: false}}
    """,
}

KINDS = list(EXAMPLES)


def example(kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(textwrap.dedent(EXAMPLES[kind]))
    return doc


def ref_of(kind: str) -> str:
    meta = example(kind)["metadata"]
    return f"{kind} {meta['namespace']}/{meta['name']}"


# --- registration ------------------------------------------------------------------------

SHORT = {
    "TrafficPermission": ("tp", "trafficpermissions"),
    "RetryPolicy": ("rp", "retrypolicies"),
    "TimeoutPolicy": ("to", "timeoutpolicies"),
    "CircuitBreakerPolicy": ("cb", "circuitbreakerpolicies"),
    "HealthCheckPolicy": ("hc", "healthcheckpolicies"),
    "FaultInjectionPolicy": ("fi", "faultinjectionpolicies"),
    "RateLimitPolicy": ("rl", "ratelimitpolicies"),
    "LoadBalancerPolicy": ("lb", "loadbalancerpolicies"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_kind_is_registered_under_every_name(kind: str) -> None:
    short, plural = SHORT[kind]
    for name in (kind, kind.lower(), short, plural, f"{plural}.gossamer.io"):
        info = resolve(name)
        assert info.kind == kind
        assert info.group == "gossamer.io"
        assert info.versions == ("v1alpha1",)
        assert info.namespaced
        assert info.short_names == (short,)


def test_policy_kinds_lists_every_kind() -> None:
    assert [k.KIND for k in p.POLICY_KINDS] == KINDS


# --- the full examples -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_full_example_round_trips(kind: str) -> None:
    (doc,) = round_trip(EXAMPLES[kind])
    assert doc["apiVersion"] == "gossamer.io/v1alpha1"
    assert doc["kind"] == kind
    # What the user wrote comes back, and nothing else (no defaults filled in).
    written = example(kind)
    assert _same_document(written["spec"], doc["spec"])


def _same_document(written: Any, stored: Any) -> bool:
    """Equal, except that numbers may change type (50 -> 50.0, "429" -> 429)."""
    if isinstance(written, dict):
        assert isinstance(stored, dict) and stored.keys() == written.keys()
        return all(_same_document(written[k], stored[k]) for k in written)
    if isinstance(written, list):
        assert isinstance(stored, list) and len(stored) == len(written)
        return all(_same_document(w, s) for w, s in zip(written, stored, strict=True))
    if isinstance(written, str) and written.isdigit() and isinstance(stored, int):
        return int(written) == stored  # retryOn "429" -> 429
    assert stored == written
    return True


def test_examples_parse_to_typed_objects() -> None:
    (tp,) = load(EXAMPLES["TrafficPermission"])
    assert isinstance(tp, p.TrafficPermission)
    assert tp.spec.mode == "shadow"
    assert tp.spec.target_ref.port == 8080
    assert [e.default.action for e in tp.spec.from_] == ["ALLOW", "DENY", "ALLOW", "DENY"]
    assert tp.entries("to") == ()
    rules = tp.spec.from_[0].default.rules
    assert rules is not None and rules[0].paths is not None
    assert rules[0].paths[1].type == "PathPrefix"  # the default
    assert rules[0].headers is not None and rules[0].headers[0].type == "Exact"

    (rp,) = load(EXAMPLES["RetryPolicy"])
    assert isinstance(rp, p.RetryPolicy)
    conf = rp.spec.to[0].default
    assert conf.num_retries == 3
    assert conf.statuses() == {409, 429}
    assert "5xx" in conf.conditions()
    assert conf.per_try_timeout_seconds() == 0.5
    assert conf.backoff.base_seconds() == 0.05 and conf.backoff.max_seconds() == 1.0
    assert conf.budget.percent == 25.0
    assert rp.entries("from") == ()

    (cb,) = load(EXAMPLES["CircuitBreakerPolicy"])
    assert isinstance(cb, p.CircuitBreakerPolicy)
    outlier = cb.spec.to[0].default.outlier_detection
    assert outlier.consecutive_5xx == 5
    assert outlier.success_rate is not None and outlier.success_rate.stdev_factor == 1.9

    (hc,) = load(EXAMPLES["HealthCheckPolicy"])
    assert isinstance(hc, p.HealthCheckPolicy)
    assert isinstance(hc.spec.to[1].default.check, p.TcpHealthCheck)
    assert hc.spec.to[1].default.tcp is not None
    assert hc.spec.to[1].default.tcp.send == "ping\n"


def test_the_spec_field_from_is_written_from() -> None:
    (tp,) = load(EXAMPLES["TrafficPermission"])
    doc = to_document(tp)
    assert "from" in doc["spec"] and "from_" not in doc["spec"]
    built = p.TrafficPermission.model_validate(
        {
            "metadata": {"name": "in-code"},
            "spec": {"from_": [{"target_ref": {}, "default": {"action": "ALLOW"}}]},
        }
    )
    assert to_document(built)["spec"] == {
        "from": [{"targetRef": {}, "default": {"action": "ALLOW"}}]
    }
    assert built.api_version == "gossamer.io/v1alpha1"


def test_top_level_target_ref_defaults_to_mesh() -> None:
    (rp,) = load(
        """
        apiVersion: gossamer.io/v1alpha1
        kind: RetryPolicy
        metadata: {name: all}
        spec:
          to: [{targetRef: {kind: Mesh}, default: {}}]
        """
    )
    assert rp.spec.target_ref.kind == "Mesh"
    assert "targetRef" not in to_document(rp)["spec"]


def test_every_kind_has_a_json_schema() -> None:
    for kind in p.POLICY_KINDS:
        schema = kind.model_json_schema(by_alias=True)
        assert "spec" in schema["properties"]


def test_percentages_take_integers_and_decimals_but_not_strings() -> None:
    doc = example("FaultInjectionPolicy")
    (fi,) = parse_resources([doc])
    assert isinstance(fi, p.FaultInjectionPolicy)
    delay = fi.spec.from_[0].default.delay
    abort = fi.spec.from_[0].default.abort
    assert delay is not None and delay.percentage == 10.0
    assert abort is not None and abort.percentage == 12.5
    path = "spec.from[0].default.delay.percentage"
    assert f"{ref_of('FaultInjectionPolicy')}: {path}: expected a number, got string '10'" in (
        errors_of(mutate(doc, path, "10"))
    )
    assert f"{ref_of('FaultInjectionPolicy')}: {path}: expected a number, got boolean true" in (
        errors_of(mutate(doc, path, True))
    )


# --- invalid documents: every error names the resource, the path and the reason ----------

# fmt: off
INVALID: list[tuple[str, str, Any, str, str]] = [
    # (kind, field to change, new value, reported path, reason)
    # wrong types
    ("RetryPolicy", "spec.to[0].default.numRetries", "3", "spec.to[0].default.numRetries",
     "expected an integer, got string '3'"),
    ("RetryPolicy", "spec.to[0].default.retryNonIdempotent", "yes",
     "spec.to[0].default.retryNonIdempotent", "expected true or false, got string 'yes'"),
    ("RetryPolicy", "spec.to", "benigno", "spec.to", "expected a list, got string 'benigno'"),
    ("TimeoutPolicy", "spec.to[0].default.requestTimeout", 2, "spec.to[0].default.requestTimeout",
     "expected a string, got integer 2"),
    ("TimeoutPolicy", "spec.to[0].default.requestTimeout", "2 seconds",
     "spec.to[0].default.requestTimeout",
     "must be a duration such as '500ms', '5s' or '1m30s', got '2 seconds'"),
    ("CircuitBreakerPolicy", "spec.to[0].default.outlierDetection.successRate.stdevFactor", "x",
     "spec.to[0].default.outlierDetection.successRate.stdevFactor",
     "expected a number, got string 'x'"),
    ("HealthCheckPolicy", "spec.to[0].default.http.expectedStatuses", 200,
     "spec.to[0].default.http.expectedStatuses", "expected a list, got integer 200"),
    ("RateLimitPolicy", "spec.from[0].default.local.http.requests", 1.5,
     "spec.from[0].default.local.http.requests", "expected an integer, got number 1.5"),
    ("LoadBalancerPolicy", "spec.to[0].default.localityAware.enabled", "true",
     "spec.to[0].default.localityAware.enabled", "expected true or false, got string 'true'"),
    ("TrafficPermission", "spec.from[0].default.rules[0].methods", "GET",
     "spec.from[0].default.rules[0].methods", "expected a list, got string 'GET'"),
    ("FaultInjectionPolicy", "spec.from[0].default.abort.httpStatus", "503",
     "spec.from[0].default.abort.httpStatus", "expected an integer, got string '503'"),
    ("TrafficPermission", "spec.from[0].targetRef.port", "80", "spec.from[0].targetRef.port",
     "expected an integer, got string '80'"),
    # unknown fields
    ("RetryPolicy", "spec.to[0].default.retries", 3, "spec.to[0].default.retries", "unknown field"),
    ("RetryPolicy", "spec.from", [], "spec.from", "unknown field"),
    ("TrafficPermission", "spec.to", [], "spec.to", "unknown field"),
    ("CircuitBreakerPolicy", "spec.to[0].default.connectionLimits.maxRequest", 1,
     "spec.to[0].default.connectionLimits.maxRequest", "unknown field"),
    ("LoadBalancerPolicy", "spec.to[0].targetRef.sectionName", "http",
     "spec.to[0].targetRef.sectionName", "unknown field"),
    ("HealthCheckPolicy", "spec.to[0].default.http.host", "x", "spec.to[0].default.http.host",
     "unknown field"),
    ("FaultInjectionPolicy", "spec.from[0].default.delay.fixedDelay", "1s",
     "spec.from[0].default.delay.fixedDelay", "unknown field"),
    ("RateLimitPolicy", "spec.from[0].default.global", {}, "spec.from[0].default.global",
     "unknown field"),
    ("TimeoutPolicy", "spec.to[0].extra", 1, "spec.to[0].extra", "unknown field"),
    # missing required fields
    ("RetryPolicy", "spec.to", DELETE, "spec.to", "required field is missing"),
    ("RetryPolicy", "spec", DELETE, "spec", "required field is missing"),
    ("TrafficPermission", "spec.from", DELETE, "spec.from", "required field is missing"),
    ("TrafficPermission", "spec.from[0].default.action", DELETE, "spec.from[0].default.action",
     "required field is missing"),
    ("TrafficPermission", "spec.from[0].targetRef", DELETE, "spec.from[0].targetRef",
     "required field is missing"),
    ("RetryPolicy", "spec.to[0].default", DELETE, "spec.to[0].default",
     "required field is missing"),
    ("FaultInjectionPolicy", "spec.from[0].default.delay.value", DELETE,
     "spec.from[0].default.delay.value", "required field is missing"),
    ("FaultInjectionPolicy", "spec.from[0].default.abort.percentage", DELETE,
     "spec.from[0].default.abort.percentage", "required field is missing"),
    ("RateLimitPolicy", "spec.from[0].default.local", DELETE, "spec.from[0].default.local",
     "required field is missing"),
    ("LoadBalancerPolicy", "spec.to[0].default.localityAware.failover[0].toZones", DELETE,
     "spec.to[0].default.localityAware.failover[0].toZones", "required field is missing"),
    ("LoadBalancerPolicy", "spec.to[1].default.hashPolicies[0].type", DELETE,
     "spec.to[1].default.hashPolicies[0].type", "required field is missing"),
    ("TrafficPermission", "spec.from[0].default.rules[0].headers[0].name", DELETE,
     "spec.from[0].default.rules[0].headers[0].name", "required field is missing"),
    # empty lists
    ("RetryPolicy", "spec.to", [], "spec.to", "must have at least 1 item(s)"),
    ("TrafficPermission", "spec.from", [], "spec.from", "must have at least 1 item(s)"),
    ("TimeoutPolicy", "spec.from", [], "spec.from", "must have at least 1 item(s)"),
    ("RetryPolicy", "spec.to[0].default.retryOn", [], "spec.to[0].default.retryOn",
     "must have at least 1 item(s)"),
    ("TrafficPermission", "spec.from[0].default.rules", [], "spec.from[0].default.rules",
     "must have at least 1 item(s)"),
    ("LoadBalancerPolicy", "spec.to[1].default.hashPolicies", [], "spec.to[1].default.hashPolicies",
     "must have at least 1 item(s)"),
    # numbers out of range
    ("RetryPolicy", "spec.to[0].default.numRetries", -1, "spec.to[0].default.numRetries",
     "must be >= 0, got -1"),
    ("RetryPolicy", "spec.to[0].default.maxBodyBytes", -1, "spec.to[0].default.maxBodyBytes",
     "must be >= 0, got -1"),
    ("RetryPolicy", "spec.to[0].default.budget.percent", 120, "spec.to[0].default.budget.percent",
     "must be <= 100, got 120"),
    ("RetryPolicy", "spec.to[0].default.budget.minRetriesPerSecond", -5,
     "spec.to[0].default.budget.minRetriesPerSecond", "must be >= 0, got -5"),
    ("RetryPolicy", "spec.to[0].default.retryOn[11]", 99, "spec.to[0].default.retryOn[11]",
     "HTTP status codes must be 100-599, got 99"),
    ("CircuitBreakerPolicy", "spec.to[0].default.connectionLimits.maxConnections", 0,
     "spec.to[0].default.connectionLimits.maxConnections", "must be >= 1, got 0"),
    ("CircuitBreakerPolicy", "spec.to[0].default.connectionLimits.maxRetries", 0,
     "spec.to[0].default.connectionLimits.maxRetries", "must be >= 1, got 0"),
    ("CircuitBreakerPolicy", "spec.to[0].default.outlierDetection.maxEjectionPercent", -1,
     "spec.to[0].default.outlierDetection.maxEjectionPercent", "must be >= 0, got -1"),
    ("CircuitBreakerPolicy", "spec.to[0].default.outlierDetection.consecutive5xx", -1,
     "spec.to[0].default.outlierDetection.consecutive5xx", "must be >= 0, got -1"),
    ("CircuitBreakerPolicy", "spec.to[0].default.outlierDetection.successRate.stdevFactor", 0,
     "spec.to[0].default.outlierDetection.successRate.stdevFactor", "must be > 0, got 0"),
    ("HealthCheckPolicy", "spec.to[0].default.healthyThreshold", 0,
     "spec.to[0].default.healthyThreshold", "must be >= 1, got 0"),
    ("HealthCheckPolicy", "spec.to[0].default.http.expectedStatuses[1]", 99,
     "spec.to[0].default.http.expectedStatuses[1]", "must be >= 100, got 99"),
    ("FaultInjectionPolicy", "spec.from[0].default.abort.httpStatus", 199,
     "spec.from[0].default.abort.httpStatus", "must be >= 200, got 199"),
    ("FaultInjectionPolicy", "spec.from[1].default.abort.grpcStatus", 17,
     "spec.from[1].default.abort.grpcStatus", "must be <= 16, got 17"),
    ("FaultInjectionPolicy", "spec.from[0].default.delay.percentage", 100.5,
     "spec.from[0].default.delay.percentage", "must be <= 100, got 100.5"),
    ("RateLimitPolicy", "spec.from[0].default.local.http.requests", 0,
     "spec.from[0].default.local.http.requests", "must be >= 1, got 0"),
    ("RateLimitPolicy", "spec.from[0].default.local.tcp.connections", -1,
     "spec.from[0].default.local.tcp.connections", "must be >= 1, got -1"),
    ("RateLimitPolicy", "spec.from[0].default.local.http.onRateLimit.status", 600,
     "spec.from[0].default.local.http.onRateLimit.status", "must be <= 599, got 600"),
    ("LoadBalancerPolicy", "spec.to[0].default.leastRequest.choiceCount", 1,
     "spec.to[0].default.leastRequest.choiceCount", "must be >= 2, got 1"),
    ("LoadBalancerPolicy", "spec.to[1].default.ringHash.maxRingSize", 8388609,
     "spec.to[1].default.ringHash.maxRingSize", "must be <= 8388608, got 8388609"),
    ("TrafficPermission", "spec.targetRef.port", 0, "spec.targetRef.port", "must be >= 1, got 0"),
    # durations that must be > 0
    ("RetryPolicy", "spec.to[0].default.backoff.baseInterval", "0",
     "spec.to[0].default.backoff.baseInterval", "must be a duration greater than 0, got '0'"),
    ("HealthCheckPolicy", "spec.to[0].default.interval", "0s", "spec.to[0].default.interval",
     "must be a duration greater than 0, got '0s'"),
    ("FaultInjectionPolicy", "spec.from[0].default.delay.value", "0ms",
     "spec.from[0].default.delay.value", "must be a duration greater than 0, got '0ms'"),
    ("CircuitBreakerPolicy", "spec.to[0].default.outlierDetection.interval", "0",
     "spec.to[0].default.outlierDetection.interval", "must be a duration greater than 0, got '0'"),
    # bad enums
    ("TrafficPermission", "spec.mode", "audit", "spec.mode",
     "must be one of 'enforce' or 'shadow', got 'audit'"),
    ("TrafficPermission", "spec.from[0].default.action", "allow", "spec.from[0].default.action",
     "must be one of 'ALLOW' or 'DENY', got 'allow'"),
    ("TrafficPermission", "spec.from[0].default.rules[0].paths[0].type", "Prefix",
     "spec.from[0].default.rules[0].paths[0].type",
     "must be one of 'Exact', 'PathPrefix' or 'RegularExpression', got 'Prefix'"),
    ("TrafficPermission", "spec.from[0].default.rules[0].methods[0]", "get",
     "spec.from[0].default.rules[0].methods[0]",
     "must be one of 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE' or "
     "'PATCH', got 'get'"),
    ("TrafficPermission", "spec.from[0].targetRef.kind", "Pod", "spec.from[0].targetRef.kind",
     "must be one of 'Mesh', 'Service', 'HTTPRoute', 'GRPCRoute', 'TCPRoute', "
     "'ExternalService', 'Gateway', 'Namespace' or 'ServiceAccount', got 'Pod'"),
    ("RetryPolicy", "spec.to[0].default.retryOn[0]", "5XX", "spec.to[0].default.retryOn[0]",
     "must be one of 5xx, gateway-error, reset, connect-failure, refused-stream, "
     "retriable-4xx, cancelled, deadline-exceeded, resource-exhausted, unavailable, internal "
     "or an HTTP status code, got '5XX'"),
    ("RetryPolicy", "spec.to[0].default.retryOn[0]", 5.5, "spec.to[0].default.retryOn[0]",
     "must be one of 5xx, gateway-error, reset, connect-failure, refused-stream, "
     "retriable-4xx, cancelled, deadline-exceeded, resource-exhausted, unavailable, internal "
     "or an HTTP status code, got number 5.5"),
    ("HealthCheckPolicy", "spec.to[0].default.http.method", "FETCH",
     "spec.to[0].default.http.method",
     "must be one of 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE' or "
     "'PATCH', got 'FETCH'"),
    ("LoadBalancerPolicy", "spec.to[0].default.algorithm", "LeastConn",
     "spec.to[0].default.algorithm",
     "must be one of 'RoundRobin', 'Random', 'LeastRequest', 'PeakEWMA', 'RingHash' or "
     "'Maglev', got 'LeastConn'"),
    ("LoadBalancerPolicy", "spec.to[1].default.hashPolicies[0].type", "Query",
     "spec.to[1].default.hashPolicies[0].type",
     "must be one of 'Header', 'Cookie', 'SourceIP' or 'QueryParameter', got 'Query'"),
    ("FaultInjectionPolicy", "spec.from[0].default.headers[0].type", "Prefix",
     "spec.from[0].default.headers[0].type",
     "must be one of 'Exact', 'RegularExpression' or 'Present', got 'Prefix'"),
    # other single-field checks
    ("TrafficPermission", "spec.from[0].default.rules[0].headers[0].name", "client app",
     "spec.from[0].default.rules[0].headers[0].name",
     "must be an HTTP header name such as 'x-user', got 'client app'"),
    ("TrafficPermission", "spec.from[1].targetRef.namespace", "Bad_NS",
     "spec.from[1].targetRef.namespace",
     "must be a DNS label (lowercase letters, digits and '-', at most 63), got 'Bad_NS'"),
    ("RateLimitPolicy", "spec.from[0].default.local.http.onRateLimit.headers.set[0].name", "a:b",
     "spec.from[0].default.local.http.onRateLimit.headers.set[0].name",
     "must be an HTTP header name such as 'x-user', got 'a:b'"),
]
# fmt: on


@pytest.mark.parametrize(
    ("kind", "field", "value", "path", "reason"),
    INVALID,
    ids=[f"{k}:{f}={v!r}" if v is not DELETE else f"{k}:-{f}" for k, f, v, _, _ in INVALID],
)
def test_invalid_field_is_reported(
    kind: str, field: str, value: Any, path: str, reason: str
) -> None:
    lines = errors_of(mutate(example(kind), field, value))
    assert f"{ref_of(kind)}: {path}: {reason}" in lines, lines


# --- semantic rules (checked once the shape is right) ------------------------------------

# fmt: off
SEMANTIC: list[tuple[str, str, Any, str, str]] = [
    # targetRef: name required, kinds per position, labels/port/namespace
    ("RetryPolicy", "spec.to[0].targetRef", {"kind": "Service"}, "spec.to[0].targetRef.name",
     "required when kind is Service"),
    ("TrafficPermission", "spec.targetRef", {"kind": "HTTPRoute", "name": "r"},
     "spec.targetRef.kind", "must be Mesh or Service for a TrafficPermission, got HTTPRoute"),
    ("TrafficPermission", "spec.targetRef", {"kind": "Gateway", "name": "g"}, "spec.targetRef.kind",
     "must be Mesh or Service for a TrafficPermission, got Gateway"),
    ("TrafficPermission", "spec.from[0].targetRef", {"kind": "HTTPRoute", "name": "r"},
     "spec.from[0].targetRef.kind",
     "must be Mesh, Service, Namespace or ServiceAccount in from entries of a "
     "TrafficPermission, got HTTPRoute"),
    ("RetryPolicy", "spec.targetRef", {"kind": "HTTPRoute", "name": "r"}, "spec.targetRef.kind",
     "must be Mesh, Service or Gateway for a RetryPolicy, got HTTPRoute"),
    ("RetryPolicy", "spec.to[0].targetRef", {"kind": "Namespace", "name": "n"},
     "spec.to[0].targetRef.kind",
     "must be Mesh, Service, ExternalService, HTTPRoute or GRPCRoute in to entries of a "
     "RetryPolicy, got Namespace"),
    ("TimeoutPolicy", "spec.from[0].targetRef", {"kind": "Service", "name": "s"},
     "spec.from[0].targetRef.kind", "must be Mesh in from entries of a TimeoutPolicy, got Service"),
    ("CircuitBreakerPolicy", "spec.to[0].targetRef", {"kind": "HTTPRoute", "name": "r"},
     "spec.to[0].targetRef.kind",
     "must be Mesh, Service or ExternalService in to entries of a CircuitBreakerPolicy, got "
     "HTTPRoute"),
    ("HealthCheckPolicy", "spec.to[0].targetRef", {"kind": "GRPCRoute", "name": "r"},
     "spec.to[0].targetRef.kind",
     "must be Mesh, Service or ExternalService in to entries of a HealthCheckPolicy, got "
     "GRPCRoute"),
    ("LoadBalancerPolicy", "spec.targetRef", {"kind": "ExternalService", "name": "e"},
     "spec.targetRef.kind",
     "must be Mesh, Service or Gateway for a LoadBalancerPolicy, got ExternalService"),
    ("FaultInjectionPolicy", "spec.targetRef", {"kind": "Gateway", "name": "g"},
     "spec.targetRef.kind", "must be Mesh or Service for a FaultInjectionPolicy, got Gateway"),
    ("RateLimitPolicy", "spec.targetRef", {"kind": "TCPRoute", "name": "t"}, "spec.targetRef.kind",
     "must be Mesh, Service, HTTPRoute or GRPCRoute for a RateLimitPolicy, got TCPRoute"),
    ("RateLimitPolicy", "spec.from[0].targetRef", {"kind": "ExternalService", "name": "e"},
     "spec.from[0].targetRef.kind",
     "must be Mesh, Service, Namespace or ServiceAccount in from entries of a "
     "RateLimitPolicy, got ExternalService"),
    ("RetryPolicy", "spec.targetRef", {"kind": "Service", "name": "m", "port": 80},
     "spec.targetRef.port",
     "not allowed here: spec.targetRef selects proxies; put the port in to[].targetRef"),
    ("RetryPolicy", "spec.to[0].targetRef", {"kind": "Service", "name": "b", "labels": {"v": "2"}},
     "spec.to[0].targetRef.labels",
     "not allowed here: a to entry selects whole services; define a Service with a narrower "
     "selector instead"),
    ("TrafficPermission", "spec.from[2].targetRef",
     {"kind": "Service", "name": "b", "labels": {"v": "2"}}, "spec.from[2].targetRef.labels",
     "not allowed here: callers are selected by identity, not by labels"),
    ("TrafficPermission", "spec.from[2].targetRef", {"kind": "Service", "name": "b", "port": 80},
     "spec.from[2].targetRef.port", "not allowed here: callers are not selected by port"),
    ("TrafficPermission", "spec.from[3].targetRef", {"kind": "Mesh", "labels": {"a": "b"}},
     "spec.from[3].targetRef.labels", "not allowed when kind is Mesh"),
    ("TrafficPermission", "spec.from[0].targetRef",
     {"kind": "ServiceAccount", "name": "a", "labels": {"a": "b"}}, "spec.from[0].targetRef.labels",
     "only allowed when kind is Service"),
    ("RetryPolicy", "spec.to[1].targetRef", {"kind": "ExternalService", "name": "e", "port": 443},
     "spec.to[1].targetRef.port", "only allowed when kind is Service"),
    ("TrafficPermission", "spec.from[1].targetRef",
     {"kind": "Namespace", "name": "a", "namespace": "b"}, "spec.from[1].targetRef.namespace",
     "not allowed when kind is Namespace"),
    ("RetryPolicy", "spec.to[4].targetRef", {"kind": "Mesh", "namespace": "b"},
     "spec.to[4].targetRef.namespace", "not allowed when kind is Mesh"),
    # TimeoutPolicy
    ("TimeoutPolicy", "spec", {"targetRef": {"kind": "Mesh"}}, "spec",
     "needs at least one of to and from"),
    ("TimeoutPolicy", "spec.from[0].default.perTryTimeout", "1s",
     "spec.from[0].default.perTryTimeout", "only applies to outbound calls (to entries)"),
    ("TimeoutPolicy", "spec.to[0].default.perTryTimeout", "3s", "spec.to[0].default.perTryTimeout",
     "must not exceed requestTimeout (2s), got 3s"),
    # RetryPolicy
    ("RetryPolicy", "spec.to[0].default.backoff", {"baseInterval": "1s", "maxInterval": "500ms"},
     "spec.to[0].default.backoff.maxInterval", "must be >= baseInterval (1s), got 500ms"),
    ("RetryPolicy", "spec.to[0].default.retryOn", ["5xx", 503, "5xx"],
     "spec.to[0].default.retryOn[2]", "'5xx' is listed twice"),
    ("RetryPolicy", "spec.to[0].default.retryOn", [503, "503"], "spec.to[0].default.retryOn[1]",
     "503 is listed twice"),
    # CircuitBreakerPolicy
    ("CircuitBreakerPolicy", "spec.to[0].default.outlierDetection.maxEjectionTime", "10s",
     "spec.to[0].default.outlierDetection.maxEjectionTime",
     "must be >= baseEjectionTime (30s), got 10s"),
    ("CircuitBreakerPolicy", "spec.to[1].default", {}, "spec.to[1].default",
     "needs at least one of connectionLimits and outlierDetection"),
    # HealthCheckPolicy
    ("HealthCheckPolicy", "spec.to[0].default.timeout", "5s", "spec.to[0].default.timeout",
     "must be less than interval (5s), got 5s"),
    ("HealthCheckPolicy", "spec.to[0].default.tcp", {}, "spec.to[0].default",
     "needs exactly one of http, tcp and grpc, got http and tcp"),
    ("HealthCheckPolicy", "spec.to[2].default", {"interval": "5s"}, "spec.to[2].default",
     "needs exactly one of http, tcp and grpc"),
    ("HealthCheckPolicy", "spec.to[0].default.http.path", "healthz", "spec.to[0].default.http.path",
     "must start with '/', got 'healthz'"),
    # FaultInjectionPolicy
    ("FaultInjectionPolicy", "spec.from[1].default", {"headers": [{"name": "x"}]},
     "spec.from[1].default", "needs at least one of delay and abort"),
    ("FaultInjectionPolicy", "spec.from[1].default.abort",
     {"httpStatus": 503, "grpcStatus": 14, "percentage": 1}, "spec.from[1].default.abort",
     "needs exactly one of httpStatus and grpcStatus"),
    ("FaultInjectionPolicy", "spec.from[1].default.abort", {"percentage": 1},
     "spec.from[1].default.abort", "needs exactly one of httpStatus and grpcStatus"),
    ("FaultInjectionPolicy", "spec.from[0].default.headers",
     [{"name": "x", "type": "Present", "value": "1"}], "spec.from[0].default.headers[0].value",
     "not allowed when type is Present"),
    ("FaultInjectionPolicy", "spec.from[0].default.headers", [{"name": "x"}],
     "spec.from[0].default.headers[0].value", "required when type is Exact"),
    ("FaultInjectionPolicy", "spec.from[0].default.headers",
     [{"name": "x", "type": "RegularExpression", "value": "a("}],
     "spec.from[0].default.headers[0].value",
     "'a(' is not a valid regular expression: missing ), unterminated subpattern at "
     "position 1"),
    # TrafficPermission rules
    ("TrafficPermission", "spec.from[0].default.rules", [{}], "spec.from[0].default.rules[0]",
     "needs at least one of methods, paths and headers"),
    ("TrafficPermission", "spec.from[0].default.rules[0].paths", [{"value": "api"}],
     "spec.from[0].default.rules[0].paths[0].value", "must start with '/', got 'api'"),
    ("TrafficPermission", "spec.from[0].default.rules[0].paths",
     [{"type": "RegularExpression", "value": "(["}], "spec.from[0].default.rules[0].paths[0].value",
     "'([' is not a valid regular expression: unterminated character set at position 1"),
    ("TrafficPermission", "spec.from[0].default.rules[0].headers", [{"name": "a", "value": None}],
     "spec.from[0].default.rules[0].headers[0].value", "required when type is Exact"),
    # RateLimitPolicy
    ("RateLimitPolicy", "spec.from[0].default.local", {}, "spec.from[0].default.local",
     "needs at least one of http and tcp"),
    ("RateLimitPolicy", "spec.from[0].default.local.http", {"requests": 5},
     "spec.from[0].default.local.http.interval", "required unless disabled is true"),
    ("RateLimitPolicy", "spec.from[0].default.local.tcp", {"interval": "1s"},
     "spec.from[0].default.local.tcp.connections", "required unless disabled is true"),
    ("RateLimitPolicy", "spec.targetRef", {"kind": "HTTPRoute", "name": "benigno-hello"},
     "spec.from[0].default.local.tcp", "not possible when spec.targetRef.kind is HTTPRoute"),
    # LoadBalancerPolicy
    ("LoadBalancerPolicy", "spec.to[1].default.hashPolicies", DELETE,
     "spec.to[1].default.hashPolicies", "required when algorithm is RingHash"),
    ("LoadBalancerPolicy", "spec.to[2].default.hashPolicies", DELETE,
     "spec.to[2].default.hashPolicies", "required when algorithm is Maglev"),
    ("LoadBalancerPolicy", "spec.to[3].default.hashPolicies", [{"type": "SourceIP"}],
     "spec.to[3].default.hashPolicies",
     "only allowed when algorithm is RingHash or Maglev, not PeakEWMA"),
    ("LoadBalancerPolicy", "spec.to[1].default.leastRequest", {"choiceCount": 2},
     "spec.to[1].default.leastRequest",
     "only allowed when algorithm is LeastRequest, not RingHash"),
    ("LoadBalancerPolicy", "spec.to[2].default.ringHash", {}, "spec.to[2].default.ringHash",
     "only allowed when algorithm is RingHash, not Maglev"),
    ("LoadBalancerPolicy", "spec.to[1].default.ringHash",
     {"minRingSize": 4096, "maxRingSize": 1024}, "spec.to[1].default.ringHash.maxRingSize",
     "must be >= minRingSize (4096), got 1024"),
    ("LoadBalancerPolicy", "spec.to[1].default.hashPolicies[0].name", DELETE,
     "spec.to[1].default.hashPolicies[0].name", "required when type is Cookie"),
    ("LoadBalancerPolicy", "spec.to[1].default.hashPolicies[3].name", "x",
     "spec.to[1].default.hashPolicies[3].name", "not allowed when type is SourceIP"),
]
# fmt: on


@pytest.mark.parametrize(
    ("kind", "field", "value", "path", "reason"),
    SEMANTIC,
    ids=[f"{k}:{path}:{reason[:30]}" for k, _, _, path, reason in SEMANTIC],
)
def test_semantic_rule_is_reported(
    kind: str, field: str, value: Any, path: str, reason: str
) -> None:
    lines = errors_of(mutate(example(kind), field, value))
    assert f"{ref_of(kind)}: {path}: {reason}" in lines, lines


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    doc = example("LoadBalancerPolicy")
    doc = mutate(doc, "spec.to[1].default.hashPolicies", DELETE)
    doc = mutate(doc, "spec.to[2].default.ringHash", {})
    doc = mutate(doc, "spec.to[0].targetRef", {"kind": "HTTPRoute", "name": "r"})
    assert errors_of(doc) == [
        "LoadBalancerPolicy default/lb1: spec.to[0].targetRef.kind: must be Mesh, Service or "
        "ExternalService in to entries of a LoadBalancerPolicy, got HTTPRoute",
        "LoadBalancerPolicy default/lb1: spec.to[1].default.hashPolicies: required when "
        "algorithm is RingHash",
        "LoadBalancerPolicy default/lb1: spec.to[2].default.ringHash: only allowed when "
        "algorithm is RingHash, not Maglev",
    ]


def test_cross_field_rules_only_compare_fields_written_together() -> None:
    # A less specific policy may set the other field; the merged result is checked later.
    for kind, field, value in [
        ("TimeoutPolicy", "spec.to[0].default", {"perTryTimeout": "30s"}),
        ("RetryPolicy", "spec.to[0].default.backoff", {"maxInterval": "1ms"}),
        ("HealthCheckPolicy", "spec.to[0].default", {"interval": "100ms", "tcp": {}}),
        ("CircuitBreakerPolicy", "spec.to[0].default.outlierDetection", {"maxEjectionTime": "1s"}),
    ]:
        parse_resources([mutate(example(kind), field, value)])


def test_yaml_booleans_are_not_header_values() -> None:
    doc = example("FaultInjectionPolicy")
    text = dump_yaml([doc]).replace("value: 'on'", "value: on")
    assert "value: on\n" in text
    with pytest.raises(ApplyError) as info:
        parse_text(text)
    assert (
        "FaultInjectionPolicy bookstore/fi1: spec.from[0].default.headers[0].value: "
        "expected a string, got boolean true" in str(info.value)
    )


# --- defaults and accessors --------------------------------------------------------------


def test_retry_defaults() -> None:
    conf = p.RetryConf()
    assert conf.num_retries == 2
    assert conf.retry_on == [
        "connect-failure",
        "refused-stream",
        "reset",
        "gateway-error",
        "unavailable",
    ]
    assert conf.per_try_timeout_seconds() is None
    assert conf.backoff.base_seconds() == 0.025
    assert conf.backoff.max_seconds() == pytest.approx(0.25)
    assert not conf.budget.disabled and conf.budget.percent == 20.0
    assert conf.budget.min_retries_per_second == 10
    assert conf.max_body_bytes == 65536
    assert conf.may_retry_method("GET") and conf.may_retry_method("PUT")
    assert not conf.may_retry_method("POST") and not conf.may_retry_method("PATCH")
    assert p.RetryConf(retry_non_idempotent=True).may_retry_method("POST")
    assert p.RetryConf.model_validate({"perTryTimeout": "0"}).per_try_timeout_seconds() is None
    assert conf.to_dict() == {}  # defaults are not written back


def test_timeout_defaults_and_disabled_timeouts() -> None:
    conf = p.TimeoutConf()
    assert conf.seconds("connect_timeout") == 5
    assert conf.seconds("request_timeout") == 15
    assert conf.seconds("per_try_timeout") is None
    assert conf.seconds("idle_timeout") == 3600
    assert conf.seconds("stream_idle_timeout") == 1800
    assert p.TimeoutConf.model_validate({"requestTimeout": "0s"}).seconds("request_timeout") is None


def test_health_check_defaults_and_accessors() -> None:
    conf = p.HealthCheckConf.model_validate({"http": {}})
    assert conf.interval_seconds() == 10 and conf.timeout_seconds() == 1
    assert conf.healthy_threshold == 1 and conf.unhealthy_threshold == 3
    assert isinstance(conf.check, p.HttpHealthCheck)
    assert conf.check.path == "/" and conf.check.method == "GET"
    assert conf.check.healthy(200) and conf.check.healthy(399)
    assert not conf.check.healthy(404) and not conf.check.healthy(199)
    picky = p.HttpHealthCheck.model_validate({"expectedStatuses": [204]})
    assert picky.healthy(204) and not picky.healthy(200)
    # A merged conf may have a timeout longer than its interval: clamp.
    odd = p.HealthCheckConf.model_validate({"interval": "500ms", "tcp": {}})
    assert odd.timeout_seconds() == 0.5


def test_other_defaults() -> None:
    cb = p.CircuitBreakerConf()
    assert cb.connection_limits.max_connections == 1024
    assert cb.connection_limits.max_retries is None
    assert cb.outlier_detection.consecutive_5xx == 5
    assert cb.outlier_detection.consecutive_gateway_errors == 0
    assert cb.outlier_detection.success_rate is None
    lb = p.LoadBalancerConf()
    assert lb.algorithm == "RoundRobin" and not lb.hash_based
    assert lb.locality_aware.enabled
    assert p.LoadBalancerConf.model_validate({"algorithm": "Maglev"}).hash_based
    rl = p.HttpLocalRateLimit.model_validate({"requests": 5, "interval": "2s"})
    assert rl.interval_seconds() == 2.0
    assert p.OnRateLimit().status == 429
    tp = p.TrafficPermission.model_validate(
        {
            "metadata": {"name": "x"},
            "spec": {"from": [{"targetRef": {}, "default": {"action": "DENY"}}]},
        }
    )
    assert tp.spec.mode == "enforce"


# --- combining policies ------------------------------------------------------------------


def test_merge_follows_the_policies_page_example() -> None:
    mesh_wide, specific = load(
        """
        apiVersion: gossamer.io/v1alpha1
        kind: RetryPolicy
        metadata: {name: mesh-retries, namespace: default}
        spec:
          to:
            - targetRef: {kind: Mesh}
              default:
                numRetries: 3
                backoff: {baseInterval: 100ms}
        ---
        apiVersion: gossamer.io/v1alpha1
        kind: RetryPolicy
        metadata: {name: magnanimo-to-benigno, namespace: default}
        spec:
          targetRef: {kind: Service, name: magnanimo}
          to:
            - targetRef: {kind: Service, name: benigno}
              default:
                numRetries: 5
                backoff: {maxInterval: 2s}
        """
    )
    assert isinstance(mesh_wide, p.RetryPolicy) and isinstance(specific, p.RetryPolicy)
    ordered = sorted([specific, mesh_wide], key=lambda pol: pol.sort_key())
    assert ordered == [mesh_wide, specific]
    confs = [e.default for pol in ordered for e in pol.spec.to]
    merged = p.merge_confs(p.RetryConf, confs)
    assert merged.num_retries == 5
    assert merged.backoff.base_interval == "100ms" and merged.backoff.max_interval == "2s"
    assert merged.retry_on == list(p.DEFAULT_RETRY_ON)
    assert merged.to_dict() == {
        "numRetries": 5,
        "backoff": {"baseInterval": "100ms", "maxInterval": "2s"},
    }
    # The inputs are left untouched.
    assert mesh_wide.spec.to[0].default.to_dict() == {
        "numRetries": 3,
        "backoff": {"baseInterval": "100ms"},
    }


def test_merge_replaces_lists_and_keeps_defaults_without_confs() -> None:
    a = p.RetryConf.model_validate({"retryOn": ["5xx", 503]})
    b = p.RetryConf.model_validate({"retryOn": ["reset"]})
    assert p.merge_confs(p.RetryConf, [a, b]).retry_on == ["reset"]
    assert p.merge_confs(p.RetryConf, []) == p.RetryConf()
    assert p.merge_confs(p.TimeoutConf, []).seconds("request_timeout") == 15


def test_merge_switches_alternatives() -> None:
    http = p.HealthCheckConf.model_validate({"interval": "5s", "http": {"path": "/healthz"}})
    tcp = p.HealthCheckConf.model_validate({"tcp": {}})
    merged = p.merge_confs(p.HealthCheckConf, [http, tcp])
    assert merged.http is None and merged.tcp is not None and merged.interval == "5s"

    ring = p.LoadBalancerConf.model_validate(
        {"algorithm": "RingHash", "hashPolicies": [{"type": "SourceIP"}], "ringHash": {}}
    )
    least = p.LoadBalancerConf.model_validate({"algorithm": "LeastRequest"})
    merged_lb = p.merge_confs(p.LoadBalancerConf, [ring, least])
    assert merged_lb.to_dict() == {"algorithm": "LeastRequest"}
    # Without a new algorithm, the less specific hash settings stay.
    zones = p.LoadBalancerConf.model_validate({"localityAware": {"enabled": False}})
    kept = p.merge_confs(p.LoadBalancerConf, [ring, zones])
    assert kept.hash_policies is not None and not kept.locality_aware.enabled

    http_abort = p.FaultInjectionConf.model_validate(
        {"abort": {"httpStatus": 503, "percentage": 5}}
    )
    grpc_abort = p.FaultInjectionConf.model_validate(
        {"abort": {"grpcStatus": 14, "percentage": 50}, "delay": {"value": "1s", "percentage": 1}}
    )
    merged_fi = p.merge_confs(p.FaultInjectionConf, [http_abort, grpc_abort])
    assert merged_fi.abort is not None
    assert merged_fi.abort.http_status is None and merged_fi.abort.grpc_status == 14


def test_specificity_orders_target_refs() -> None:
    refs = [
        TargetRef.model_validate(r)
        for r in [
            {"kind": "HTTPRoute", "name": "r"},
            {"kind": "ServiceAccount", "name": "a"},
            {"kind": "Service", "name": "s", "port": 80},
            {"kind": "Service", "name": "s", "labels": {"v": "2"}},
            {"kind": "Service", "name": "s"},
            {"kind": "Namespace", "name": "n"},
            {},
        ]
    ]
    ordered = sorted(refs, key=p.specificity)
    assert [(r.kind, bool(r.labels), r.port) for r in ordered] == [
        ("Mesh", False, None),
        ("Namespace", False, None),
        ("Service", False, None),
        ("Service", False, 80),
        ("Service", True, None),
        ("ServiceAccount", False, None),
        ("HTTPRoute", False, None),
    ]


def test_ties_between_policies_are_broken_by_name() -> None:
    docs = []
    for name in ("b-policy", "a-policy"):
        doc = example("TimeoutPolicy")
        doc["metadata"]["name"] = name
        docs.append(doc)
    b, a = parse_resources(docs)
    assert isinstance(a, p.Policy) and isinstance(b, p.Policy)
    assert sorted([b, a], key=lambda pol: pol.sort_key()) == [a, b]


# --- the documentation's examples are real -----------------------------------------------

POLICY_PAGES = [
    "policies",
    "trafficpermission",
    "retrypolicy",
    "timeoutpolicy",
    "circuitbreakerpolicy",
    "healthcheckpolicy",
    "faultinjectionpolicy",
    "ratelimitpolicy",
    "loadbalancerpolicy",
]
_FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def doc_examples(page: str) -> list[tuple[str, str | None]]:
    """(manifest, expected error text or None) for each manifest on a docs page: a manifest
    directly followed by a ```text block is an example of an error."""
    blocks = [(m.group(1), m.group(2)) for m in _FENCE.finditer((DOCS / f"{page}.md").read_text())]
    out: list[tuple[str, str | None]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "yaml" and "apiVersion:" in body:
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            expected = following[1].strip() if following and following[0] == "text" else None
            out.append((body, expected))
    return out


@pytest.mark.parametrize("page", POLICY_PAGES)
def test_docs_page_examples_behave_as_documented(page: str) -> None:
    examples = doc_examples(page)
    assert examples
    for manifest, expected in examples:
        if expected is None:
            round_trip(manifest)
        else:
            with pytest.raises(ApplyError) as info:
                parse_text(manifest)
            assert str(info.value) == expected


@pytest.mark.parametrize("page", POLICY_PAGES[1:])
def test_docs_page_has_a_valid_example_and_an_error(page: str) -> None:
    examples = doc_examples(page)
    kind = next(k for k in KINDS if k.lower() == page)
    assert any(expected is None and f"kind: {kind}" in m for m, expected in examples)
    assert any(expected is not None for _, expected in examples)


def test_policies_page_lists_the_accepted_target_kinds() -> None:
    text = (DOCS / "policies.md").read_text()
    section = text.split("## Which kinds are accepted where", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    table = {}
    for row in rows[1:]:
        kind, top, to, from_ = (cell.strip() for cell in row.strip("|").split("|"))
        table[kind] = (top, to, from_)

    def cell(rule: p.RefRule | None) -> str:
        return "—" if rule is None else ", ".join(rule.kinds)

    assert table == {k.KIND: (cell(k.TARGET), cell(k.TO), cell(k.FROM)) for k in p.POLICY_KINDS}
