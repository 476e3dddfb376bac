"""Gossamer's own policy kinds (gossamer.io/v1alpha1), shaped after Kuma's Mesh* policies.

Every policy has the same skeleton (see docs/resources/policies.md):

    spec:
      targetRef: {kind: Mesh}        # which proxies this policy configures
      to:                            # client side: calls those proxies make ...
        - targetRef: {kind: Service, name: benigno}   # ... to these destinations
          default: {...}             # the kind's own configuration ("conf")
      from:                          # server side: calls those proxies receive ...
        - targetRef: {kind: Mesh}    # ... from these callers
          default: {...}

The generic pieces are `PolicyItem[Conf]` (one to/from entry), `ToPolicySpec[Conf]`,
`FromPolicySpec[Conf]` and `ToFromPolicySpec[Conf]` (which directions a kind allows) and
`Policy` (the resource base: targetRef checks, ordering). `merge_confs` folds the confs
that apply to one proxy and one peer into the effective conf.
"""

from __future__ import annotations

import copy
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field, PlainValidator

from gossamer.api.model import Duration, Model, Percent, Resource, TargetRef, parse_duration
from gossamer.api.registry import register

GROUP = "gossamer.io"
VERSIONS = ("v1alpha1",)

Direction = Literal["to", "from"]


# --- shared field types ------------------------------------------------------------------


