"""Authorization: TrafficPermission and SMI TrafficTarget → Envoy RBAC filters.

Enforced by the destination's inbound sidecar. The decision order of TrafficPermission
(its docstring in api/kinds/policies.py) maps onto two RBAC filters, as Istio does it:

1. a DENY filter holding every applicable DENY entry (DENY wins: it runs first);
2. an ALLOW filter holding every ALLOW entry (TrafficPermission ALLOW entries and SMI
   TrafficTargets, which only allow), present when there is any ALLOW entry or the mesh
   is default-deny; with no policy in it, it denies everything ("default-deny").

Shadow-mode permissions go into `shadow_rules` of the same filters (together with the
enforced ones, so the shadow decision is "as if they were enforced too"). HTTP ports get
`envoy.filters.http.rbac` in the inbound HCM; TCP ports get `envoy.filters.network.rbac`
before the TCP proxy, where rules that need HTTP attributes fail closed.

RBAC policy names are `<namespace>/<name>#<entry>`: the sidecar reports the part before
`#` as the deciding policy (header `x-gossamer-authz`). Callers are matched on the SPIFFE
ID of their verified certificate: `spiffe://<trust domain>/ns/<ns>/sa/<service account>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from envoy.config.listener.v3 import listener_components_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as net_rbac_pb2
from envoy.type.matcher.v3 import path_pb2, regex_pb2, string_pb2

from gossamer.api.kinds.policies import HeaderMatch, PathMatch, PermissionRule, TrafficPermission
from gossamer.api.kinds.smi import HTTPMatch, HTTPRouteGroup, SMITCPRoute, TrafficTarget
from gossamer.api.model import TargetRef
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.snapshot import MeshSnapshot

HTTP_RBAC = "envoy.filters.http.rbac"
NETWORK_RBAC = "envoy.filters.network.rbac"
# Stat prefixes name why the ALLOW filter refused: the mesh default, or an allow list.
DENY_PREFIX = "authz_deny."
ALLOW_LIST_PREFIX = "authz_allow_list."
DEFAULT_DENY_PREFIX = "authz_default_deny."

Permission: Any = rbac_pb2.Permission
Principal: Any = rbac_pb2.Principal


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True)
class Destination:
    """The inbound side being protected: who the sidecar is and which port."""

    namespace: str
    service: str
    service_account: str
    labels: tuple[tuple[str, str], ...]  # sorted (hashable: results are cached per destination)
    port: int  # service port
    target_port: int
    tcp: bool


@dataclass
class _Sets:
    deny: dict[str, rbac_pb2.Policy] = field(default_factory=dict)
    allow: dict[str, rbac_pb2.Policy] = field(default_factory=dict)
    shadow_deny: dict[str, rbac_pb2.Policy] = field(default_factory=dict)
    shadow_allow: dict[str, rbac_pb2.Policy] = field(default_factory=dict)


# --- matchers ------------------------------------------------------------------------------


def _regex(pattern: str) -> string_pb2.StringMatcher:
    return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=pattern))


def _path(sm: string_pb2.StringMatcher) -> Any:
    return Permission(url_path=path_pb2.PathMatcher(path=sm))


def _or(perms: list[Any]) -> Any:
    if len(perms) == 1:
        return perms[0]
    return Permission(or_rules=rbac_pb2.Permission.Set(rules=perms))


def _path_match(pm: PathMatch) -> Any:
    if pm.type == "Exact":
        return _path(string_pb2.StringMatcher(exact=pm.value))
    if pm.type == "RegularExpression":
        return _path(_regex(pm.value))
    if pm.value.endswith("/"):
        return _path(string_pb2.StringMatcher(prefix=pm.value))
    # Whole segments: /api matches /api and /api/x, not /apix.
    return _or(
        [
            _path(string_pb2.StringMatcher(exact=pm.value)),
            _path(string_pb2.StringMatcher(prefix=pm.value + "/")),
        ]
    )


def _header(hm: HeaderMatch) -> Any:
    name = hm.name.lower()
    if hm.type == "Present":
        return Permission(header=e.header_matcher(name, "present"))
    kind = "regex" if hm.type == "RegularExpression" else "exact"
    return Permission(header=e.header_matcher(name, kind, hm.value or ""))


def _methods(methods: Iterable[str]) -> Any:
    return _or([Permission(header=e.header_matcher(":method", "exact", m)) for m in methods])


def _and(parts: list[Any]) -> Any:
    if not parts:
        return Permission(any=True)
    if len(parts) == 1:
        return parts[0]
    return Permission(and_rules=rbac_pb2.Permission.Set(rules=parts))


def _rule_permission(rule: PermissionRule) -> Any:
    parts = []
    if rule.methods:
        parts.append(_methods(rule.methods))
    if rule.paths:
        parts.append(_or([_path_match(p) for p in rule.paths]))
    parts += [_header(h) for h in rule.headers or ()]
    return _and(parts)


def _smi_permission(match: HTTPMatch) -> Any:
    parts = []
    if not match.any_method:
        parts.append(_methods(match.methods))
    if match.path_regex:
        parts.append(_path(_regex(match.path_regex)))
    for name, regex in sorted(match.header_map().items()):
        parts.append(Permission(header=e.header_matcher(name, "regex", regex)))
    return _and(parts)


NOBODY = Principal(not_id=Principal(any=True))


def _principal_ids(ids: Iterable[str]) -> Any:
    principals = [
        Principal(
            authenticated=Principal.Authenticated(principal_name=string_pb2.StringMatcher(exact=i))
        )
        for i in sorted(set(ids))
    ]
    if not principals:
        return NOBODY  # e.g. a Service without workloads: nobody can be it
    if len(principals) == 1:
        return principals[0]
    return Principal(or_ids=rbac_pb2.Principal.Set(ids=principals))


# --- translation ---------------------------------------------------------------------------


class AuthzTranslator:
    """RBAC filters per destination, for one snapshot (results cached per destination)."""

    def __init__(self, snapshot: MeshSnapshot) -> None:
        self.snapshot = snapshot
        mesh = snapshot.mesh
        self.trust_domain = mesh.mtls.trust_domain
        self.default_deny = mesh.default_access == "deny"
        self.permissions = snapshot.of(TrafficPermission)
        self.targets = snapshot.of(TrafficTarget)
        self.groups = {(g.namespace, g.name): g for g in snapshot.of(HTTPRouteGroup)}
        self.tcp_routes = {(r.namespace, r.name): r for r in snapshot.of(SMITCPRoute)}
        self.active = bool(self.permissions or self.targets or self.default_deny)
        self._cache: dict[Destination, tuple[object, ...]] = {}

    # Which callers an entry names.

    def _caller(self, ref: TargetRef, namespace: str) -> Any:
        td = self.trust_domain
        if ref.kind == "Mesh":
            return Principal(any=True)
        if ref.kind == "Namespace":
            prefix = f"spiffe://{td}/ns/{ref.name}/sa/"
            return Principal(
                authenticated=Principal.Authenticated(
                    principal_name=string_pb2.StringMatcher(prefix=prefix)
                )
            )
        ns = ref.namespace or namespace
        if ref.kind == "ServiceAccount":
            return _principal_ids([spiffe_id(td, ns, str(ref.name))])
        # A Service: the identities of the workloads it selects.
        registry = self.snapshot.registry
        svc = registry.service(ns, str(ref.name))
        accounts: set[str] = set()
        if svc is not None:
            for p in svc.ports:
                accounts |= {ep.service_account for ep in registry.endpoints(svc, p.port)}
        return _principal_ids(spiffe_id(td, ns, sa) for sa in accounts)

    def _selects(self, tp: TrafficPermission, dest: Destination) -> bool:
        ref = tp.spec.target_ref
        if ref.kind == "Mesh":
            return True
        ns = ref.namespace or tp.namespace
        if ns != dest.namespace:
            return False
        if ref.port is not None and ref.port != dest.port:
            return False
        labels = dict(dest.labels)
        if ref.labels and any(labels.get(k) != v for k, v in ref.labels.items()):
            return False
        svc = self.snapshot.registry.service(ns, str(ref.name))
        if svc is not None and svc.selector:
            return all(labels.get(k) == v for k, v in svc.selector.items())
        return dest.service == ref.name

    def _permission_entries(self, dest: Destination, sets: _Sets) -> None:
        for tp in self.permissions:
            if not self._selects(tp, dest):
                continue
            shadow = tp.spec.mode == "shadow"
            for i, item in enumerate(tp.spec.from_):
                conf = item.default
                name = f"{tp.namespace}/{tp.name}#from[{i}]"
                if conf.rules is None:
                    perm = Permission(any=True)
                elif dest.tcp:
                    # No method, path or header on TCP: fail closed.
                    if conf.action == "ALLOW":
                        continue
                    perm = Permission(any=True)
                else:
                    perm = _or([_rule_permission(r) for r in conf.rules])
                policy = rbac_pb2.Policy(
                    permissions=[perm], principals=[self._caller(item.target_ref, tp.namespace)]
                )
                if conf.action == "DENY":
                    (sets.shadow_deny if shadow else sets.deny)[name] = policy
                else:
                    (sets.shadow_allow if shadow else sets.allow)[name] = policy

    def _target_entries(self, dest: Destination, sets: _Sets) -> None:
        for tt in self.targets:
            ns, sa = tt.destination_identity()
            if (ns, sa) != (dest.namespace, dest.service_account):
                continue
            port = tt.spec.destination.port
            if port is not None and port not in (dest.port, dest.target_port):
                continue
            perms: list[Any] = []
            for rule in tt.spec.rules:
                if rule.kind == "HTTPRouteGroup":
                    group = self.groups.get((tt.namespace, rule.name))
                    if group is None or dest.tcp:
                        continue  # unknown group: allows nothing; on TCP: fails closed
                    for match in group.spec.matches:
                        if not rule.matches or match.name in rule.matches:
                            perms.append(_smi_permission(match))
                elif rule.kind == "TCPRoute":
                    route = self.tcp_routes.get((tt.namespace, rule.name))
                    if route is None:
                        continue
                    if route.ports and not {dest.port, dest.target_port} & set(route.ports):
                        continue
                    perms.append(Permission(any=True))
                # UDPRoute: Gossamer carries no UDP; allows nothing.
            if not perms:
                continue
            principal = _principal_ids(
                spiffe_id(self.trust_domain, sns, ssa) for sns, ssa in tt.source_identities()
            )
            sets.allow[f"{tt.namespace}/{tt.name}#rules"] = rbac_pb2.Policy(
                permissions=perms, principals=[principal]
            )

    def filters(self, dest: Destination) -> tuple[object, ...]:
        """The RBAC filters (HttpFilter or network Filter messages) for the destination,
        in order; empty when nothing restricts it."""
        if not self.active:
            return ()
        cached = self._cache.get(dest)
        if cached is not None:
            return cached
        sets = _Sets()
        self._permission_entries(dest, sets)
        self._target_entries(dest, sets)
        out: list[object] = []
        has_shadow = bool(sets.shadow_deny or sets.shadow_allow)
        if sets.deny or sets.shadow_deny:
            rules = _rbac(rbac_pb2.RBAC.DENY, sets.deny)
            shadow = _rbac(rbac_pb2.RBAC.DENY, {**sets.deny, **sets.shadow_deny})
            out.append(self._filter(dest, rules, shadow if has_shadow else None, DENY_PREFIX))
        enforce_allow = bool(sets.allow) or self.default_deny
        shadow_allow = enforce_allow or bool(sets.shadow_allow)
        if shadow_allow:
            prefix = DEFAULT_DENY_PREFIX if self.default_deny else ALLOW_LIST_PREFIX
            rules = _rbac(rbac_pb2.RBAC.ALLOW, sets.allow) if enforce_allow else None
            shadow = _rbac(rbac_pb2.RBAC.ALLOW, {**sets.allow, **sets.shadow_allow})
            out.append(self._filter(dest, rules, shadow if has_shadow else None, prefix))
        result = tuple(out)
        self._cache[dest] = result
        return result

    def _filter(
        self,
        dest: Destination,
        rules: rbac_pb2.RBAC | None,
        shadow: rbac_pb2.RBAC | None,
        prefix: str,
    ) -> object:
        if dest.tcp:
            net = net_rbac_pb2.RBAC(stat_prefix=prefix)
            if rules is not None:
                net.rules.CopyFrom(rules)
            if shadow is not None:
                net.shadow_rules.CopyFrom(shadow)
                net.shadow_rules_stat_prefix = "shadow_"
            return listener_components_pb2.Filter(name=NETWORK_RBAC, typed_config=e.pack(net))
        http = http_rbac_pb2.RBAC(rules_stat_prefix=prefix)
        if rules is not None:
            http.rules.CopyFrom(rules)
        if shadow is not None:
            http.shadow_rules.CopyFrom(shadow)
            http.shadow_rules_stat_prefix = "shadow_"
        return hcm_pb2.HttpFilter(name=HTTP_RBAC, typed_config=e.pack(http))


def _rbac(action: int, policies: Mapping[str, rbac_pb2.Policy]) -> rbac_pb2.RBAC:
    out = rbac_pb2.RBAC(action=action)
    for name in sorted(policies):
        out.policies[name].CopyFrom(policies[name])
    return out


__all__ = ["AuthzTranslator", "Destination", "spiffe_id"]
