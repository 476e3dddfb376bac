"""The sidecar's xDS client state machine, without I/O.

Responses go in; requests to send (ACKs, NACKs, new subscriptions) and, when the result
is consistent, a new ProxyConfig come out. The grpc shell (ads.py) only moves bytes.

Consistency rules, so that no request fails because of the order updates arrive in:
- warming: a route or listener update that needs a cluster whose endpoints have not
  arrived yet is held until they have (or until `warm_timeout` passes);
- draining: a cluster removed from CDS stays while a published route still uses it.

Both ADS variants feed the same machine: a state-of-the-world response replaces a type's
resources, an incremental (delta) one adds, replaces and removes named resources on top of
the latest set (the held one, if an update of that type is warming).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    ConfigError,
    assemble,
    compile_cluster,
    compile_endpoints,
    compile_listener,
    compile_route_configuration,
    compile_secret,
)

# The order a consistent update is applied in (Envoy's make-before-break).
TYPE_ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
WILDCARD_TYPES = (CLUSTER, LISTENER)

Compiled = m.Listener | m.RouteTable | m.Cluster | tuple[m.Endpoint, ...] | m.Secret

_COMPILERS: Mapping[str, Callable[[Any], Compiled]] = {
    LISTENER: compile_listener,
    ROUTE: compile_route_configuration,
    CLUSTER: compile_cluster,
    ENDPOINT: compile_endpoints,
    SECRET: compile_secret,
}


@dataclass(frozen=True)
class Request:
    """One DiscoveryRequest to send."""

    type_url: str
    version: str
    nonce: str
    names: tuple[str, ...]  # empty for wildcard types
    error: str | None = None  # set: a NACK
    # Only the subscription changed (no response is being answered). Delta streams send
    # it without a nonce, so the server cannot take it for an ACK of a response in flight.
    subscription_only: bool = False


@dataclass
class Pending:
    type_url: str
    version: str
    nonce: str
    items: dict[str, Compiled]
    since: float
    resource_versions: dict[str, str] = field(default_factory=dict)  # delta only


@dataclass
class AdsState:
    clock: Callable[[], float] = time.monotonic
    warm_timeout: float = 5.0
    accepted: dict[str, dict[str, Compiled]] = field(
        default_factory=lambda: {t: {} for t in TYPE_ORDER}
    )
    versions: dict[str, str] = field(default_factory=lambda: {t: "" for t in TYPE_ORDER})
    nonces: dict[str, str] = field(default_factory=lambda: {t: "" for t in TYPE_ORDER})
    subscribed: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {t: () for t in TYPE_ORDER}
    )
    # Per-resource versions of what we hold (delta): sent as initial_resource_versions on
    # reconnect, so the control plane resends only what changed meanwhile.
    resource_versions: dict[str, dict[str, str]] = field(
        default_factory=lambda: {t: {} for t in TYPE_ORDER}
    )
    held: list[Pending] = field(default_factory=list)
    published: m.ProxyConfig | None = None
    last_nack: tuple[str, str, str] | None = None  # (type, version, error)

    def initial_requests(self) -> list[Request]:
        """What to send on a new stream: wildcards, plus what we already hold (reconnect)."""
        out = [Request(t, self.versions[t], "", ()) for t in WILDCARD_TYPES]
        for t in (ENDPOINT, ROUTE, SECRET):
            if self.subscribed[t]:
                out.append(Request(t, self.versions[t], "", self.subscribed[t]))
        return out

    def reset_nonces(self) -> None:
        for t in TYPE_ORDER:
            self.nonces[t] = ""

    def on_response(
        self, type_url: str, version: str, nonce: str, resources: Iterable[tuple[str, Any]]
    ) -> tuple[list[Request], m.ProxyConfig | None]:
        """A state-of-the-world response: compile all or NACK all."""
        compiled = self._compile(type_url, version, nonce, resources)
        if isinstance(compiled, Request):
            return [compiled], None
        items = compiled
        if type_url in (ENDPOINT, ROUTE, SECRET):
            # Named types: a response holds only what we asked for; keep the rest.
            wanted = set(self.subscribed[type_url])
            merged = {k: v for k, v in self.accepted[type_url].items() if k in wanted}
            merged.update(items)
            items = merged
        return self._take(Pending(type_url, version, nonce, items, self.clock()))

    def on_delta_response(
        self,
        type_url: str,
        version: str,
        nonce: str,
        resources: Iterable[tuple[str, str, Any]],
        removed: Iterable[str],
    ) -> tuple[list[Request], m.ProxyConfig | None]:
        """An incremental response: (name, version, message) to add or replace, and names
        to remove. Compiled all or NACKed all, like a state-of-the-world one."""
        added: list[tuple[str, Any]] = []
        versions: dict[str, str] = {}
        for name, resource_version, message in resources:
            added.append((name, message))
            versions[name] = resource_version
        compiled = self._compile(type_url, version, nonce, added)
        if isinstance(compiled, Request):
            return [compiled], None
        base = self._latest(type_url)
        gone = set(removed)
        items = {k: v for k, v in base.items.items() if k not in gone}
        items.update(compiled)
        resource_versions = {k: v for k, v in base.resource_versions.items() if k not in gone}
        resource_versions.update(versions)
        if type_url not in WILDCARD_TYPES:
            wanted = set(self.subscribed[type_url])
            items = {k: v for k, v in items.items() if k in wanted}
            resource_versions = {k: v for k, v in resource_versions.items() if k in wanted}
        pending = Pending(type_url, version, nonce, items, self.clock(), resource_versions)
        return self._take(pending)

    def tick(self) -> tuple[list[Request], m.ProxyConfig | None]:
        """Release held updates whose warming timed out (call periodically)."""
        requests = self._release_held(force=True)
        return requests, self._publish() if requests else None

    # --- internals -----------------------------------------------------------------------

    def _compile(
        self, type_url: str, version: str, nonce: str, resources: Iterable[tuple[str, Any]]
    ) -> dict[str, Compiled] | Request:
        """The compiled resources, or the NACK to send."""
        if type_url not in _COMPILERS:
            return Request(type_url, "", nonce, (), f"type {type_url} is not supported")
        compile_ = _COMPILERS[type_url]
        items: dict[str, Compiled] = {}
        self.nonces[type_url] = nonce
        try:
            for name, message in resources:
                items[name] = compile_(message)
        except ConfigError as exc:
            self.last_nack = (type_url, version, str(exc))
            return self._request(type_url, self.versions[type_url], nonce, str(exc))
        return items

    def _latest(self, type_url: str) -> Pending:
        """What a delta applies to: the warming update of that type, else what is accepted."""
        for p in self.held:
            if p.type_url == type_url:
                return p
        return Pending(
            type_url,
            self.versions[type_url],
            self.nonces[type_url],
            self.accepted[type_url],
            self.clock(),
            self.resource_versions[type_url],
        )

    def _take(self, pending: Pending) -> tuple[list[Request], m.ProxyConfig | None]:
        type_url = pending.type_url
        if type_url in (LISTENER, ROUTE) and self._needs_warming(type_url, pending.items):
            self.held = [p for p in self.held if p.type_url != type_url] + [pending]
            return [], None
        # A newer update of a warming type supersedes the held one.
        self.held = [p for p in self.held if p.type_url != type_url]
        requests = self._accept(pending)
        requests += self._release_held(force=False)
        return requests, self._publish()

    def _request(self, type_url: str, version: str, nonce: str, error: str | None) -> Request:
        names = () if type_url in WILDCARD_TYPES else self.subscribed[type_url]
        return Request(type_url, version, nonce, names, error)

    def _accept(self, pending: Pending) -> list[Request]:
        t = pending.type_url
        self.accepted[t] = pending.items
        self.versions[t] = pending.version
        self.resource_versions[t] = pending.resource_versions
        requests = [self._request(t, pending.version, pending.nonce, None)]
        # New references: subscribe to what the accepted resources need.
        for dep_type, names in self._dependencies().items():
            if names != self.subscribed[dep_type]:
                self.subscribed[dep_type] = names
                requests.append(
                    Request(
                        dep_type,
                        self.versions[dep_type],
                        self.nonces[dep_type],
                        names,
                        subscription_only=True,
                    )
                )
        return requests

    def _dependencies(self) -> dict[str, tuple[str, ...]]:
        eds = sorted(
            name
            for name, c in self.accepted[CLUSTER].items()
            if isinstance(c, m.Cluster) and c.kind == "eds"
        )
        rds: set[str] = set()
        sds: set[str] = set()
        for lst in self.accepted[LISTENER].values():
            assert isinstance(lst, m.Listener)
            if isinstance(lst.handler, m.HttpConnectionManager) and lst.handler.route_config_name:
                rds.add(lst.handler.route_config_name)
            if lst.tls is not None:
                sds.add(lst.tls.certificate_secret)
                if lst.tls.trust_secret:
                    sds.add(lst.tls.trust_secret)
        for c in self.accepted[CLUSTER].values():
            assert isinstance(c, m.Cluster)
            if c.tls is not None:
                sds.update(s for s in (c.tls.certificate_secret, c.tls.trust_secret) if s)
        return {ENDPOINT: tuple(eds), ROUTE: tuple(sorted(rds)), SECRET: tuple(sorted(sds))}

    def _warm_clusters(self) -> set[str]:
        warm = set()
        for name, c in self.accepted[CLUSTER].items():
            assert isinstance(c, m.Cluster)
            if c.kind != "eds" or name in self.accepted[ENDPOINT]:
                warm.add(name)
        return warm

    def _needs_warming(self, type_url: str, items: Mapping[str, Compiled]) -> bool:
        warm = self._warm_clusters()
        return bool(_referenced_clusters(items.values()) - warm)

    def _release_held(self, force: bool) -> list[Request]:
        requests: list[Request] = []
        still: list[Pending] = []
        now = self.clock()
        for p in sorted(self.held, key=lambda p: TYPE_ORDER.index(p.type_url)):
            ready = not self._needs_warming(p.type_url, p.items)
            if ready or (force and now - p.since >= self.warm_timeout):
                requests += self._accept(p)
            else:
                still.append(p)
        self.held = still
        return requests

    def _publish(self) -> m.ProxyConfig | None:
        if not self.versions[LISTENER]:
            return None  # not ready until listeners arrive
        routes = {k: v for k, v in self.accepted[ROUTE].items() if isinstance(v, m.RouteTable)}
        secrets = {k: v for k, v in self.accepted[SECRET].items() if isinstance(v, m.Secret)}
        listeners: dict[str, m.Listener] = {}
        incomplete = False
        for name, lst in self.accepted[LISTENER].items():
            assert isinstance(lst, m.Listener)
            if _missing(lst, routes, secrets):
                # Listener warming: active once its routes and certificates are here; until
                # then the previous version (if any) keeps serving.
                incomplete = True
                if self.published is not None and name in self.published.listeners:
                    listeners[name] = self.published.listeners[name]
                continue
            listeners[name] = lst
        if self.published is None and incomplete:
            return None  # the first config is published whole
        clusters = {k: v for k, v in self.accepted[CLUSTER].items() if isinstance(v, m.Cluster)}
        if self.published is not None:
            in_use = _referenced_clusters(listeners.values())
            in_use |= _referenced_clusters(routes.values())
            for name in in_use - clusters.keys():
                old = self.published.clusters.get(name)
                if old is not None:
                    clusters[name] = old  # draining: still routed to
        endpoints = {k: v for k, v in self.accepted[ENDPOINT].items() if isinstance(v, tuple)}
        if self.published is not None:
            for name, c in clusters.items():
                if c.kind == "eds" and name not in endpoints and name in self.published.clusters:
                    endpoints[name] = self.published.clusters[name].endpoints
        self.published = assemble(
            listeners, routes, clusters, endpoints, secrets, dict(self.versions)
        )
        return self.published


def _missing(lst: m.Listener, routes: Mapping[str, Any], secrets: Mapping[str, Any]) -> bool:
    handler = lst.handler
    if (
        isinstance(handler, m.HttpConnectionManager)
        and handler.route_config_name
        and handler.route_config_name not in routes
    ):
        return True
    if lst.tls is not None:
        needed = [lst.tls.certificate_secret, lst.tls.trust_secret]
        if any(s and s not in secrets for s in needed):
            return True
    return False


def _referenced_clusters(items: Iterable[Compiled]) -> set[str]:
    names: set[str] = set()
    for item in items:
        if isinstance(item, m.RouteTable):
            for vh in item.virtual_hosts:
                for route in vh.routes:
                    if isinstance(route.action, m.RouteAction):
                        names.update(c.name for c in route.action.clusters)
        elif isinstance(item, m.Listener):
            handler = item.handler
            if isinstance(handler, m.TcpProxy):
                names.update(c.name for c in handler.clusters)
            elif handler.route_table is not None:
                names |= _referenced_clusters([handler.route_table])
    return names
