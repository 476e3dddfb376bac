"""SMI kinds (Service Mesh Interface): TrafficSplit, TrafficTarget, HTTPRouteGroup, TCPRoute.

Accepted for compatibility with manifests written for Open Service Mesh, Linkerd and
others. The oldest versions kept their fields at the top level of the object (no
`spec`): HTTPRouteGroup v1alpha1-v1alpha2 (`matches`) and TrafficTarget v1alpha1
(`destination`, `specs`, `sources`). Those documents load too; their fields are moved
under `spec` (`specs` becomes `rules`, as v1alpha2 renamed it), which is also the form
they are stored and printed in.

Fields a version did not have are refused in that version (TrafficSplit `matches` before
v1alpha3, HTTPRouteGroup `headers` in v1alpha1, TCPRoute `matches` before v1alpha4), as
any other unknown field would be.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from gossamer.api.model import DnsLabel, DnsSubdomain, Model, Port, Resource
from gossamer.api.registry import register

SPLIT_GROUP = "split.smi-spec.io"
ACCESS_GROUP = "access.smi-spec.io"
SPECS_GROUP = "specs.smi-spec.io"

Problems = list[tuple[str, str]]


def _version(resource: Resource) -> str:
    return resource.api_version.rsplit("/", 1)[-1]


def _before(resource: Resource, version: str) -> bool:
    """Whether the resource was written in a version older than `version`."""
    written = _version(resource)
    if written not in resource.VERSIONS:
        return False  # unknown versions are the loader's to refuse
    return resource.VERSIONS.index(written) < resource.VERSIONS.index(version)


def _not_in_version(resource: Resource, since: str) -> str:
    return f"not available in {resource.api_version}; use {since} or later"


def _hoist(data: Any, group: str, versions: tuple[str, ...], fields: Mapping[str, str]) -> Any:
    """Move the top-level fields of an old-version document under `spec`."""
    if not isinstance(data, dict) or "spec" in data:
        return data
    api_version = data.get("apiVersion")
    if api_version not in {f"{group}/{v}" for v in versions}:
        return data
    present = [key for key in fields if key in data]
    if not present:
        return data
    data = dict(data)
    data["spec"] = {fields[key]: data.pop(key) for key in present}
    return data


def _regex_problem(path: str, pattern: str) -> Problems:
    try:
        re.compile(pattern)
    except re.error as exc:
        return [(path, f"{pattern!r} is not a valid regular expression: {exc}")]
    return []


# --- TrafficSplit ------------------------------------------------------------------------


class TrafficSplitBackend(Model):
    # A service in the split's namespace.
    service: DnsSubdomain
    # A proportion, not a percentage: weight / sum of all weights. 0: no traffic.
    weight: int = Field(ge=0)


class TrafficSplitMatch(Model):
    kind: Literal["HTTPRouteGroup", "TCPRoute"]
    name: DnsSubdomain
    api_group: str | None = None


class TrafficSplitSpec(Model):
    # The root (apex) service that clients call: "name", "name.namespace" or an FQDN.
    service: DnsSubdomain
    backends: list[TrafficSplitBackend] = Field(min_length=1)
    # v1alpha3+: the split applies only to requests matching these route groups.
    matches: list[TrafficSplitMatch] = Field(default_factory=list)


@register
class TrafficSplit(Resource):
    GROUP: ClassVar[str] = SPLIT_GROUP
    KIND: ClassVar[str] = "TrafficSplit"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha2", "v1alpha3", "v1alpha4")
    PLURAL: ClassVar[str] = "trafficsplits"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ts",)

    spec: TrafficSplitSpec

    def root_service_ref(self) -> tuple[str, str]:
        """(namespace, name) of the root service; the namespace defaults to the split's."""
        parts = self.spec.service.split(".")
        namespace = parts[1] if len(parts) > 1 else self.namespace
        return namespace, parts[0]

    @property
    def total_weight(self) -> int:
        return sum(b.weight for b in self.spec.backends)

    def validate_semantics(self) -> list[tuple[str, str]]:
        out: Problems = []
        if self.spec.matches and _before(self, "v1alpha3"):
            out.append(("spec.matches", _not_in_version(self, "v1alpha3")))
        seen: set[str] = set()
        for i, backend in enumerate(self.spec.backends):
            if backend.service in seen:
                out.append(
                    (f"spec.backends[{i}].service", f"backend {backend.service!r} is listed twice")
                )
            seen.add(backend.service)
        if self.total_weight == 0:
            out.append(
                ("spec.backends", "weights add up to 0; at least one backend needs a weight > 0")
            )
        return out