def _positive_duration(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError(f"must be a duration greater than 0, got {value!r}")
    return value


PositiveDuration = Annotated[Duration, AfterValidator(_positive_duration)]
"""A Duration that must be greater than zero ("0" and "0s" are refused)."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _check_header_name(value: str) -> str:
    # Worded as in kinds/gateway.py, so both kinds of manifest read alike.
    if len(value) > 256 or not _HEADER_NAME.match(value):
        raise ValueError(f"must be an HTTP header name such as 'x-user', got {value!r}")
    return value


HeaderName = Annotated[str, AfterValidator(_check_header_name)]
"""An HTTP header name as written; header names are matched case-insensitively."""

HttpStatus = Annotated[int, Field(ge=100, le=599)]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]


def _seconds(value: str) -> float | None:
    """Seconds in a duration, or None when it is "0" (the feature is disabled)."""
    seconds = parse_duration(value)
    return seconds if seconds > 0 else None


def _regex_problem(path: str, pattern: str) -> list[tuple[str, str]]:
    try:
        re.compile(pattern)
    except re.error as exc:
        return [(path, f"{pattern!r} is not a valid regular expression: {exc}")]
    return []


def _and(names: Sequence[str], word: str = "or") -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {word} {names[-1]}"


class HeaderMatch(Model):
    """A condition on one request header (names are case-insensitive)."""

    name: HeaderName
    type: Literal["Exact", "RegularExpression", "Present"] = "Exact"
    # Required for Exact and RegularExpression; refused for Present.
    value: str | None = None

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.type == "Present":
            if self.value is not None:
                return [(f"{path}.value", "not allowed when type is Present")]
            return []
        if self.value is None:
            return [(f"{path}.value", f"required when type is {self.type}")]
        if self.type == "RegularExpression":
            return _regex_problem(f"{path}.value", self.value)
        return []


class HeaderValue(Model):
    name: HeaderName
    value: str


def _list_problems(items: Sequence[Any] | None, path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, item in enumerate(items or ()):
        out += item.problems(f"{path}[{i}]")
    return out


# --- the generic policy skeleton ---------------------------------------------------------


class PolicyConf(Model):
    """Base of a policy kind's `default` block.

    MERGE_REPLACES maps a field (as written, camelCase) to fields it replaces when confs
    are merged: a more specific conf that picks `tcp` drops a less specific one's `http`.
    """

    MERGE_REPLACES: ClassVar[dict[str, tuple[str, ...]]] = {}

    def problems(self, path: str) -> list[tuple[str, str]]:
        """Cross-field checks; `path` is where this conf sits (`spec.to[0].default`)."""
        return []


C = TypeVar("C", bound=PolicyConf)


class PolicyItem(Model, Generic[C]):
    """One entry of `spec.to` or `spec.from`: which peers, and the conf for them."""

    target_ref: TargetRef
    default: C


class PolicySpec(Model):
    """What every policy spec has: the proxies it configures (default: all of the mesh)."""

    target_ref: TargetRef = Field(default_factory=TargetRef)

    def entries(self, direction: Direction) -> Sequence[PolicyItem[Any]]:
        """The `to` or `from` entries, in the order written (empty if the kind has none)."""
        return ()

    def problems(self) -> list[tuple[str, str]]:
        return []


class ToPolicySpec(PolicySpec, Generic[C]):
    """A client-side policy: configures calls the selected proxies make."""

    to: list[PolicyItem[C]] = Field(min_length=1)

    def entries(self, direction: Direction) -> Sequence[PolicyItem[C]]:
        return self.to if direction == "to" else ()


class FromPolicySpec(PolicySpec, Generic[C]):
    """A server-side policy: configures calls the selected proxies receive."""

    from_: list[PolicyItem[C]] = Field(alias="from", min_length=1)

    def entries(self, direction: Direction) -> Sequence[PolicyItem[C]]:
        return self.from_ if direction == "from" else ()


class ToFromPolicySpec(PolicySpec, Generic[C]):
    """A policy that may configure either side; needs at least one of `to` and `from`."""

    to: list[PolicyItem[C]] | None = Field(default=None, min_length=1)
    from_: list[PolicyItem[C]] | None = Field(default=None, alias="from", min_length=1)

    def entries(self, direction: Direction) -> Sequence[PolicyItem[C]]:
        return (self.to if direction == "to" else self.from_) or ()

    def problems(self) -> list[tuple[str, str]]:
        if self.to is None and self.from_ is None:
            return [("spec", "needs at least one of to and from")]
        return []


@dataclass(frozen=True)
class RefRule:
    """Which targetRefs one position of a policy (spec.targetRef, to, from) accepts."""

    kinds: tuple[str, ...]
    # Reasons labels/port are refused on a Service here; None means they are allowed.
    no_labels: str | None = None
    no_port: str | None = None


_TOP_NO_PORT = "not allowed here: spec.targetRef selects proxies; put the port in to[].targetRef"
_TO_NO_LABELS = (
    "not allowed here: a to entry selects whole services; "
    "define a Service with a narrower selector instead"
)
_FROM_NO_LABELS = "not allowed here: callers are selected by identity, not by labels"
_FROM_NO_PORT = "not allowed here: callers are not selected by port"

CALLER_KINDS = ("Mesh", "Service", "Namespace", "ServiceAccount")
# Top-level targetRef of client-side (to) policies: sidecars and gateways both make calls.
OUTBOUND_TARGET = RefRule(("Mesh", "Service", "Gateway"), no_port=_TOP_NO_PORT)
# Top-level targetRef of server-side (from) policies: a port narrows to one inbound port.
INBOUND_TARGET = RefRule(("Mesh", "Service"))
CALLERS = RefRule(CALLER_KINDS, no_labels=_FROM_NO_LABELS, no_port=_FROM_NO_PORT)


def _to_rule(*kinds: str) -> RefRule:
    return RefRule(kinds, no_labels=_TO_NO_LABELS)


def check_ref(ref: TargetRef, path: str, rule: RefRule, where: str) -> list[tuple[str, str]]:
    """TargetRef.problems() plus the restrictions of one position of one kind."""
    problems = ref.problems(path)
    if ref.kind not in rule.kinds:
        problems.append((f"{path}.kind", f"must be {_and(rule.kinds)} {where}, got {ref.kind}"))
        return problems
    if ref.kind != "Service":
        if ref.labels and ref.kind != "Mesh":  # Mesh: already reported by TargetRef
            problems.append((f"{path}.labels", "only allowed when kind is Service"))
        if ref.port is not None:
            problems.append((f"{path}.port", "only allowed when kind is Service"))
    else:
        if ref.labels and rule.no_labels:
            problems.append((f"{path}.labels", rule.no_labels))
        if ref.port is not None and rule.no_port:
            problems.append((f"{path}.port", rule.no_port))
    if ref.namespace is not None and ref.kind in ("Mesh", "Namespace"):
        problems.append((f"{path}.namespace", f"not allowed when kind is {ref.kind}"))
    return problems


# Lower is less specific. Confs are merged from the least to the most specific.
_KIND_RANK = {
    "Mesh": 0,
    "Namespace": 1,
    "Gateway": 2,
    "Service": 2,
    "MeshService": 2,
    "ExternalService": 2,
    "ServiceAccount": 3,
    "HTTPRoute": 4,
    "GRPCRoute": 4,
    "TCPRoute": 4,
}


def specificity(ref: TargetRef) -> tuple[int, int, int]:
    """Sort key for targetRefs: Mesh < Namespace < Service < ServiceAccount < route;
    a Service with labels or a port is more specific than the bare Service."""
    return (_KIND_RANK.get(ref.kind, 0), int(bool(ref.labels)), int(ref.port is not None))


class Policy(Resource):
    """Base of the gossamer.io policy kinds (not itself a kind).

    The effective conf of kind K for proxy P and peer S (destination for `to`, caller for
    `from`): take the K policies whose spec.target_ref selects P, sorted by sort_key();
    from each, in that order, the entries(direction) whose target_ref matches S, sorted
    (stably) by specificity(entry.target_ref); merge_confs(KConf, [e.default ...]).
    TrafficPermission is evaluated instead (see its docstring).
    """

    GROUP: ClassVar[str] = GROUP
    VERSIONS: ClassVar[tuple[str, ...]] = VERSIONS
    TARGET: ClassVar[RefRule] = INBOUND_TARGET
    TO: ClassVar[RefRule | None] = None
    FROM: ClassVar[RefRule | None] = None

    spec: PolicySpec

    def entries(self, direction: Direction) -> Sequence[PolicyItem[Any]]:
        return self.spec.entries(direction)

    def sort_key(self) -> tuple[tuple[int, int, int], str, str]:
        """Order in which policies selecting one proxy are applied (later ones win)."""
        return (specificity(self.spec.target_ref), self.metadata.name, self.metadata.namespace)

    def validate_semantics(self) -> list[tuple[str, str]]:
        problems = self.spec.problems()
        problems += check_ref(
            self.spec.target_ref, "spec.targetRef", self.TARGET, f"for a {self.KIND}"
        )
        directions: tuple[tuple[Direction, RefRule | None], ...] = (
            ("to", self.TO),
            ("from", self.FROM),
        )
        for direction, rule in directions:
            if rule is None:
                continue
            where = f"in {direction} entries of a {self.KIND}"
            for i, item in enumerate(self.spec.entries(direction)):
                path = f"spec.{direction}[{i}]"
                problems += check_ref(item.target_ref, f"{path}.targetRef", rule, where)
                problems += item.default.problems(f"{path}.default")
        return problems


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model class inside `X` or `X | None`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _merge_into(model: type[BaseModel], base: dict[str, Any], override: dict[str, Any]) -> None:
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    replaces: dict[str, tuple[str, ...]] = getattr(model, "MERGE_REPLACES", {})
    for key, value in override.items():
        for dropped in replaces.get(key, ()):
            base.pop(dropped, None)
        field = fields.get(key)
        nested = _model_of(field.annotation) if field is not None else None
        if nested is not None and isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(nested, base[key], value)
        else:
            base[key] = copy.deepcopy(value)  # scalars and lists replace


def merge_confs(conf_type: type[C], confs: Iterable[C]) -> C:
    """The effective conf: `confs` from least to most specific, each overriding the fields
    it sets (nested objects merge field by field, lists replace). Unset fields keep the
    schema defaults. With no confs, the result is the kind's defaults."""
    merged: dict[str, Any] = {}
    for conf in confs:
        _merge_into(conf_type, merged, conf.to_dict())
    return conf_type.model_validate(merged)


# --- TrafficPermission -------------------------------------------------------------------


class PathMatch(Model):
    # PathPrefix matches whole segments: /api matches /api and /api/x, not /apix.
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = Field(min_length=1)

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.type == "RegularExpression":
            return _regex_problem(f"{path}.value", self.value)
        if not self.value.startswith("/"):
            return [(f"{path}.value", f"must start with '/', got {self.value!r}")]
        return []


class PermissionRule(Model):
    """Matches a request when every condition it gives holds: one of `methods`, one of
    `paths`, all of `headers`."""

    methods: list[HttpMethod] | None = Field(default=None, min_length=1)
    paths: list[PathMatch] | None = Field(default=None, min_length=1)
    headers: list[HeaderMatch] | None = Field(default=None, min_length=1)

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.methods is None and self.paths is None and self.headers is None:
            return [(path, "needs at least one of methods, paths and headers")]
        return _list_problems(self.paths, f"{path}.paths") + _list_problems(
            self.headers, f"{path}.headers"
        )


class TrafficPermissionConf(PolicyConf):
    action: Literal["ALLOW", "DENY"]
    # Absent: every request from the callers. Present: requests matching any rule.
    rules: list[PermissionRule] | None = Field(default=None, min_length=1)

    def problems(self, path: str) -> list[tuple[str, str]]:
        return _list_problems(self.rules, f"{path}.rules")


class TrafficPermissionSpec(FromPolicySpec[TrafficPermissionConf]):
    # shadow: evaluate and report what would be denied, deny nothing.
    mode: Literal["enforce", "shadow"] = "enforce"


@register
class TrafficPermission(Policy):
    """Authorization, enforced by the destination's sidecar. Not merged like other kinds:
    for a request, the enforce-mode permissions selecting the sidecar (and port) decide
    1. any applicable DENY entry: deny; 2. any applicable ALLOW: allow; 3. some permission
    with an ALLOW entry selects the sidecar: deny; 4. else Mesh.spec.defaultAccess.
    An entry applies when its targetRef matches the caller and it has no rules or one rule
    matches. On TCP, entries with rules fail closed (ALLOW never, DENY always applies).
    Shadow-mode permissions are evaluated as well, only to log and count would-be denials.
    """

    KIND: ClassVar[str] = "TrafficPermission"
    PLURAL: ClassVar[str] = "trafficpermissions"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tp",)
    TARGET: ClassVar[RefRule] = INBOUND_TARGET
    FROM: ClassVar[RefRule | None] = CALLERS

    spec: TrafficPermissionSpec


# --- RetryPolicy -------------------------------------------------------------------------

RetryCondition = Literal[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "refused-stream",
    "retriable-4xx",
    "cancelled",
    "deadline-exceeded",
    "resource-exhausted",
    "unavailable",
    "internal",
]
RETRY_CONDITIONS: tuple[str, ...] = typing.get_args(RetryCondition)
DEFAULT_RETRY_ON: tuple[str | int, ...] = (
    "connect-failure",
    "refused-stream",
    "reset",
    "gateway-error",
    "unavailable",
)
# Retried even when retryNonIdempotent is false (RFC 9110 idempotent methods).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return f"boolean {value}"  # as errors.py words it
    if isinstance(value, int | float):
        return f"number {value}"
    names = {dict: "a mapping", list: "a list", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _retry_on(value: Any) -> str | int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)  # "503", as Kuma writes it
    if isinstance(value, int) and not isinstance(value, bool):
        if 100 <= value <= 599:
            return value
        raise ValueError(f"HTTP status codes must be 100-599, got {value}")
    if isinstance(value, str) and value in RETRY_CONDITIONS:
        return value
    shown = _describe(value)
    raise ValueError(
        f"must be one of {', '.join(RETRY_CONDITIONS)} or an HTTP status code, got {shown}"
    )


RetryOn = Annotated[str | int, PlainValidator(_retry_on, json_schema_input_type=str | int)]


class RetryBackoff(Model):
    # Exponential backoff with full jitter: try n waits random(0, min(max, base * 2^n)).
    base_interval: PositiveDuration = "25ms"
    # Default: 10 x baseInterval.
    max_interval: PositiveDuration | None = None

    def base_seconds(self) -> float:
        return parse_duration(self.base_interval)

    def max_seconds(self) -> float:
        base = self.base_seconds()
        if self.max_interval is None:
            return 10 * base
        return max(parse_duration(self.max_interval), base)

    def problems(self, path: str) -> list[tuple[str, str]]:
        longest = self.max_interval
        written = "base_interval" in self.model_fields_set
        if written and longest is not None and parse_duration(longest) < self.base_seconds():
            reason = f"must be >= baseInterval ({self.base_interval}), got {self.max_interval}"
            return [(f"{path}.maxInterval", reason)]
        return []


class RetryBudget(Model):
    # Retries may add at most `percent` % to the requests of the last `window`, plus
    # minRetriesPerSecond, so that retries cannot multiply load during an outage.
    disabled: bool = False
    percent: Percent = 20.0
    min_retries_per_second: int = Field(default=10, ge=0)
    window: PositiveDuration = "10s"


class RetryConf(PolicyConf):
    num_retries: int = Field(default=2, ge=0)
    # Each try's own deadline; "0" (or unset): only the request timeout applies.
    per_try_timeout: Duration | None = None
    retry_on: list[RetryOn] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON), min_length=1)
    backoff: RetryBackoff = Field(default_factory=RetryBackoff)
    retry_non_idempotent: bool = False
    # Request bodies up to this size are buffered so they can be replayed; larger: no retry.
    max_body_bytes: int = Field(default=65536, ge=0)
    budget: RetryBudget = Field(default_factory=RetryBudget)

    def per_try_timeout_seconds(self) -> float | None:
        return None if self.per_try_timeout is None else _seconds(self.per_try_timeout)

    def conditions(self) -> frozenset[str]:
        return frozenset(c for c in self.retry_on if isinstance(c, str))

    def statuses(self) -> frozenset[int]:
        return frozenset(c for c in self.retry_on if isinstance(c, int))

    def may_retry_method(self, method: str) -> bool:
        return self.retry_non_idempotent or method in IDEMPOTENT_METHODS

    def problems(self, path: str) -> list[tuple[str, str]]:
        problems = self.backoff.problems(f"{path}.backoff")
        seen: set[str | int] = set()
        for i, cond in enumerate(self.retry_on):
            if cond in seen:
                problems.append((f"{path}.retryOn[{i}]", f"{cond!r} is listed twice"))
            seen.add(cond)
        return problems


