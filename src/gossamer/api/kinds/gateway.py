"""Gateway API kinds (`gateway.networking.k8s.io`): HTTPRoute, GRPCRoute, TCPRoute, Gateway,
GatewayClass.

The schemas follow the upstream CRDs (Gateway API v1.x, standard channel, plus the few
experimental fields that real manifests carry) so that manifests written for any
implementation load unchanged. Upstream defaults are Python defaults here, so consumers
read `match.path.type == "PathPrefix"` without special cases, while `to_dict()` still
returns only what the user wrote. The CEL rules of the CRDs become `problems()` methods,
called from each kind's `validate_semantics()`.

Routes attach to a `Service` (`group: ""`, `kind: Service`: mesh traffic, GAMMA) or to a
`Gateway` (the default parent kind: ingress traffic).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from gossamer.api.model import (
    DnsLabel,
    DnsSubdomain,
    Duration,
    Model,
    Port,
    Resource,
    parse_duration,
)
from gossamer.api.registry import register
from gossamer.core.selectors import Op, Requirement, Selector

GROUP = "gateway.networking.k8s.io"
CORE_GROUP = ""
# The GatewayClass controllerName that Gossamer's gateway serves.
CONTROLLER_NAME = "gossamer.io/gateway-controller"
# Groups under which a `Service` parent or backend means a Gossamer/Kubernetes Service.
SERVICE_GROUPS = (CORE_GROUP, "gossamer.io")

Problems = list[tuple[str, str]]

# --- Field types -------------------------------------------------------------------------

_HOSTNAME = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KIND = re.compile(r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$")
_GROUP = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_CONTROLLER = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$"
)
_ADDRESS_TYPE = re.compile(
    r"^(Hostname|IPAddress|NamedAddress"
    r"|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/[A-Za-z0-9/\-._~%!$&'()*+,;=:]+)$"
)
_PATH_CHARS = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$")
_GRPC_SERVICE = re.compile(r"^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$", re.IGNORECASE)
_GRPC_METHOD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")


def _check_hostname(value: str) -> str:
    if len(value) > 253 or not _HOSTNAME.match(value):
        raise ValueError(
            "must be a hostname such as 'example.com' or '*.example.com' "
            f"(lowercase letters, digits, '-' and '.'), got {value!r}"
        )
    return value


def _check_kind(value: str) -> str:
    if len(value) > 63 or not _KIND.match(value):
        raise ValueError(f"must be a kind such as 'Service' or 'Gateway', got {value!r}")
    return value


def _check_group(value: str) -> str:
    if value and (len(value) > 253 or not _GROUP.match(value)):
        raise ValueError(
            "must be an API group such as 'gateway.networking.k8s.io', "
            f"or '' for the core group, got {value!r}"
        )
    return value


def _check_header_name(value: str) -> str:
    if len(value) > 256 or not _HEADER_NAME.match(value):
        raise ValueError(f"must be an HTTP header name such as 'x-user', got {value!r}")
    return value


def _check_controller(value: str) -> str:
    if len(value) > 253 or not _CONTROLLER.match(value):
        raise ValueError(
            f"must be a domain-prefixed path such as {CONTROLLER_NAME!r}, got {value!r}"
        )
    return value


def _check_address_type(value: str) -> str:
    if len(value) > 253 or not _ADDRESS_TYPE.match(value):
        raise ValueError(
            "must be one of 'IPAddress', 'Hostname', 'NamedAddress' or a domain-prefixed "
            f"type such as 'example.com/custom', got {value!r}"
        )
    return value


Hostname = Annotated[str, AfterValidator(_check_hostname)]
"""A hostname that may start with a wildcard label: `*.example.com`."""
PreciseHostname = DnsSubdomain
Group = Annotated[str, AfterValidator(_check_group)]
Kind = Annotated[str, AfterValidator(_check_kind)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253)]
SectionName = DnsSubdomain
HeaderName = Annotated[str, AfterValidator(_check_header_name)]
HTTPMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
MatchType = Literal["Exact", "RegularExpression"]


def _regex_problem(path: str, pattern: str) -> Problems:
    try:
        re.compile(pattern)
    except re.error as exc:
        return [(path, f"{pattern!r} is not a valid regular expression: {exc}")]
    return []


def _nested(items: Iterable[tuple[int, Model]], path: str) -> Problems:
    out: Problems = []
    for i, item in items:
        problems = getattr(item, "problems", None)
        if problems is not None:
            out.extend(problems(f"{path}[{i}]"))
    return out


# --- References --------------------------------------------------------------------------


class ParentReference(Model):
    """What a route attaches to: a Gateway (ingress) or a Service (mesh traffic, GAMMA)."""

    group: Group = GROUP
    kind: Kind = "Gateway"
    namespace: DnsLabel | None = None
    name: ObjectName
    # Gateway: a listener name. Service: a port name.
    section_name: SectionName | None = None
    port: Port | None = None

    @property
    def is_service(self) -> bool:
        return self.kind == "Service" and self.group in SERVICE_GROUPS

    @property
    def is_gateway(self) -> bool:
        return self.kind == "Gateway" and self.group == GROUP

    def key(self) -> tuple[str, str, str | None, str, str | None, int | None]:
        return (self.group, self.kind, self.namespace, self.name, self.section_name, self.port)

    def problems(self, path: str) -> Problems:
        if self.kind == "Service" and self.group == GROUP:
            return [
                (
                    f"{path}.group",
                    'must be "" (the core API group) when kind is Service; '
                    f"the default group is {GROUP}",
                )
            ]
        return []


class BackendObjectReference(Model):
    group: Group = CORE_GROUP
    kind: Kind = "Service"
    name: ObjectName
    namespace: DnsLabel | None = None
    port: Port | None = None

    @property
    def is_service(self) -> bool:
        return self.kind == "Service" and self.group in SERVICE_GROUPS

    def problems(self, path: str) -> Problems:
        if self.kind == "Service" and self.group == CORE_GROUP and self.port is None:
            return [(f"{path}.port", "required when the backend is a Service")]
        return []


class BackendRef(BackendObjectReference):
    # A proportion, not a percentage: weight / sum of the rule's weights. 0: no traffic.
    weight: int = Field(default=1, ge=0, le=1_000_000)


class LocalObjectReference(Model):
    group: Group
    kind: Kind
    name: ObjectName


class SecretObjectReference(Model):
    group: Group = CORE_GROUP
    kind: Kind = "Secret"
    name: ObjectName
    namespace: DnsLabel | None = None


class LabelSelectorRequirement(Model):
    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    def problems(self, path: str) -> Problems:
        if self.operator in ("In", "NotIn") and not self.values:
            return [(f"{path}.values", f"required when operator is {self.operator}")]
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            return [(f"{path}.values", f"not allowed when operator is {self.operator}")]
        return []


class LabelSelector(Model):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def to_selector(self) -> Selector:
        ops: dict[str, Op] = {
            "In": "in",
            "NotIn": "notin",
            "Exists": "exists",
            "DoesNotExist": "!exists",
        }
        reqs = list(Selector.from_labels(self.match_labels).requirements)
        for expr in self.match_expressions:
            reqs.append(Requirement(expr.key, ops[expr.operator], frozenset(expr.values)))
        return Selector(tuple(reqs))

    def problems(self, path: str) -> Problems:
        return _nested(enumerate(self.match_expressions), f"{path}.matchExpressions")


# --- Filters -----------------------------------------------------------------------------


class HTTPHeader(Model):
    name: HeaderName
    value: str = Field(min_length=1, max_length=4096)


class HTTPHeaderFilter(Model):
    """RequestHeaderModifier / ResponseHeaderModifier: one action per header name."""

    set: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    add: list[HTTPHeader] = Field(default_factory=list, max_length=16)
    remove: list[str] = Field(default_factory=list, max_length=16)

    def problems(self, path: str) -> Problems:
        out: Problems = []
        seen: dict[str, str] = {}
        entries = [("set", i, h.name) for i, h in enumerate(self.set)]
        entries += [("add", i, h.name) for i, h in enumerate(self.add)]
        entries += [("remove", i, name) for i, name in enumerate(self.remove)]
        for action, i, name in entries:
            lowered = name.lower()
            where = f"{path}.{action}[{i}]" + (".name" if action != "remove" else "")
            if lowered in seen:
                out.append((where, f"header {name!r} already has an action ({seen[lowered]})"))
            else:
                seen[lowered] = action
        return out


PathModifierType = Literal["ReplaceFullPath", "ReplacePrefixMatch"]


class HTTPPathModifier(Model):
    type: PathModifierType
    replace_full_path: str | None = Field(default=None, max_length=1024)
    # The matched PathPrefix is replaced by this: /route1/hw2 with prefix /route1 and "/"
    # becomes /hw2.
    replace_prefix_match: str | None = Field(default=None, max_length=1024)

    def problems(self, path: str) -> Problems:
        out: Problems = []
        wanted = "replaceFullPath" if self.type == "ReplaceFullPath" else "replacePrefixMatch"
        other = "replacePrefixMatch" if self.type == "ReplaceFullPath" else "replaceFullPath"
        values = {
            "replaceFullPath": self.replace_full_path,
            "replacePrefixMatch": self.replace_prefix_match,
        }
        if values[wanted] is None:
            out.append((f"{path}.{wanted}", f"required when type is {self.type}"))
        if values[other] is not None:
            out.append((f"{path}.{other}", f"not allowed when type is {self.type}"))
        return out


class HTTPRequestRedirectFilter(Model):
    scheme: Literal["http", "https"] | None = None
    hostname: PreciseHostname | None = None
    path: HTTPPathModifier | None = None
    port: Port | None = None
    status_code: Literal[301, 302, 303, 307, 308] = 302

    def problems(self, path: str) -> Problems:
        return self.path.problems(f"{path}.path") if self.path else []


class HTTPURLRewriteFilter(Model):
    hostname: PreciseHostname | None = None
    path: HTTPPathModifier | None = None

    def problems(self, path: str) -> Problems:
        return self.path.problems(f"{path}.path") if self.path else []


class Fraction(Model):
    numerator: int = Field(ge=0)
    denominator: int = Field(default=100, ge=1)

    def problems(self, path: str) -> Problems:
        if self.numerator > self.denominator:
            return [
                (
                    f"{path}.numerator",
                    f"must be <= denominator ({self.denominator}), got {self.numerator}",
                )
            ]
        return []


class HTTPRequestMirrorFilter(Model):
    backend_ref: BackendObjectReference
    # Neither: every request is mirrored.
    percent: int | None = Field(default=None, ge=0, le=100)
    fraction: Fraction | None = None

    @property
    def ratio(self) -> float:
        """The share of requests mirrored, 0.0 to 1.0."""
        if self.percent is not None:
            return self.percent / 100
        if self.fraction is not None:
            return self.fraction.numerator / self.fraction.denominator
        return 1.0

    def problems(self, path: str) -> Problems:
        out = self.backend_ref.problems(f"{path}.backendRef")
        if self.percent is not None and self.fraction is not None:
            out.append((f"{path}.fraction", "not allowed together with percent"))
        if self.fraction is not None:
            out += self.fraction.problems(f"{path}.fraction")
        return out


class HTTPCORSFilter(Model):
    # Experimental upstream (CORS filter type); accepted so manifests load.
    allow_origins: list[str] = Field(default_factory=list, max_length=64)
    allow_credentials: bool | None = None
    allow_methods: list[str] = Field(default_factory=list, max_length=9)
    allow_headers: list[str] = Field(default_factory=list, max_length=64)
    expose_headers: list[str] = Field(default_factory=list, max_length=64)
    max_age: int = Field(default=5, ge=1)


# filter type → (attribute, field name as written)
_HTTP_FILTER_FIELDS = {
    "RequestHeaderModifier": ("request_header_modifier", "requestHeaderModifier"),
    "ResponseHeaderModifier": ("response_header_modifier", "responseHeaderModifier"),
    "RequestMirror": ("request_mirror", "requestMirror"),
    "RequestRedirect": ("request_redirect", "requestRedirect"),
    "URLRewrite": ("url_rewrite", "urlRewrite"),
    "CORS": ("cors", "cors"),
    "ExtensionRef": ("extension_ref", "extensionRef"),
}


def _filter_union_problems(
    flt: Model, kind: str, fields: dict[str, tuple[str, str]], path: str
) -> Problems:
    """A filter's `type` names the one configuration field it carries."""
    out: Problems = []
    for filter_type, (attr, written) in fields.items():
        value = getattr(flt, attr)
        if filter_type == kind and value is None:
            out.append((f"{path}.{written}", f"required when type is {kind}"))
        elif filter_type != kind and value is not None:
            out.append((f"{path}.{written}", f"not allowed when type is {kind}"))
        elif value is not None and hasattr(value, "problems"):
            out.extend(value.problems(f"{path}.{written}"))
    return out


