"""Kubernetes `Ingress` (networking.k8s.io/v1), served by Gossamer's ingress gateway.

The schema is Kubernetes' own, with the API server's validation (a backend is a service
or a resource, a service port is a name or a number, paths are absolute). Annotations
live in `metadata.annotations` and are not part of the schema.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from gossamer.api.model import DnsLabel, DnsSubdomain, Model, Port, Resource
from gossamer.api.registry import register

GROUP = "networking.k8s.io"

Problems = list[tuple[str, str]]

_HOST = re.compile(r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"must be a DNS name, not an IP address, got {value!r}")
    if len(value) > 253 or not _HOST.match(value):
        raise ValueError(
            "must be a DNS name such as 'shop.example.com' or '*.example.com' "
            f"(lowercase letters, digits, '-' and '.'), got {value!r}"
        )
    return value


def _check_port_name(value: str) -> str:
    if (
        len(value) > 15
        or not _PORT_NAME.match(value)
        or "--" in value
        or not any(c.isalpha() for c in value)
    ):
        raise ValueError(
            "must be a port name such as 'http' (at most 15 lowercase letters, digits "
            f"and '-', with at least one letter), got {value!r}"
        )
    return value


Host = Annotated[str, AfterValidator(_check_host)]
PortName = Annotated[str, AfterValidator(_check_port_name)]
PathType = Literal["Exact", "Prefix", "ImplementationSpecific"]


class ServiceBackendPort(Model):
    # Exactly one of the two.
    name: PortName | None = None
    number: Port | None = None

    def problems(self, path: str) -> Problems:
        if self.name is not None and self.number is not None:
            return [(path, "give either name or number, not both")]
        if self.name is None and self.number is None:
            return [(path, "needs a name or a number")]
        return []


class IngressServiceBackend(Model):
    name: DnsLabel
    port: ServiceBackendPort

    def problems(self, path: str) -> Problems:
        return self.port.problems(f"{path}.port")


class TypedLocalObjectReference(Model):
    api_group: str | None = None
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)


class IngressBackend(Model):
    # Exactly one of the two.
    service: IngressServiceBackend | None = None
    resource: TypedLocalObjectReference | None = None

    def problems(self, path: str) -> Problems:
        if self.service is not None and self.resource is not None:
            return [(path, "give either service or resource, not both")]
        if self.service is None and self.resource is None:
            return [(f"{path}.service", "required (or resource)")]
        return self.service.problems(f"{path}.service") if self.service else []


class HTTPIngressPath(Model):
    # Absent: "/".
    path: str | None = None
    # ImplementationSpecific is served as Prefix.
    path_type: PathType
    backend: IngressBackend

    @property
    def effective_path(self) -> str:
        return self.path or "/"

    @property
    def match_type(self) -> Literal["Exact", "Prefix"]:
        return "Exact" if self.path_type == "Exact" else "Prefix"

    def problems(self, path: str) -> Problems:
        out = self.backend.problems(f"{path}.backend")
        where = f"{path}.path"
        value = self.path
        if value is None or value == "":
            if self.path_type != "ImplementationSpecific":
                out.append((where, f"required when pathType is {self.path_type}"))
            return out
        if not value.startswith("/"):
            out.append((where, f"must be an absolute path starting with '/', got {value!r}"))
        elif self.path_type != "ImplementationSpecific":
            for bad in ("//", "/./", "/../", "%2f", "%2F"):
                if bad in value:
                    out.append((where, f"must not contain {bad!r}, got {value!r}"))
                    break
            else:
                for bad in ("/..", "/."):
                    if value.endswith(bad):
                        out.append((where, f"must not end with {bad!r}, got {value!r}"))
                        break
        return out


class HTTPIngressRuleValue(Model):
    paths: list[HTTPIngressPath] = Field(min_length=1)


class IngressRule(Model):
    # Absent: any host.
    host: Host | None = None
    http: HTTPIngressRuleValue | None = None


class IngressTLS(Model):
    hosts: list[Host] = Field(default_factory=list)
    # A Secret of type kubernetes.io/tls in the Ingress's namespace.
    secret_name: DnsSubdomain | None = None


class IngressSpec(Model):
    ingress_class_name: DnsSubdomain | None = None
    # Requests that match no rule.
    default_backend: IngressBackend | None = None
    tls: list[IngressTLS] = Field(default_factory=list)
    rules: list[IngressRule] = Field(default_factory=list)


@register
class Ingress(Resource):
    GROUP: ClassVar[str] = GROUP
    KIND: ClassVar[str] = "Ingress"
    VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    PLURAL: ClassVar[str] = "ingresses"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ing",)

    spec: IngressSpec

    def validate_semantics(self) -> list[tuple[str, str]]:
        out: Problems = []
        if self.spec.default_backend is None and not self.spec.rules:
            out.append(("spec", "needs rules or a defaultBackend"))
        if self.spec.default_backend is not None:
            out += self.spec.default_backend.problems("spec.defaultBackend")
        for i, rule in enumerate(self.spec.rules):
            if rule.http is None:
                continue
            for j, http_path in enumerate(rule.http.paths):
                out += http_path.problems(f"spec.rules[{i}].http.paths[{j}]")
        return out


__all__ = [
    "GROUP",
    "HTTPIngressPath",
    "Ingress",
    "IngressBackend",
    "IngressRule",
    "IngressSpec",
    "IngressTLS",
]