class RetryPolicySpec(ToPolicySpec[RetryConf]):
    pass


@register
class RetryPolicy(Policy):
    KIND: ClassVar[str] = "RetryPolicy"
    PLURAL: ClassVar[str] = "retrypolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("rp",)
    TARGET: ClassVar[RefRule] = OUTBOUND_TARGET
    TO: ClassVar[RefRule | None] = _to_rule(
        "Mesh", "Service", "ExternalService", "HTTPRoute", "GRPCRoute"
    )

    spec: RetryPolicySpec


# --- TimeoutPolicy -----------------------------------------------------------------------

TimeoutField = Literal[
    "connect_timeout", "request_timeout", "per_try_timeout", "idle_timeout", "stream_idle_timeout"
]


class TimeoutConf(PolicyConf):
    # Every timeout is a duration; "0" disables it. The defaults apply without any policy.
    connect_timeout: Duration = "5s"
    request_timeout: Duration = "15s"
    per_try_timeout: Duration = "0"
    idle_timeout: Duration = "1h"
    stream_idle_timeout: Duration = "30m"

    def seconds(self, field: TimeoutField) -> float | None:
        """The timeout in seconds, or None when disabled."""
        value: str = getattr(self, field)
        return _seconds(value)

    def problems(self, path: str) -> list[tuple[str, str]]:
        written = self.model_fields_set
        if {"per_try_timeout", "request_timeout"} <= written:
            per_try = self.seconds("per_try_timeout")
            request = self.seconds("request_timeout")
            if per_try is not None and request is not None and per_try > request:
                reason = (
                    f"must not exceed requestTimeout ({self.request_timeout}), "
                    f"got {self.per_try_timeout}"
                )
                return [(f"{path}.perTryTimeout", reason)]
        return []