_UNREPEATABLE = ("RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite")


def _filter_list_problems(types: Sequence[str], path: str) -> Problems:
    out: Problems = []
    seen: set[str] = set()
    for i, kind in enumerate(types):
        if kind in _UNREPEATABLE and kind in seen:
            out.append((f"{path}[{i}].type", f"a {kind} filter may appear only once"))
        seen.add(kind)
    if "RequestRedirect" in seen and "URLRewrite" in seen:
        i = list(types).index("URLRewrite")
        out.append((f"{path}[{i}].type", "URLRewrite cannot be combined with RequestRedirect"))
    return out


class HTTPRouteFilter(Model):
    type: Literal[
        "RequestHeaderModifier",
        "ResponseHeaderModifier",
        "RequestMirror",
        "RequestRedirect",
        "URLRewrite",
        "CORS",
        "ExtensionRef",
    ]
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    request_redirect: HTTPRequestRedirectFilter | None = None
    url_rewrite: HTTPURLRewriteFilter | None = None
    cors: HTTPCORSFilter | None = None
    extension_ref: LocalObjectReference | None = None

    def problems(self, path: str) -> Problems:
        return _filter_union_problems(self, self.type, _HTTP_FILTER_FIELDS, path)

    def prefix_replacement(self) -> str | None:
        """The replacePrefixMatch of a URLRewrite or RequestRedirect, if any."""
        config = self.url_rewrite or self.request_redirect
        if config is None or config.path is None or config.path.type != "ReplacePrefixMatch":
            return None
        return config.path.replace_prefix_match


