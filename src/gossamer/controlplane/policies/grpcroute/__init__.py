"""Gateway API GRPCRoute attached to a Service: method and header matches over gRPC paths.

A gRPC call is `POST /package.Service/Method`; method matches become path matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gossamer.api.kinds.gateway import GRPCMethodMatch, GRPCRoute, GRPCRouteMatch
from gossamer.controlplane.policies.httproute import backends, header_ops
from gossamer.controlplane.translate.routing import (
    EVERYTHING,
    Contribution,
    HeaderOps,
    HttpMatch,
    HttpRule,
)
from gossamer.controlplane.translate.snapshot import MeshSnapshot

SOURCE_RANK = 1


def method_path(method: GRPCMethodMatch | None) -> tuple[str, str]:
    """(path kind, value) for a gRPC method match."""
    if method is None:
        return "prefix", "/"
    if method.type == "RegularExpression":
        return "regex", f"/{method.service or '[^/]+'}/{method.method or '[^/]+'}"
    if method.service and method.method:
        return "exact", f"/{method.service}/{method.method}"
    if method.service:
        return "prefix", f"/{method.service}"
    return "regex", f"/[^/]+/{re.escape(method.method or '')}"


def grpc_match(match: GRPCRouteMatch) -> HttpMatch:
    kind, path = method_path(match.method)
    return HttpMatch(
        path_kind=kind,  # type: ignore[arg-type]
        path=path,
        headers=tuple(
            (h.name.lower(), "regex" if h.type == "RegularExpression" else "exact", h.value)
            for h in match.headers
        ),
        grpc=True,
    )


def contributions(snapshot: MeshSnapshot, problems: list[str]) -> Iterator[Contribution]:
    for route in snapshot.of(GRPCRoute):
        ref = f"GRPCRoute {route.namespace}/{route.name}"
        created = route.metadata.creation_timestamp or ""
        rules = []
        for i, rule in enumerate(route.spec.rules):
            request, response = HeaderOps(), HeaderOps()
            for f in rule.filters:
                if f.type == "RequestHeaderModifier":
                    request = header_ops(f.request_header_modifier)
                elif f.type == "ResponseHeaderModifier":
                    response = header_ops(f.response_header_modifier)
            rules.append(
                HttpRule(
                    source=ref,
                    name=rule.name or f"rules[{i}]",
                    matches=tuple(grpc_match(m) for m in rule.matches) or (EVERYTHING,),
                    backends=backends(route.namespace, rule.backend_refs),
                    request_headers=request,
                    response_headers=response,
                    order=(SOURCE_RANK, created, f"{route.namespace}/{route.name}", i),
                )
            )
        for parent in route.spec.parent_refs:
            if parent.is_service:
                yield Contribution(
                    namespace=parent.namespace or route.namespace,
                    service=parent.name,
                    port=parent.port,
                    http=tuple(rules),
                    source=ref,
                )