class TimeoutPolicySpec(ToFromPolicySpec[TimeoutConf]):
    pass


@register
class TimeoutPolicy(Policy):
    KIND: ClassVar[str] = "TimeoutPolicy"
    PLURAL: ClassVar[str] = "timeoutpolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("to",)
    TARGET: ClassVar[RefRule] = OUTBOUND_TARGET
    TO: ClassVar[RefRule | None] = _to_rule(
        "Mesh", "Service", "ExternalService", "HTTPRoute", "GRPCRoute"
    )
    # Inbound timeouts protect the proxy and its app from every caller alike.
    FROM: ClassVar[RefRule | None] = RefRule(("Mesh",))

    spec: TimeoutPolicySpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        problems = super().validate_semantics()
        for i, item in enumerate(self.spec.from_ or ()):
            if "per_try_timeout" in item.default.model_fields_set:
                path = f"spec.from[{i}].default.perTryTimeout"
                problems.append((path, "only applies to outbound calls (to entries)"))
        return problems


# --- CircuitBreakerPolicy ----------------------------------------------------------------


class ConnectionLimits(Model):
    # Per proxy and destination service, across all its endpoints.
    max_connections: int = Field(default=1024, ge=1)
    max_pending_requests: int = Field(default=1024, ge=1)
    max_requests: int = Field(default=1024, ge=1)
    # Concurrent retries; default: limited only by the RetryPolicy budget.
    max_retries: int | None = Field(default=None, ge=1)