# --- HTTPRoute ---------------------------------------------------------------------------


class HTTPPathMatch(Model):
    type: Literal["Exact", "PathPrefix", "RegularExpression"] = "PathPrefix"
    value: str = Field(default="/", max_length=1024)

    def problems(self, path: str) -> Problems:
        if self.type == "RegularExpression":
            return _regex_problem(f"{path}.value", self.value)
        return _path_problems(f"{path}.value", self.value, self.type)


def _path_problems(path: str, value: str, kind: str) -> Problems:
    if not value.startswith("/"):
        return [(path, f"must be an absolute path starting with '/' when type is {kind}")]
    for bad in ("//", "/./", "/../", "%2f", "%2F", "#"):
        if bad in value:
            return [(path, f"must not contain {bad!r} when type is {kind}, got {value!r}")]
    for bad in ("/..", "/."):
        if value.endswith(bad):
            return [(path, f"must not end with {bad!r} when type is {kind}, got {value!r}")]
    if not _PATH_CHARS.match(value):
        return [(path, f"contains characters not allowed in a URL path: {value!r}")]
    return []


class HTTPHeaderMatch(Model):
    type: MatchType = "Exact"
    # Compared case-insensitively.
    name: HeaderName
    value: str = Field(min_length=1, max_length=4096)

    def problems(self, path: str) -> Problems:
        if self.type == "RegularExpression":
            return _regex_problem(f"{path}.value", self.value)
        return []


