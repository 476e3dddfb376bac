"""Base types shared by every resource kind: the envelope, metadata and common fields.

Every schema is strict (a string is not an integer) and closed (an unknown field is an
error), so a typo in a manifest is reported instead of silently changing behaviour.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

DEFAULT_NAMESPACE = "default"
DEFAULT_MESH = "default"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_DURATION_SCALE = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


class Model(BaseModel):
    """Base of every schema object: camelCase aliases, strict types, unknown fields refused."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=False,
    )

    def to_dict(self) -> dict[str, Any]:
        """The object as the user would write it: aliases, no unset or null fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"must be a DNS label (lowercase letters, digits and '-', at most 63), got {value!r}"
        )
    return value


def check_dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            "must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253), "
            f"got {value!r}"
        )
    return value


def parse_duration(value: str) -> float:
    """Seconds in a Go-style duration ("1m30s", "250ms", "2h"); raises ValueError."""
    text = value.strip()
    if text == "0":
        return 0.0
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_SCALE[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"must be a duration such as '500ms', '5s' or '1m30s', got {value!r}")
    return total


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(check_dns_subdomain)]
Duration = Annotated[str, AfterValidator(_check_duration)]
"""A duration as written by the user ("5s"); read it with parse_duration()."""
Port = Annotated[int, Field(ge=1, le=65535)]
Percent = Annotated[float, Field(ge=0, le=100)]


class ObjectMeta(Model):
    name: DnsSubdomain
    namespace: DnsLabel = DEFAULT_NAMESPACE
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # Maintained by the store; accepted on input so that `get -o yaml | apply` round-trips,
    # and resourceVersion asks for optimistic concurrency.
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: str | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            name = key.rsplit("/", 1)[-1]
            if len(name) > 63 or not _LABEL_NAME.match(name):
                raise ValueError(f"label key {key!r} is not a valid label name")
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ValueError(f"label {key!r} has an invalid value {value!r}")
        return labels


class Resource(Model):
    """The envelope of every kind. Subclasses narrow `spec` and declare their identity."""

    GROUP: ClassVar[str] = ""
    KIND: ClassVar[str] = ""
    VERSIONS: ClassVar[tuple[str, ...]] = ()
    PLURAL: ClassVar[str] = ""
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()
    NAMESPACED: ClassVar[bool] = True

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: Any = None
    # Status is owned by controllers; accepted so an exported object re-applies, then dropped.
    status: dict[str, Any] | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _identity(cls, data: Any) -> Any:
        # Objects built in code may omit apiVersion and kind; documents always carry them.
        if isinstance(data, dict) and cls.KIND:
            data = dict(data)
            data.setdefault("kind", cls.KIND)
            api_version = f"{cls.GROUP}/{cls.VERSIONS[-1]}" if cls.GROUP else cls.VERSIONS[-1]
            if "apiVersion" not in data and "api_version" not in data:
                data["apiVersion"] = api_version
        return data

    @model_validator(mode="after")
    def _scope(self) -> Resource:
        if not self.NAMESPACED:
            self.metadata.namespace = ""  # cluster-scoped: one per control plane
        return self

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def ref(self) -> str:
        """How messages name this object: `Kind namespace/name` (or `Kind name`)."""
        if self.NAMESPACED:
            return f"{self.KIND} {self.metadata.namespace}/{self.metadata.name}"
        return f"{self.KIND} {self.metadata.name}"

    def validate_semantics(self) -> list[tuple[str, str]]:
        """Cross-field checks pydantic cannot express: (field path, reason) pairs."""
        return []


TargetKind = Literal[
    "Mesh",
    "Service",
    "HTTPRoute",
    "GRPCRoute",
    "TCPRoute",
    "ExternalService",
    "Gateway",
    # Peers in from-lists (authorization, rate limits): identities rather than services.
    "Namespace",
    "ServiceAccount",
]


class TargetRef(Model):
    """What a policy attaches to, or which peers a from/to entry concerns (after Kuma)."""

    kind: TargetKind = "Mesh"
    name: str | None = None
    namespace: DnsLabel | None = None
    # A subset of a Service's workloads, e.g. {version: v2}.
    labels: dict[str, str] | None = None
    # Only on a Service: the service port the policy applies to.
    port: Port | None = None

    def problems(self, path: str) -> list[tuple[str, str]]:
        if self.kind == "Mesh":
            if self.labels:
                return [(f"{path}.labels", "not allowed when kind is Mesh")]
            return []
        if not self.name:
            return [(f"{path}.name", f"required when kind is {self.kind}")]
        return []


__all__ = [
    "DEFAULT_MESH",
    "DEFAULT_NAMESPACE",
    "DnsLabel",
    "DnsSubdomain",
    "Duration",
    "Model",
    "ObjectMeta",
    "Percent",
    "Port",
    "Resource",
    "TargetRef",
    "check_dns_label",
    "parse_duration",
]