class SuccessRate(Model):
    # Eject endpoints whose success rate is below mean - stdevFactor * stdev.
    minimum_hosts: int = Field(default=5, ge=1)
    request_volume: int = Field(default=100, ge=1)
    stdev_factor: float = Field(default=1.9, gt=0)


class OutlierDetection(Model):
    disabled: bool = False
    interval: PositiveDuration = "10s"
    base_ejection_time: PositiveDuration = "30s"
    max_ejection_time: PositiveDuration = "300s"
    max_ejection_percent: Percent = 10.0
    # 0 turns a detector off.
    consecutive_5xx: int = Field(default=5, ge=0, alias="consecutive5xx")
    consecutive_gateway_errors: int = Field(default=0, ge=0)
    # Absent: the success-rate detector is off.
    success_rate: SuccessRate | None = None

    def problems(self, path: str) -> list[tuple[str, str]]:
        base, longest = self.base_ejection_time, self.max_ejection_time
        both = {"base_ejection_time", "max_ejection_time"} <= self.model_fields_set
        if both and parse_duration(longest) < parse_duration(base):
            reason = f"must be >= baseEjectionTime ({base}), got {longest}"
            return [(f"{path}.maxEjectionTime", reason)]
        return []


class CircuitBreakerConf(PolicyConf):
    connection_limits: ConnectionLimits = Field(default_factory=ConnectionLimits)
    outlier_detection: OutlierDetection = Field(default_factory=OutlierDetection)

    def problems(self, path: str) -> list[tuple[str, str]]:
        if not self.model_fields_set:
            return [(path, "needs at least one of connectionLimits and outlierDetection")]
        return self.outlier_detection.problems(f"{path}.outlierDetection")