class HTTPQueryParamMatch(Model):
    type: MatchType = "Exact"
    name: HeaderName
    value: str = Field(min_length=1, max_length=1024)

    def problems(self, path: str) -> Problems:
        if self.type == "RegularExpression":
            return _regex_problem(f"{path}.value", self.value)
        return []


def _duplicate_names(names: Iterable[str], path: str, what: str, fold: bool = False) -> Problems:
    out: Problems = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        key = name.lower() if fold else name
        if key in seen:
            out.append((f"{path}[{i}].name", f"{what} {name!r} is matched twice"))
        seen.add(key)
    return out


class HTTPRouteMatch(Model):
    """All conditions must hold (AND); the rule's matches are alternatives (OR)."""

    path: HTTPPathMatch = Field(default_factory=HTTPPathMatch)
    headers: list[HTTPHeaderMatch] = Field(default_factory=list, max_length=16)
    query_params: list[HTTPQueryParamMatch] = Field(default_factory=list, max_length=16)
    method: HTTPMethod | None = None

    def problems(self, path: str) -> Problems:
        out = self.path.problems(f"{path}.path")
        out += _nested(enumerate(self.headers), f"{path}.headers")
        out += _duplicate_names((h.name for h in self.headers), f"{path}.headers", "header", True)
        out += _nested(enumerate(self.query_params), f"{path}.queryParams")
        out += _duplicate_names(
            (q.name for q in self.query_params), f"{path}.queryParams", "query parameter"
        )
        return out


class HTTPBackendRef(BackendRef):
    # Applied only to requests sent to this backend.
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)

    def problems(self, path: str) -> Problems:
        out = super().problems(path)
        out += _nested(enumerate(self.filters), f"{path}.filters")
        out += _filter_list_problems([f.type for f in self.filters], f"{path}.filters")
        return out


class HTTPRouteTimeouts(Model):
    # Whole request, retries included. "0s" disables the timeout.
    request: Duration | None = None
    # Each attempt to a backend; must not exceed `request`.
    backend_request: Duration | None = None

    def problems(self, path: str) -> Problems:
        if self.request is None or self.backend_request is None:
            return []
        request = parse_duration(self.request)
        if request and parse_duration(self.backend_request) > request:
            return [
                (
                    f"{path}.backendRequest",
                    f"must not be longer than the request timeout ({self.request}), "
                    f"got {self.backend_request!r}",
                )
            ]
        return []


