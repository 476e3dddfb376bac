"""Routing: match a request against a RouteTable, and what the matched route does to it.

The config model (proxy/config/model.py) is protobuf-free and immutable; this module
compiles it once more, per config swap, into what the hot path wants: match values as
bytes (the parser gives bytes; nothing is decoded unless a regex or header matcher needs
it), a flag for the catch-all route so the common case does no work at all, the header
mutations of weighted cluster + route + virtual host + route table merged and encoded,
and the direct responses pre-serialised.

Envoy's semantics: virtual hosts by domain (exact, longest `*.suffix`, longest `prefix.*`,
`*`); routes in order, first match wins; prefix matches the path with its query string,
exact / path-separated-prefix / regex match the path without it; all header and query
matchers must match. Header mutations: remove, then set (replace), then add; when two
levels set the same header the less specific wins, as in Envoy's default.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping, Sequence
from typing import Final

from gossamer.protocols.http1 import RequestHead
from gossamer.proxy.config import model as m
from gossamer.proxy.filters.balance import HashPolicies

FORWARD: Final = 0
DIRECT: Final = 1
REDIRECT: Final = 2

HeaderPairs = tuple[tuple[bytes, bytes], ...]
# The one Envoy command operator honoured, in the headers of local replies only.
REQ_AUTHORITY: Final = b"%REQ(:AUTHORITY)%"
_VH_CACHE_MAX: Final = 1024


class HeaderPlan:
    """Header mutations for one direction, encoded for the http1 head builders."""

    __slots__ = ("add", "dynamic", "empty", "remove", "set")

    def __init__(
        self, levels: Sequence[m.HeaderMutation], extra_remove: Sequence[str] = ()
    ) -> None:
        # Most specific level first; a later (less specific) set of the same name wins.
        sets: dict[bytes, bytes] = {}
        add: list[tuple[bytes, bytes]] = []
        remove: set[bytes] = {h.lower().encode() for h in extra_remove}
        for level in levels:
            for name, value in level.set:
                sets[name.encode()] = value.encode()
            add += [(name.encode(), value.encode()) for name, value in level.add]
            remove |= {name.encode() for name in level.remove}
        self.set: HeaderPairs = tuple(sets.items())
        self.add: HeaderPairs = tuple(add)
        self.remove: frozenset[bytes] = frozenset(remove)
        self.empty = not (self.set or self.add or self.remove)
        self.dynamic = any(REQ_AUTHORITY in v for _, v in (*self.set, *self.add))


class RouteEntry:
    """One compiled route: its matcher and its action, ready for the data path."""

    __slots__ = (
        "always",
        "case_sensitive",
        "cluster_names",
        "cumulative",
        "direct_body",
        "direct_status",
        "grpc_only",
        "hash",
        "hashing",
        "headers",
        "host_rewrite",
        "kind",
        "name",
        "path",
        "path_kind",
        "prefix_rewrite",
        "query",
        "redirect",
        "regex",
        "regex_rewrite",
        "request_plans",
        "response_plans",
        "retry",
        "rewrites",
        "route",
        "stream_idle",
        "timeout",
        "total_weight",
    )

    def __init__(self, route: m.Route, vh: m.VirtualHost, table: m.RouteTable) -> None:
        self.route = route
        self.name = route.name
        match = route.match
        self.path_kind = match.path_kind
        self.case_sensitive = match.case_sensitive
        path = match.path.encode()
        self.path = path if match.case_sensitive else path.lower()
        self.regex = match.regex
        self.headers = match.headers
        self.query = match.query
        self.grpc_only = match.grpc_only
        self.always = (
            match.path_kind == "prefix"
            and match.path in ("", "/")
            and not match.headers
            and not match.query
            and not match.grpc_only
        )
        action = route.action
        self.cluster_names: tuple[str, ...] = ()
        self.cumulative: tuple[int, ...] = ()
        self.total_weight = 0
        self.request_plans: tuple[HeaderPlan, ...] = ()
        self.response_plans: tuple[HeaderPlan, ...] = ()
        self.prefix_rewrite: bytes | None = None
        self.regex_rewrite = None
        self.host_rewrite: bytes | None = None
        self.timeout: float | None = None
        self.retry: m.RetryPolicy | None = None
        self.stream_idle: float | None = None  # the route's own stream idle timeout
        self.hash = HashPolicies(())
        self.direct_status = 0
        self.direct_body = b""
        self.redirect: m.Redirect | None = None
        self.hashing = False
        self.rewrites = False
        if isinstance(action, m.RouteAction):
            self.kind = FORWARD
            self.cluster_names = tuple(c.name for c in action.clusters)
            self.cumulative = action.cumulative or _cumulative(action.clusters)
            self.total_weight = action.total_weight
            self.request_plans = tuple(
                HeaderPlan(
                    (c.request_headers, route.request_headers, vh.request_headers),
                    table.request_headers_to_remove,
                )
                for c in action.clusters
            )
            self.response_plans = tuple(
                HeaderPlan((c.response_headers, route.response_headers, vh.response_headers))
                for c in action.clusters
            )
            if action.prefix_rewrite is not None:
                self.prefix_rewrite = action.prefix_rewrite.encode()
            self.regex_rewrite = action.regex_rewrite
            if action.host_rewrite:
                self.host_rewrite = action.host_rewrite.encode()
            self.timeout = action.timeout
            self.retry = action.retry if action.retry and action.retry.num_retries > 0 else None
            self.stream_idle = action.idle_timeout
            self.hash = HashPolicies(action.hash_policies)
            self.hashing = bool(action.hash_policies)
            self.rewrites = self.prefix_rewrite is not None or self.regex_rewrite is not None
        elif isinstance(action, m.DirectResponse):
            self.kind = DIRECT
            self.direct_status = action.status
            self.direct_body = action.body
            self.response_plans = (HeaderPlan((route.response_headers, vh.response_headers)),)
        else:
            self.kind = REDIRECT
            self.redirect = action
            self.response_plans = (HeaderPlan((route.response_headers, vh.response_headers)),)

    def matches(self, head: RequestHead, authority: bytes) -> bool:
        if self.always:
            return True
        full = head.path
        kind = self.path_kind
        if kind == "prefix":
            candidate = full if self.case_sensitive else full.lower()
            if not candidate.startswith(self.path):
                return False
        else:
            q = full.find(b"?")
            path = full if q < 0 else full[:q]
            if kind == "regex":
                assert self.regex is not None
                if self.regex.fullmatch(path.decode("latin-1")) is None:
                    return False
            else:
                candidate = path if self.case_sensitive else path.lower()
                if kind == "exact":
                    if candidate != self.path:
                        return False
                elif not (  # path_separated_prefix: the prefix, then "/" or nothing
                    candidate == self.path
                    or (
                        candidate.startswith(self.path)
                        and candidate[len(self.path) : len(self.path) + 1] == b"/"
                    )
                ):
                    return False
        if self.grpc_only:
            ctype = _header(head, "content-type")
            if ctype is None or not ctype.startswith("application/grpc"):
                return False
        for hm in self.headers:
            if not hm.match.matches(_pseudo_or_header(head, hm.name, authority)):
                return False
        if self.query:
            q = full.find(b"?")
            params: dict[str, str] = {}
            if q >= 0:
                from urllib.parse import parse_qsl  # rare; costs a worker 0.7 MiB

                query = full[q + 1 :].decode("latin-1")
                for key, value in parse_qsl(query, keep_blank_values=True):
                    params.setdefault(key, value)
            for qm in self.query:
                if not qm.match.matches(params.get(qm.name)):
                    return False
        return True

    def pick(self, rng: random.Random) -> int:
        """Index of the weighted cluster for one request: one draw against `cumulative`."""
        if len(self.cumulative) == 1:
            return 0
        return bisect.bisect_right(self.cumulative, rng.randrange(self.total_weight))

    def upstream_path(self, path: bytes) -> bytes | None:
        """The rewritten origin-form path, or None when unchanged."""
        if self.prefix_rewrite is not None:
            if self.path_kind in ("prefix", "path_separated_prefix"):
                return self.prefix_rewrite + path[len(self.path) :]
            q = path.find(b"?")
            return self.prefix_rewrite + (path[q:] if q >= 0 else b"")
        if self.regex_rewrite is not None:
            pattern, substitution = self.regex_rewrite
            q = path.find(b"?")
            bare, query = (path, b"") if q < 0 else (path[:q], path[q:])
            return pattern.sub(substitution, bare.decode("latin-1")).encode("latin-1") + query
        return None

    def redirect_location(self, head: RequestHead, authority: bytes) -> bytes:
        rd = self.redirect
        assert rd is not None
        scheme = (rd.scheme or "http").encode()
        host_port = authority
        if rd.host is not None or rd.port is not None:
            host, _, port = authority.partition(b":")
            if rd.host is not None:
                host = rd.host.encode()
            if rd.port is not None:
                port = str(rd.port).encode()
            host_port = host + (b":" + port if port else b"")
        path = head.path
        if rd.path is not None:
            q = path.find(b"?")
            path = rd.path.encode() + (path[q:] if q >= 0 and b"?" not in rd.path.encode() else b"")
        elif rd.prefix_rewrite is not None and self.path_kind == "prefix":
            path = rd.prefix_rewrite.encode() + path[len(self.path) :]
        return b"%s://%s%s" % (scheme, host_port, path)

    def __repr__(self) -> str:
        return f"<RouteEntry {self.name!r}>"


def _cumulative(clusters: Sequence[m.WeightedCluster]) -> tuple[int, ...]:
    out, total = [], 0
    for c in clusters:
        total += c.weight
        out.append(total)
    return tuple(out)


def _header(head: RequestHead, name: str) -> str | None:
    """All values of a header joined by "," (as Envoy matches them), decoded, or None."""
    wanted = name.encode()
    values = [v for n, v in head.headers if n.lower() == wanted]
    if not values:
        return None
    return b",".join(values).decode("latin-1")


def _pseudo_or_header(head: RequestHead, name: str, authority: bytes) -> str | None:
    if name[:1] == ":":
        if name == ":method":
            return head.method.decode("latin-1")
        if name == ":authority" or name == "host":
            return authority.decode("latin-1")
        if name == ":path":
            return head.path.decode("latin-1")
        if name == ":scheme":
            return "http"
        return None
    if name == "host":
        return authority.decode("latin-1")
    return _header(head, name)


class CompiledVirtualHost:
    __slots__ = ("name", "routes", "vh")

    def __init__(self, vh: m.VirtualHost, table: m.RouteTable) -> None:
        self.vh = vh
        self.name = vh.name
        self.routes = tuple(RouteEntry(r, vh, table) for r in vh.routes)

    def match(self, head: RequestHead, authority: bytes) -> RouteEntry | None:
        for entry in self.routes:
            if entry.always or entry.matches(head, authority):
                return entry
        return None


class CompiledTable:
    """A RouteTable for the data path; `find` caches the domain lookup per authority."""

    __slots__ = ("_cache", "_hosts", "table")

    def __init__(self, table: m.RouteTable) -> None:
        self.table = table
        self._hosts: Mapping[int, CompiledVirtualHost] = {
            id(vh): CompiledVirtualHost(vh, table) for vh in table.virtual_hosts
        }
        self._cache: dict[bytes, CompiledVirtualHost | None] = {}

    def find(self, authority: bytes) -> CompiledVirtualHost | None:
        try:
            return self._cache[authority]
        except KeyError:
            pass
        vh = self.table.virtual_host(authority.decode("latin-1"))
        result = self._hosts[id(vh)] if vh is not None else None
        if len(self._cache) < _VH_CACHE_MAX:  # bounded: authorities come from clients
            self._cache[authority] = result
        return result

    def route(self, head: RequestHead, authority: bytes) -> RouteEntry | None:
        vh = self.find(authority)
        return vh.match(head, authority) if vh is not None else None