class CircuitBreakerPolicySpec(ToPolicySpec[CircuitBreakerConf]):
    pass


@register
class CircuitBreakerPolicy(Policy):
    KIND: ClassVar[str] = "CircuitBreakerPolicy"
    PLURAL: ClassVar[str] = "circuitbreakerpolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cb",)
    TARGET: ClassVar[RefRule] = OUTBOUND_TARGET
    TO: ClassVar[RefRule | None] = _to_rule("Mesh", "Service", "ExternalService")

    spec: CircuitBreakerPolicySpec


# --- HealthCheckPolicy -------------------------------------------------------------------


class HttpHealthCheck(Model):
    path: str = "/"
    method: HttpMethod = "GET"
    # Absent: any status from 200 to 399 is healthy.
    expected_statuses: list[HttpStatus] | None = Field(default=None, min_length=1)
    headers: list[HeaderValue] | None = None

    def healthy(self, status: int) -> bool:
        if self.expected_statuses is None:
            return 200 <= status <= 399
        return status in self.expected_statuses

    def problems(self, path: str) -> list[tuple[str, str]]:
        if not self.path.startswith("/"):
            return [(f"{path}.path", f"must start with '/', got {self.path!r}")]
        return []


class TcpHealthCheck(Model):
    # Both absent: a successful connect is healthy. Text is sent and expected as UTF-8.
    send: str | None = None
    # Healthy when the bytes read start with this.
    receive: str | None = None


class GrpcHealthCheck(Model):
    # grpc.health.v1.Health/Check; "" (default) asks about the whole server.
    service_name: str | None = None
    authority: str | None = None


_CHECKS = ("http", "tcp", "grpc")


class HealthCheckConf(PolicyConf):
    MERGE_REPLACES: ClassVar[dict[str, tuple[str, ...]]] = {
        "http": ("tcp", "grpc"),
        "tcp": ("http", "grpc"),
        "grpc": ("http", "tcp"),
    }

    interval: PositiveDuration = "10s"
    timeout: PositiveDuration = "1s"
    # Each interval is lengthened by a random 0..intervalJitter.
    interval_jitter: Duration | None = None
    healthy_threshold: int = Field(default=1, ge=1)
    unhealthy_threshold: int = Field(default=3, ge=1)
    http: HttpHealthCheck | None = None
    tcp: TcpHealthCheck | None = None
    grpc: GrpcHealthCheck | None = None

    @property
    def check(self) -> HttpHealthCheck | TcpHealthCheck | GrpcHealthCheck | None:
        return self.http or self.tcp or self.grpc

    def interval_seconds(self) -> float:
        return parse_duration(self.interval)

    def timeout_seconds(self) -> float:
        """Never longer than the interval (merged confs may say otherwise)."""
        return min(parse_duration(self.timeout), self.interval_seconds())

    def problems(self, path: str) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        chosen = [name for name in _CHECKS if getattr(self, name) is not None]
        if not chosen:
            problems.append((path, "needs exactly one of http, tcp and grpc"))
        elif len(chosen) > 1:
            problems.append(
                (path, f"needs exactly one of http, tcp and grpc, got {_and(chosen, 'and')}")
            )
        both = {"interval", "timeout"} <= self.model_fields_set
        if both and parse_duration(self.timeout) >= self.interval_seconds():
            reason = f"must be less than interval ({self.interval}), got {self.timeout}"
            problems.append((f"{path}.timeout", reason))
        if self.http is not None:
            problems += self.http.problems(f"{path}.http")
        return problems


class HealthCheckPolicySpec(ToPolicySpec[HealthCheckConf]):
    pass


@register
class HealthCheckPolicy(Policy):
    KIND: ClassVar[str] = "HealthCheckPolicy"
    PLURAL: ClassVar[str] = "healthcheckpolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hc",)
    TARGET: ClassVar[RefRule] = OUTBOUND_TARGET
    TO: ClassVar[RefRule | None] = _to_rule("Mesh", "Service", "ExternalService")

    spec: HealthCheckPolicySpec