class HTTPRouteRetry(Model):
    # Experimental upstream; Gossamer's RetryPolicy is the supported way to retry.
    codes: list[Annotated[int, Field(ge=400, le=599)]] = Field(default_factory=list)
    attempts: int | None = Field(default=None, ge=0)
    backoff: Duration | None = None


class CookieConfig(Model):
    lifetime_type: Literal["Permanent", "Session"] = "Session"


class SessionPersistence(Model):
    session_name: str | None = Field(default=None, max_length=128)
    absolute_timeout: Duration | None = None
    idle_timeout: Duration | None = None
    type: Literal["Cookie", "Header"] = "Cookie"
    cookie_config: CookieConfig | None = None

    def problems(self, path: str) -> Problems:
        out: Problems = []
        if self.cookie_config is not None and self.type != "Cookie":
            out.append((f"{path}.cookieConfig", "only allowed when type is Cookie"))
        if (
            self.cookie_config is not None
            and self.cookie_config.lifetime_type == "Permanent"
            and self.absolute_timeout is None
        ):
            out.append(
                (f"{path}.absoluteTimeout", "required when cookieConfig.lifetimeType is Permanent")
            )
        return out


def _default_http_matches() -> list[HTTPRouteMatch]:
    return [HTTPRouteMatch()]


class HTTPRouteRule(Model):
    name: SectionName | None = None
    # Absent: one match on PathPrefix "/" (every request), as upstream defaults it.
    matches: list[HTTPRouteMatch] = Field(default_factory=_default_http_matches, max_length=64)
    filters: list[HTTPRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[HTTPBackendRef] = Field(default_factory=list, max_length=16)
    timeouts: HTTPRouteTimeouts | None = None
    retry: HTTPRouteRetry | None = None
    session_persistence: SessionPersistence | None = None

    @property
    def effective_matches(self) -> list[HTTPRouteMatch]:
        """The matches, with an explicitly empty list read as "every request"."""
        return self.matches or _default_http_matches()

    def problems(self, path: str) -> Problems:
        out = _nested(enumerate(self.matches), f"{path}.matches")
        out += _nested(enumerate(self.filters), f"{path}.filters")
        out += _filter_list_problems([f.type for f in self.filters], f"{path}.filters")
        out += _nested(enumerate(self.backend_refs), f"{path}.backendRefs")
        if self.backend_refs and any(f.type == "RequestRedirect" for f in self.filters):
            out.append(
                (f"{path}.backendRefs", "not allowed in a rule with a RequestRedirect filter")
            )
        # ReplacePrefixMatch rewrites the matched prefix: there must be exactly one.
        matches = self.effective_matches
        single_prefix = len(matches) == 1 and matches[0].path.type == "PathPrefix"
        located = [(f"{path}.filters[{i}]", f) for i, f in enumerate(self.filters)]
        for j, ref in enumerate(self.backend_refs):
            located += [
                (f"{path}.backendRefs[{j}].filters[{i}]", f) for i, f in enumerate(ref.filters)
            ]
        for where, flt in located:
            if flt.prefix_replacement() is not None and not single_prefix:
                written = "urlRewrite" if flt.type == "URLRewrite" else "requestRedirect"
                out.append(
                    (
                        f"{where}.{written}.path.replacePrefixMatch",
                        "needs the rule to have exactly one match, with a PathPrefix path",
                    )
                )
        if self.timeouts is not None:
            out += self.timeouts.problems(f"{path}.timeouts")
        if self.session_persistence is not None:
            out += self.session_persistence.problems(f"{path}.sessionPersistence")
        return out


def _default_http_rules() -> list[HTTPRouteRule]:
    return [HTTPRouteRule()]


class HTTPRouteSpec(Model):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16)
    rules: list[HTTPRouteRule] = Field(
        default_factory=_default_http_rules, min_length=1, max_length=16
    )


