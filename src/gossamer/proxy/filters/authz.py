"""Authorization: RBAC filters evaluated on the caller's verified identity.

The config (model.RbacFilter, from Envoy RBAC) is compiled here once per config swap into
closures. Per request, only permissions are evaluated: principals depend on the
connection's identity alone, so the policies whose principals match an identity are
computed once per identity and cached (bounded). A chain of filters is evaluated in order,
as Envoy does: a DENY filter refuses when one of its policies matches; an ALLOW filter
refuses when none does. The first refusal decides.

Shadow rules are evaluated only for requests that are allowed, and only to count (and
log) what a stricter policy would deny.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from gossamer.protocols.http1 import RequestHead
from gossamer.proxy.config import model as m
from gossamer.proxy.filters.route import _pseudo_or_header
from gossamer.proxy.filters.stats import Stats

DEFAULT_DENY: Final = "default-deny"
_CACHE_MAX: Final = 1024  # identities remembered per authorizer

# A permission check: (request head or None on TCP, authority) → matches.
Check = Callable[[RequestHead | None, bytes], bool]


def _any(head: RequestHead | None, authority: bytes) -> bool:
    return True


def _compile_permission(p: m.RbacPermission) -> Check:
    kind = p.kind
    if kind == "any":
        return _any
    if kind == "header":
        hm = p.header
        assert hm is not None
        name, sm = hm.name, hm.match

        def header(head: RequestHead | None, authority: bytes) -> bool:
            return head is not None and sm.matches(_pseudo_or_header(head, name, authority))

        return header
    if kind == "path":
        pm = p.path
        assert pm is not None

        def path(head: RequestHead | None, authority: bytes) -> bool:
            if head is None:
                return False
            full = head.path
            q = full.find(b"?")
            return pm.matches((full if q < 0 else full[:q]).decode("latin-1"))

        return path
    children = tuple(_compile_permission(c) for c in p.children)
    if kind == "and":
        return lambda head, authority: all(c(head, authority) for c in children)
    if kind == "or":
        return lambda head, authority: any(c(head, authority) for c in children)
    only = children[0]
    return lambda head, authority: not only(head, authority)


def principal_matches(p: m.RbacPrincipal, identity: str | None) -> bool:
    kind = p.kind
    if kind == "any":
        return True
    if kind == "id":
        assert p.match is not None
        return identity is not None and p.match.matches(identity)
    if kind == "and":
        return all(principal_matches(c, identity) for c in p.children)
    if kind == "or":
        return any(principal_matches(c, identity) for c in p.children)
    return not principal_matches(p.children[0], identity)


def policy_label(name: str) -> str:
    """What a denial reports: `<namespace>/<name>` of the deciding policy."""
    return name.split("#", 1)[0]


class _Rules:
    """One Rbac (action + policies), compiled."""

    __slots__ = ("_by_identity", "allow", "checks", "label", "policies")

    def __init__(self, rbac: m.Rbac, stat_prefix: str) -> None:
        self.allow = rbac.action == "ALLOW"
        self.policies = rbac.policies
        self.checks = tuple(
            tuple(_compile_permission(p) for p in policy.permissions) for policy in rbac.policies
        )
        # Why an ALLOW filter refuses: the mesh default, or the allow list's policies.
        if "default_deny" in stat_prefix:
            self.label = DEFAULT_DENY
        else:
            names = dict.fromkeys(policy_label(p.name) for p in rbac.policies)
            self.label = ",".join(names) or DEFAULT_DENY
        self._by_identity: dict[str | None, tuple[tuple[str, tuple[Check, ...]], ...]] = {}

    def candidates(self, identity: str | None) -> tuple[tuple[str, tuple[Check, ...]], ...]:
        """The policies whose principals match `identity`, with their permission checks."""
        found = self._by_identity.get(identity)
        if found is None:
            found = tuple(
                (policy.name, checks)
                for policy, checks in zip(self.policies, self.checks, strict=True)
                if any(principal_matches(p, identity) for p in policy.principals)
            )
            if len(self._by_identity) < _CACHE_MAX:
                self._by_identity[identity] = found
        return found

    def refusal(
        self, identity: str | None, head: RequestHead | None, authority: bytes
    ) -> str | None:
        """None if this filter lets the request through, else the deciding policy."""
        for name, checks in self.candidates(identity):
            for check in checks:
                if check(head, authority):
                    return None if self.allow else policy_label(name)
        return self.label if self.allow else None


class Authorizer:
    """A listener's chain of RBAC filters."""

    __slots__ = ("destination", "enforced", "shadow", "stats")

    def __init__(
        self, filters: Sequence[m.RbacFilter], destination: str, stats: Stats | None = None
    ) -> None:
        self.destination = destination
        self.stats = stats
        self.enforced = tuple(_Rules(f.rules, f.stat_prefix) for f in filters if f.rules)
        has_shadow = any(f.shadow is not None for f in filters)
        self.shadow: tuple[_Rules, ...] = ()
        if has_shadow:
            # Filters without shadow rules take part in the shadow decision as enforced.
            self.shadow = tuple(
                _Rules(f.shadow or f.rules, f.stat_prefix)  # type: ignore[arg-type]
                for f in filters
                if (f.shadow or f.rules) is not None
            )

    def count(self, shadow: bool, identity: str | None) -> None:
        """A denial (or a shadow one): gossamer_authz_[shadow_]denied_total."""
        if self.stats is not None:
            self.stats.authz(shadow, identity, self.destination)

    def check(self, identity: str | None, head: RequestHead | None, authority: bytes) -> str | None:
        """None when allowed, else the label of the policy that refused."""
        for rules in self.enforced:
            refused = rules.refusal(identity, head, authority)
            if refused is not None:
                return refused
        return None

    def check_shadow(
        self, identity: str | None, head: RequestHead | None, authority: bytes
    ) -> str | None:
        for rules in self.shadow:
            refused = rules.refusal(identity, head, authority)
            if refused is not None:
                return refused
        return None


def authorizer(
    filters: Sequence[m.RbacFilter], destination: str, stats: Stats | None = None
) -> Authorizer | None:
    """None when the filters restrict nothing (the data path then skips authorization)."""
    if not any(f.rules is not None or f.shadow is not None for f in filters):
        return None
    return Authorizer(filters, destination, stats)


def denied_body(label: str, identity: str | None, head: RequestHead | None) -> bytes:
    who = identity or "an unauthenticated caller"
    what = ""
    if head is not None:
        what = f" {head.method.decode('latin-1')} {head.path.decode('latin-1')}"
    if label == DEFAULT_DENY:
        why = "the mesh denies by default and no TrafficPermission or TrafficTarget allows it"
    else:
        why = f"denied by policy {label}"
    return f"RBAC: access denied for {who}{what}: {why}\n".encode()


__all__ = ["DEFAULT_DENY", "Authorizer", "authorizer", "denied_body", "policy_label"]