# --- FaultInjectionPolicy ----------------------------------------------------------------


class FaultDelay(Model):
    value: PositiveDuration
    percentage: Percent


class FaultAbort(Model):
    MERGE_REPLACES: ClassVar[dict[str, tuple[str, ...]]] = {
        "httpStatus": ("grpcStatus",),
        "grpcStatus": ("httpStatus",),
    }

    http_status: int | None = Field(default=None, ge=200, le=599)
    grpc_status: int | None = Field(default=None, ge=0, le=16)
    percentage: Percent

    def problems(self, path: str) -> list[tuple[str, str]]:
        if (self.http_status is None) == (self.grpc_status is None):
            return [(path, "needs exactly one of httpStatus and grpcStatus")]
        return []


class FaultInjectionConf(PolicyConf):
    delay: FaultDelay | None = None
    abort: FaultAbort | None = None
    # Absent: every request may be faulted. Present: only requests matching all of them.
    headers: list[HeaderMatch] | None = Field(default=None, min_length=1)

    def problems(self, path: str) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.delay is None and self.abort is None:
            problems.append((path, "needs at least one of delay and abort"))
        if self.abort is not None:
            problems += self.abort.problems(f"{path}.abort")
        return problems + _list_problems(self.headers, f"{path}.headers")


class FaultInjectionPolicySpec(FromPolicySpec[FaultInjectionConf]):
    pass


@register
class FaultInjectionPolicy(Policy):
    KIND: ClassVar[str] = "FaultInjectionPolicy"
    PLURAL: ClassVar[str] = "faultinjectionpolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("fi",)
    TARGET: ClassVar[RefRule] = INBOUND_TARGET
    FROM: ClassVar[RefRule | None] = CALLERS

    spec: FaultInjectionPolicySpec


# --- RateLimitPolicy ---------------------------------------------------------------------


class HeaderMutations(Model):
    add: list[HeaderValue] | None = None
    set: list[HeaderValue] | None = None


class OnRateLimit(Model):
    status: int = Field(default=429, ge=400, le=599)
    headers: HeaderMutations | None = None


class HttpLocalRateLimit(Model):
    # A token bucket of `requests` tokens, refilled at requests/interval.
    disabled: bool = False
    requests: int | None = Field(default=None, ge=1)
    interval: PositiveDuration | None = None
    on_rate_limit: OnRateLimit | None = None

    def interval_seconds(self) -> float | None:
        return None if self.interval is None else parse_duration(self.interval)

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.disabled:
            return []
        return [
            (f"{path}.{name}", "required unless disabled is true")
            for name, value in (("requests", self.requests), ("interval", self.interval))
            if value is None
        ]


class TcpLocalRateLimit(Model):
    # New connections accepted per interval (token bucket, like http).
    disabled: bool = False
    connections: int | None = Field(default=None, ge=1)
    interval: PositiveDuration | None = None

    def interval_seconds(self) -> float | None:
        return None if self.interval is None else parse_duration(self.interval)

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.disabled:
            return []
        return [
            (f"{path}.{name}", "required unless disabled is true")
            for name, value in (("connections", self.connections), ("interval", self.interval))
            if value is None
        ]


class LocalRateLimit(Model):
    http: HttpLocalRateLimit | None = None
    tcp: TcpLocalRateLimit | None = None

    def problems(self, path: str) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        if self.http is None and self.tcp is None:
            problems.append((path, "needs at least one of http and tcp"))
        if self.http is not None:
            problems += self.http.problems(f"{path}.http")
        if self.tcp is not None:
            problems += self.tcp.problems(f"{path}.tcp")
        return problems


class RateLimitConf(PolicyConf):
    local: LocalRateLimit

    def problems(self, path: str) -> list[tuple[str, str]]:
        return self.local.problems(f"{path}.local")


class RateLimitPolicySpec(FromPolicySpec[RateLimitConf]):
    pass


@register
class RateLimitPolicy(Policy):
    KIND: ClassVar[str] = "RateLimitPolicy"
    PLURAL: ClassVar[str] = "ratelimitpolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("rl",)
    TARGET: ClassVar[RefRule] = RefRule(("Mesh", "Service", "HTTPRoute", "GRPCRoute"))
    FROM: ClassVar[RefRule | None] = CALLERS

    spec: RateLimitPolicySpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        problems = super().validate_semantics()
        route = self.spec.target_ref.kind
        if route in ("HTTPRoute", "GRPCRoute"):
            for i, item in enumerate(self.spec.from_):
                if item.default.local.tcp is not None:
                    path = f"spec.from[{i}].default.local.tcp"
                    problems.append((path, f"not possible when spec.targetRef.kind is {route}"))
        return problems