def _route_problems(
    parent_refs: Sequence[ParentReference], rules: Sequence[Model], rule_names: Sequence[str | None]
) -> Problems:
    out = _nested(enumerate(parent_refs), "spec.parentRefs")
    seen: set[tuple[str, str, str | None, str, str | None, int | None]] = set()
    # Several references to one parent must each pick a part of it (sectionName or port).
    sections: dict[tuple[str, str, str | None, str], tuple[bool, bool]] = {}
    for i, ref in enumerate(parent_refs):
        if ref.key() in seen:
            out.append((f"spec.parentRefs[{i}]", f"parent {ref.kind} {ref.name!r} is listed twice"))
            continue
        seen.add(ref.key())
        parent = (ref.group, ref.kind, ref.namespace, ref.name)
        picks = (ref.section_name is not None, ref.port is not None)
        if parent in sections and sections[parent] != picks:
            out.append(
                (
                    f"spec.parentRefs[{i}]",
                    f"every reference to parent {ref.kind} {ref.name!r} must set the same of "
                    "sectionName and port",
                )
            )
        sections.setdefault(parent, picks)
    names: set[str] = set()
    for i, (rule, name) in enumerate(zip(rules, rule_names, strict=True)):
        if name is not None:
            if name in names:
                out.append((f"spec.rules[{i}].name", f"rule name {name!r} is used twice"))
            names.add(name)
        out += _nested([(i, rule)], "spec.rules")
    return out


@register
class HTTPRoute(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "HTTPRoute"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1beta1", "v1")
    PLURAL: ClassVar[str] = "httproutes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hr",)

    spec: HTTPRouteSpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        rules = self.spec.rules
        out = _route_problems(self.spec.parent_refs, rules, [r.name for r in rules])
        total = sum(len(r.matches) for r in rules)
        if total > 128:
            out.append(("spec.rules", f"must have at most 128 matches in all, got {total}"))
        return out


# --- GRPCRoute ---------------------------------------------------------------------------


class GRPCMethodMatch(Model):
    type: MatchType = "Exact"
    # Fully qualified service, e.g. "helloworld.Greeter"; absent: any service.
    service: str | None = Field(default=None, max_length=1024)
    # Method name, e.g. "SayHello"; absent: any method.
    method: str | None = Field(default=None, max_length=1024)

    def problems(self, path: str) -> Problems:
        if self.service is None and self.method is None:
            return [(path, "needs service or method (or both)")]
        out: Problems = []
        if self.type == "RegularExpression":
            if self.service is not None:
                out += _regex_problem(f"{path}.service", self.service)
            if self.method is not None:
                out += _regex_problem(f"{path}.method", self.method)
            return out
        if self.service is not None and not _GRPC_SERVICE.match(self.service):
            out.append(
                (
                    f"{path}.service",
                    "must be a gRPC service name such as 'helloworld.Greeter', "
                    f"got {self.service!r}",
                )
            )
        if self.method is not None and not _GRPC_METHOD.match(self.method):
            out.append(
                (
                    f"{path}.method",
                    f"must be a gRPC method name such as 'SayHello', got {self.method!r}",
                )
            )
        return out


class GRPCHeaderMatch(Model):
    type: MatchType = "Exact"
    name: HeaderName
    value: str = Field(min_length=1, max_length=4096)

    def problems(self, path: str) -> Problems:
        if self.type == "RegularExpression":
            return _regex_problem(f"{path}.value", self.value)
        return []


class GRPCRouteMatch(Model):
    method: GRPCMethodMatch | None = None
    headers: list[GRPCHeaderMatch] = Field(default_factory=list, max_length=16)

    def problems(self, path: str) -> Problems:
        out = self.method.problems(f"{path}.method") if self.method else []
        out += _nested(enumerate(self.headers), f"{path}.headers")
        out += _duplicate_names((h.name for h in self.headers), f"{path}.headers", "header", True)
        return out


_GRPC_FILTER_FIELDS = {
    "RequestHeaderModifier": ("request_header_modifier", "requestHeaderModifier"),
    "ResponseHeaderModifier": ("response_header_modifier", "responseHeaderModifier"),
    "RequestMirror": ("request_mirror", "requestMirror"),
    "ExtensionRef": ("extension_ref", "extensionRef"),
}


class GRPCRouteFilter(Model):
    type: Literal[
        "RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"
    ]
    request_header_modifier: HTTPHeaderFilter | None = None
    response_header_modifier: HTTPHeaderFilter | None = None
    request_mirror: HTTPRequestMirrorFilter | None = None
    extension_ref: LocalObjectReference | None = None

    def problems(self, path: str) -> Problems:
        return _filter_union_problems(self, self.type, _GRPC_FILTER_FIELDS, path)


class GRPCBackendRef(BackendRef):
    filters: list[GRPCRouteFilter] = Field(default_factory=list, max_length=16)

    def problems(self, path: str) -> Problems:
        out = super().problems(path)
        out += _nested(enumerate(self.filters), f"{path}.filters")
        out += _filter_list_problems([f.type for f in self.filters], f"{path}.filters")
        return out