# --- TrafficTarget -----------------------------------------------------------------------


class IdentityBindingSubject(Model):
    kind: Literal["ServiceAccount"]
    name: DnsSubdomain
    # Absent: the TrafficTarget's namespace.
    namespace: DnsLabel | None = None

    def identity(self, default_namespace: str) -> tuple[str, str]:
        """(namespace, service account name)."""
        return self.namespace or default_namespace, self.name


class TrafficTargetDestination(IdentityBindingSubject):
    # Absent: every port of the destination.
    port: Port | None = None


class TrafficTargetRule(Model):
    kind: Literal["HTTPRouteGroup", "TCPRoute", "UDPRoute"]
    name: DnsSubdomain
    # Names of the route group's matches; absent or empty: all of them.
    matches: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class TrafficTargetSpec(Model):
    destination: TrafficTargetDestination
    rules: list[TrafficTargetRule]
    sources: list[IdentityBindingSubject]


@register
class TrafficTarget(Resource):
    GROUP: ClassVar[str] = ACCESS_GROUP
    KIND: ClassVar[str] = "TrafficTarget"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2", "v1alpha3")
    PLURAL: ClassVar[str] = "traffictargets"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tt",)

    spec: TrafficTargetSpec

    @model_validator(mode="before")
    @classmethod
    def _legacy_layout(cls, data: Any) -> Any:
        fields = {"destination": "destination", "specs": "rules", "sources": "sources"}
        return _hoist(data, ACCESS_GROUP, ("v1alpha1",), fields)

    def destination_identity(self) -> tuple[str, str]:
        """(namespace, service account) that the target protects."""
        return self.spec.destination.identity(self.namespace)

    def source_identities(self) -> list[tuple[str, str]]:
        return [s.identity(self.namespace) for s in self.spec.sources]


# --- HTTPRouteGroup ----------------------------------------------------------------------

SmiMethod = Literal[
    "*", "GET", "HEAD", "PUT", "POST", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"
]


def _header_shape(value: Any) -> str:
    return "list" if isinstance(value, list) else "dict"


# `{user-agent: ".*Android.*"}` (the Go type) or `[{user-agent: ".*Android.*"}, ...]` (the
# form of SMI's own examples and OSM's). The tags are named so error paths skip them.
HeaderFilters = Annotated[
    Annotated[dict[str, str], Tag("dict")] | Annotated[list[dict[str, str]], Tag("list")],
    Discriminator(_header_shape),
]


