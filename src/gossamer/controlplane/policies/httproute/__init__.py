"""Gateway API HTTPRoute, mesh (GAMMA) side: routes attached to a Service by parentRefs.

Each rule becomes an HttpRule for the parent's port(s); path/header/query/method matches,
header modifiers, URLRewrite (prefix or full path, hostname), RequestRedirect, timeouts.
Routes attached to a Gateway are the gateway's business (controlplane/translate/gateway).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from gossamer.api.kinds.gateway import (
    BackendRef,
    HTTPHeaderFilter,
    HTTPRoute,
    HTTPRouteFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
)
from gossamer.api.model import parse_duration
from gossamer.controlplane.translate.routing import (
    Backend,
    Contribution,
    HeaderOps,
    HttpMatch,
    HttpRule,
    MatchKind,
    Redirect,
)
from gossamer.controlplane.translate.snapshot import MeshSnapshot

SOURCE_RANK = 0


def contributions(snapshot: MeshSnapshot, problems: list[str]) -> Iterator[Contribution]:
    for route in snapshot.of(HTTPRoute):
        ref = f"HTTPRoute {route.namespace}/{route.name}"
        rules = tuple(
            http_rule(route.namespace, ref, i, rule, _order(route, i))
            for i, rule in enumerate(route.spec.rules)
        )
        for parent in route.spec.parent_refs:
            if not parent.is_service:
                continue
            yield Contribution(
                namespace=parent.namespace or route.namespace,
                service=parent.name,
                port=parent.port,
                http=rules,
                source=ref,
            )


def _order(route: HTTPRoute, index: int) -> tuple[int, str, str, int]:
    created = route.metadata.creation_timestamp or ""
    return (SOURCE_RANK, created, f"{route.namespace}/{route.name}", index)


def http_rule(
    namespace: str, ref: str, index: int, rule: HTTPRouteRule, order: tuple[int, str, str, int]
) -> HttpRule:
    matches = tuple(http_match(m) for m in rule.effective_matches)
    ops = _Filters(rule.filters, matches)
    timeout = None
    if rule.timeouts is not None and rule.timeouts.request:
        timeout = parse_duration(rule.timeouts.request) or None
    return HttpRule(
        source=ref,
        name=rule.name or f"rules[{index}]",
        matches=matches,
        backends=backends(namespace, rule.backend_refs),
        request_headers=ops.request,
        response_headers=ops.response,
        prefix_rewrite=ops.prefix_rewrite,
        full_path_rewrite=ops.full_path_rewrite,
        host_rewrite=ops.host_rewrite,
        redirect=ops.redirect,
        timeout=timeout,
        order=order,
    )


def backends(namespace: str, refs: Sequence[BackendRef]) -> tuple[Backend, ...]:
    return tuple(
        Backend(ref.namespace or namespace, ref.name, ref.port or 0, ref.weight)
        for ref in refs
        if ref.is_service and ref.weight > 0
    )


def _match_kind(kind: str) -> MatchKind:
    return "regex" if kind == "RegularExpression" else "exact"


def http_match(match: HTTPRouteMatch) -> HttpMatch:
    path = match.path
    if path.type == "Exact":
        kind, value = "exact", path.value
    elif path.type == "RegularExpression":
        kind, value = "regex", path.value
    else:
        # PathPrefix matches whole segments: /foo matches /foo and /foo/bar, not /foobar.
        kind, value = "prefix", (path.value.rstrip("/") or "/")
    return HttpMatch(
        path_kind=kind,  # type: ignore[arg-type]
        path=value,
        headers=tuple((h.name.lower(), _match_kind(h.type), h.value) for h in match.headers),
        query=tuple((q.name, _match_kind(q.type), q.value) for q in match.query_params),
        method=match.method,
    )


def header_ops(f: HTTPHeaderFilter | None) -> HeaderOps:
    if f is None:
        return HeaderOps()
    return HeaderOps(
        set=tuple((h.name.lower(), h.value) for h in f.set),
        add=tuple((h.name.lower(), h.value) for h in f.add),
        remove=tuple(h.lower() for h in f.remove),
    )


class _Filters:
    """The effect of a rule's filters, read once."""

    def __init__(self, filters: Iterable[HTTPRouteFilter], matches: tuple[HttpMatch, ...]) -> None:
        self.request = HeaderOps()
        self.response = HeaderOps()
        self.prefix_rewrite: str | None = None
        self.full_path_rewrite: str | None = None
        self.host_rewrite: str | None = None
        self.redirect: Redirect | None = None
        for f in filters:
            if f.type == "RequestHeaderModifier":
                self.request = header_ops(f.request_header_modifier)
            elif f.type == "ResponseHeaderModifier":
                self.response = header_ops(f.response_header_modifier)
            elif f.type == "URLRewrite" and f.url_rewrite is not None:
                self.host_rewrite = f.url_rewrite.hostname
                path = f.url_rewrite.path
                if path is not None and path.type == "ReplacePrefixMatch":
                    self.prefix_rewrite = path.replace_prefix_match or "/"
                elif path is not None:
                    self.full_path_rewrite = path.replace_full_path or "/"
            elif f.type == "RequestRedirect" and f.request_redirect is not None:
                rr = f.request_redirect
                path = rr.path
                self.redirect = Redirect(
                    status=rr.status_code,
                    scheme=rr.scheme,
                    host=rr.hostname,
                    port=rr.port,
                    full_path=path.replace_full_path
                    if path and path.type == "ReplaceFullPath"
                    else None,
                    prefix=(path.replace_prefix_match or "/")
                    if path and path.type == "ReplacePrefixMatch"
                    else None,
                )


def prefix_rewrite_regex(prefix: str) -> str:
    """The regex that strips a matched prefix and the slashes after it (`/route1/x` → `/x`)."""
    return "^" + re.escape(prefix.rstrip("/")) + "/*"