class GRPCRouteRule(Model):
    name: SectionName | None = None
    # Empty: every call.
    matches: list[GRPCRouteMatch] = Field(default_factory=list, max_length=8)
    filters: list[GRPCRouteFilter] = Field(default_factory=list, max_length=16)
    backend_refs: list[GRPCBackendRef] = Field(default_factory=list, max_length=16)
    session_persistence: SessionPersistence | None = None

    def problems(self, path: str) -> Problems:
        out = _nested(enumerate(self.matches), f"{path}.matches")
        out += _nested(enumerate(self.filters), f"{path}.filters")
        out += _filter_list_problems([f.type for f in self.filters], f"{path}.filters")
        out += _nested(enumerate(self.backend_refs), f"{path}.backendRefs")
        if self.session_persistence is not None:
            out += self.session_persistence.problems(f"{path}.sessionPersistence")
        return out


class GRPCRouteSpec(Model):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    hostnames: list[Hostname] = Field(default_factory=list, max_length=16)
    rules: list[GRPCRouteRule] = Field(default_factory=list, max_length=16)


@register
class GRPCRoute(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "GRPCRoute"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha2", "v1")
    PLURAL: ClassVar[str] = "grpcroutes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("gr",)

    spec: GRPCRouteSpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        rules = self.spec.rules
        return _route_problems(self.spec.parent_refs, rules, [r.name for r in rules])


# --- TCPRoute ----------------------------------------------------------------------------


class TCPRouteRule(Model):
    name: SectionName | None = None
    backend_refs: list[BackendRef] = Field(min_length=1, max_length=16)

    def problems(self, path: str) -> Problems:
        return _nested(enumerate(self.backend_refs), f"{path}.backendRefs")


class TCPRouteSpec(Model):
    parent_refs: list[ParentReference] = Field(default_factory=list, max_length=32)
    rules: list[TCPRouteRule] = Field(min_length=1, max_length=16)


@register
class TCPRoute(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "TCPRoute"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha2",)
    PLURAL: ClassVar[str] = "tcproutes"
    # The bare names `tcproute`/`tcproutes` mean this kind; SMI's is tcproute.specs.smi-spec.io.
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    spec: TCPRouteSpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        rules = self.spec.rules
        return _route_problems(self.spec.parent_refs, rules, [r.name for r in rules])


# --- Gateway -----------------------------------------------------------------------------

Protocol = Literal["HTTP", "HTTPS", "TLS", "TCP", "UDP"]


class GatewayTLSConfig(Model):
    """A listener's TLS: terminate with certificateRefs, or pass through (TLS protocol)."""

    mode: Literal["Terminate", "Passthrough"] = "Terminate"
    certificate_refs: list[SecretObjectReference] = Field(default_factory=list, max_length=64)
    options: dict[str, str] = Field(default_factory=dict, max_length=16)


class RouteNamespaces(Model):
    from_: Literal["All", "Same", "Selector"] = Field(default="Same", alias="from")
    selector: LabelSelector | None = None

    def problems(self, path: str) -> Problems:
        if self.from_ == "Selector" and self.selector is None:
            return [(f"{path}.selector", "required when from is Selector")]
        return self.selector.problems(f"{path}.selector") if self.selector else []


class RouteGroupKind(Model):
    group: Group = GROUP
    kind: Kind


class AllowedRoutes(Model):
    namespaces: RouteNamespaces = Field(default_factory=RouteNamespaces)
    # Empty: the kinds that fit the listener's protocol.
    kinds: list[RouteGroupKind] = Field(default_factory=list, max_length=8)

    def problems(self, path: str) -> Problems:
        return self.namespaces.problems(f"{path}.namespaces")


class Listener(Model):
    name: SectionName
    # HTTP, HTTPS, TLS: the Host header / SNI to match; absent: any.
    hostname: Hostname | None = None
    port: Port
    protocol: Protocol
    tls: GatewayTLSConfig | None = None
    allowed_routes: AllowedRoutes = Field(default_factory=AllowedRoutes)

    def problems(self, path: str) -> Problems:
        out: Problems = []
        if self.protocol in ("HTTP", "TCP", "UDP") and self.tls is not None:
            out.append((f"{path}.tls", f"not allowed when protocol is {self.protocol}"))
        if self.protocol in ("HTTPS", "TLS") and self.tls is None:
            out.append((f"{path}.tls", f"required when protocol is {self.protocol}"))
        if self.protocol in ("TCP", "UDP") and self.hostname is not None:
            out.append((f"{path}.hostname", f"not allowed when protocol is {self.protocol}"))
        tls = self.tls
        if tls is not None and self.protocol == "HTTPS" and tls.mode != "Terminate":
            out.append((f"{path}.tls.mode", "must be Terminate when protocol is HTTPS"))
        if (
            tls is not None
            and self.protocol in ("HTTPS", "TLS")
            and tls.mode == "Terminate"
            and not tls.certificate_refs
            and not tls.options
        ):
            out.append((f"{path}.tls.certificateRefs", "required when tls mode is Terminate"))
        out += self.allowed_routes.problems(f"{path}.allowedRoutes")
        return out


class GatewaySpecAddress(Model):
    type: Annotated[str, AfterValidator(_check_address_type)] = "IPAddress"
    value: str | None = Field(default=None, max_length=253)

    def problems(self, path: str) -> Problems:
        if self.value is None:
            return []
        if self.type == "IPAddress":
            try:
                ipaddress.ip_address(self.value)
            except ValueError:
                return [(f"{path}.value", f"must be an IP address, got {self.value!r}")]
        if self.type == "Hostname" and not _HOSTNAME.match(self.value):
            return [(f"{path}.value", f"must be a hostname, got {self.value!r}")]
        return []


class LocalParametersReference(Model):
    group: Group
    kind: Kind
    name: ObjectName


class GatewayInfrastructure(Model):
    labels: dict[str, str] = Field(default_factory=dict, max_length=8)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=8)
    parameters_ref: LocalParametersReference | None = None


class GatewaySpec(Model):
    gateway_class_name: ObjectName
    listeners: list[Listener] = Field(min_length=1, max_length=64)
    addresses: list[GatewaySpecAddress] = Field(default_factory=list, max_length=16)
    infrastructure: GatewayInfrastructure | None = None


@register
class Gateway(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "Gateway"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1beta1", "v1")
    PLURAL: ClassVar[str] = "gateways"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("gtw",)

    spec: GatewaySpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        out: Problems = []
        names: set[str] = set()
        distinct: set[tuple[int, str, str | None]] = set()
        for i, listener in enumerate(self.spec.listeners):
            path = f"spec.listeners[{i}]"
            if listener.name in names:
                out.append((f"{path}.name", f"listener name {listener.name!r} is used twice"))
            names.add(listener.name)
            key = (listener.port, listener.protocol, listener.hostname)
            if key in distinct:
                host = f" and hostname {listener.hostname}" if listener.hostname else ""
                out.append(
                    (
                        path,
                        f"another listener already has port {listener.port}, "
                        f"protocol {listener.protocol}{host}",
                    )
                )
            distinct.add(key)
            out += listener.problems(path)
        seen: set[tuple[str, str]] = set()
        for i, address in enumerate(self.spec.addresses):
            out += address.problems(f"spec.addresses[{i}]")
            if address.value is None or address.type not in ("IPAddress", "Hostname"):
                continue
            if (address.type, address.value) in seen:
                out.append((f"spec.addresses[{i}].value", f"{address.value!r} is listed twice"))
            seen.add((address.type, address.value))
        return out


# --- GatewayClass ------------------------------------------------------------------------


class ParametersReference(Model):
    group: Group
    kind: Kind
    name: ObjectName
    namespace: DnsLabel | None = None


class GatewayClassSpec(Model):
    # Gossamer serves the classes whose controllerName is CONTROLLER_NAME.
    controller_name: Annotated[str, AfterValidator(_check_controller)]
    parameters_ref: ParametersReference | None = None
    description: str | None = Field(default=None, max_length=64)


@register
class GatewayClass(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "GatewayClass"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1beta1", "v1")
    PLURAL: ClassVar[str] = "gatewayclasses"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("gc",)
    NAMESPACED: ClassVar[bool] = False

    spec: GatewayClassSpec


__all__ = [
    "CONTROLLER_NAME",
    "GROUP",
    "SERVICE_GROUPS",
    "BackendObjectReference",
    "BackendRef",
    "GRPCBackendRef",
    "GRPCRoute",
    "GRPCRouteFilter",
    "GRPCRouteMatch",
    "GRPCRouteRule",
    "Gateway",
    "GatewayClass",
    "GatewayTLSConfig",
    "HTTPBackendRef",
    "HTTPHeaderFilter",
    "HTTPPathMatch",
    "HTTPRoute",
    "HTTPRouteFilter",
    "HTTPRouteMatch",
    "HTTPRouteRule",
    "LabelSelector",
    "Listener",
    "ParentReference",
    "TCPRoute",
    "TCPRouteRule",
]