class HTTPMatch(Model):
    # How TrafficTarget rules and TrafficSplit refer to this match.
    name: str = Field(min_length=1)
    # Anchored at the start of the path; absent: any path.
    path_regex: str | None = None
    # Empty or "*": any method.
    methods: list[SmiMethod] = Field(default_factory=list)
    # Header name → regex the value must match; all must match.
    headers: HeaderFilters | None = None

    def header_map(self) -> dict[str, str]:
        """The header filters as one mapping, lowercase header name → value regex."""
        if self.headers is None:
            return {}
        entries = [self.headers] if isinstance(self.headers, dict) else self.headers
        return {name.lower(): regex for entry in entries for name, regex in entry.items()}

    @property
    def any_method(self) -> bool:
        return not self.methods or "*" in self.methods

    def problems(self, path: str) -> Problems:
        out: Problems = []
        if self.path_regex is not None:
            out += _regex_problem(f"{path}.pathRegex", self.path_regex)
        if self.headers is None:
            return out
        if isinstance(self.headers, dict):
            located = [(f"{path}.headers", self.headers)]
        else:
            located = [(f"{path}.headers[{i}]", entry) for i, entry in enumerate(self.headers)]
        seen: set[str] = set()
        for where, entry in located:
            if not entry and isinstance(self.headers, list):
                out.append((where, "must name at least one header"))
            for name, regex in entry.items():
                if name.lower() in seen:
                    out.append((f"{where}.{name}", f"header {name!r} is given twice"))
                seen.add(name.lower())
                out += _regex_problem(f"{where}.{name}", regex)
        return out


class HTTPRouteGroupSpec(Model):
    matches: list[HTTPMatch]


@register
class HTTPRouteGroup(Resource):
    GROUP: ClassVar[str] = SPECS_GROUP
    KIND: ClassVar[str] = "HTTPRouteGroup"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4")
    PLURAL: ClassVar[str] = "httproutegroups"
    # "htr" is the short name of SMI's own CRD.
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("hrg", "htr")

    spec: HTTPRouteGroupSpec

    @model_validator(mode="before")
    @classmethod
    def _legacy_layout(cls, data: Any) -> Any:
        return _hoist(data, SPECS_GROUP, ("v1alpha1", "v1alpha2"), {"matches": "matches"})

    def match_named(self, name: str) -> HTTPMatch | None:
        return next((m for m in self.spec.matches if m.name == name), None)

    def validate_semantics(self) -> list[tuple[str, str]]:
        out: Problems = []
        names: set[str] = set()
        for i, match in enumerate(self.spec.matches):
            path = f"spec.matches[{i}]"
            if match.name in names:
                out.append((f"{path}.name", f"match name {match.name!r} is used twice"))
            names.add(match.name)
            if match.headers is not None and _version(self) == "v1alpha1":
                out.append((f"{path}.headers", _not_in_version(self, "v1alpha2")))
            out += match.problems(path)
        return out


# --- TCPRoute (SMI) ----------------------------------------------------------------------


class SMITCPMatch(Model):
    # Empty: every port of the service.
    ports: list[Port] = Field(default_factory=list)


class SMITCPRouteSpec(Model):
    matches: SMITCPMatch | None = None


@register
class SMITCPRoute(Resource):
    """SMI's TCPRoute (specs.smi-spec.io); the bare name `TCPRoute` is Gateway API's."""

    GROUP: ClassVar[str] = SPECS_GROUP
    KIND: ClassVar[str] = "TCPRoute"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4")
    PLURAL: ClassVar[str] = "tcproutes"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    spec: SMITCPRouteSpec = Field(default_factory=SMITCPRouteSpec)

    @property
    def ports(self) -> list[int]:
        """The ports the route covers; empty means all of them."""
        return list(self.spec.matches.ports) if self.spec.matches else []

    def validate_semantics(self) -> list[tuple[str, str]]:
        if self.spec.matches is None:
            return []
        if _before(self, "v1alpha4"):
            return [("spec.matches", _not_in_version(self, "v1alpha4"))]
        out: Problems = []
        seen: set[int] = set()
        for i, port in enumerate(self.spec.matches.ports):
            if port in seen:
                out.append((f"spec.matches.ports[{i}]", f"port {port} is listed twice"))
            seen.add(port)
        return out


__all__ = [
    "ACCESS_GROUP",
    "SPECS_GROUP",
    "SPLIT_GROUP",
    "HTTPMatch",
    "HTTPRouteGroup",
    "IdentityBindingSubject",
    "SMITCPRoute",
    "TrafficSplit",
    "TrafficSplitBackend",
    "TrafficTarget",
    "TrafficTargetRule",
]