# --- LoadBalancerPolicy ------------------------------------------------------------------

LbAlgorithm = Literal["RoundRobin", "Random", "LeastRequest", "PeakEWMA", "RingHash", "Maglev"]
HASH_ALGORITHMS = ("RingHash", "Maglev")
_MAX_RING = 8_388_608


class LeastRequest(Model):
    # Pick this many endpoints at random, send to the one with fewest active requests.
    choice_count: int = Field(default=2, ge=2)


class HashPolicy(Model):
    type: Literal["Header", "Cookie", "SourceIP", "QueryParameter"]
    # Header, cookie or query parameter name; refused for SourceIP.
    name: str | None = Field(default=None, min_length=1)
    # When this policy produced a hash, skip the ones after it.
    terminal: bool = False

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.type == "SourceIP":
            if self.name is not None:
                return [(f"{path}.name", "not allowed when type is SourceIP")]
        elif self.name is None:
            return [(f"{path}.name", f"required when type is {self.type}")]
        return []


class RingHash(Model):
    min_ring_size: int = Field(default=1024, ge=1, le=_MAX_RING)
    max_ring_size: int = Field(default=_MAX_RING, ge=1, le=_MAX_RING)

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.max_ring_size < self.min_ring_size:
            reason = f"must be >= minRingSize ({self.min_ring_size}), got {self.max_ring_size}"
            return [(f"{path}.maxRingSize", reason)]
        return []


class LocalityFailover(Model):
    # Callers in these zones (absent: in any zone) ...
    from_zones: list[str] | None = Field(default=None, min_length=1)
    # ... fail over to these zones, in this order, when their own zone has no healthy endpoint.
    to_zones: list[str] = Field(min_length=1)


class LocalityAware(Model):
    # Prefer endpoints in the caller's zone (Workload.spec.zone).
    enabled: bool = True
    failover: list[LocalityFailover] | None = None


class LoadBalancerConf(PolicyConf):
    MERGE_REPLACES: ClassVar[dict[str, tuple[str, ...]]] = {
        "algorithm": ("leastRequest", "hashPolicies", "ringHash"),
    }

    algorithm: LbAlgorithm = "RoundRobin"
    least_request: LeastRequest | None = None
    hash_policies: list[HashPolicy] | None = Field(default=None, min_length=1)
    ring_hash: RingHash | None = None
    locality_aware: LocalityAware = Field(default_factory=LocalityAware)

    @property
    def hash_based(self) -> bool:
        return self.algorithm in HASH_ALGORITHMS

    def problems(self, path: str) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        algo = self.algorithm
        if self.hash_based and self.hash_policies is None:
            problems.append((f"{path}.hashPolicies", f"required when algorithm is {algo}"))
        if not self.hash_based and self.hash_policies is not None:
            problems.append(
                (
                    f"{path}.hashPolicies",
                    f"only allowed when algorithm is RingHash or Maglev, not {algo}",
                )
            )
        if self.least_request is not None and algo != "LeastRequest":
            problems.append(
                (f"{path}.leastRequest", f"only allowed when algorithm is LeastRequest, not {algo}")
            )
        if self.ring_hash is not None:
            if algo != "RingHash":
                problems.append(
                    (f"{path}.ringHash", f"only allowed when algorithm is RingHash, not {algo}")
                )
            problems += self.ring_hash.problems(f"{path}.ringHash")
        return problems + _list_problems(self.hash_policies, f"{path}.hashPolicies")


class LoadBalancerPolicySpec(ToPolicySpec[LoadBalancerConf]):
    pass


@register
class LoadBalancerPolicy(Policy):
    KIND: ClassVar[str] = "LoadBalancerPolicy"
    PLURAL: ClassVar[str] = "loadbalancerpolicies"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("lb",)
    TARGET: ClassVar[RefRule] = OUTBOUND_TARGET
    TO: ClassVar[RefRule | None] = _to_rule("Mesh", "Service", "ExternalService")

    spec: LoadBalancerPolicySpec


POLICY_KINDS: tuple[type[Policy], ...] = (
    TrafficPermission,
    RetryPolicy,
    TimeoutPolicy,
    CircuitBreakerPolicy,
    HealthCheckPolicy,
    FaultInjectionPolicy,
    RateLimitPolicy,
    LoadBalancerPolicy,
)
