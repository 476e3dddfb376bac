"""Which Gossamer policies configure which proxy, toward which peer (Kuma's targetRef).

Shared by the resilience policy folders. A policy's `spec.targetRef` selects proxies
(Mesh: all; Service: the sidecars of that service; Gateway: that gateway); each `to`
entry selects destinations (Mesh, a Service and optionally its port, an HTTPRoute or a
GRPCRoute by the rules it contributed) and each `from` entry callers. The effective conf
is `merge_confs` of the matching entries, from the least to the most specific (see
api/kinds/policies.py).

Outbound config (clusters, route tables) is shared by every proxy the same policies
select: `variant(node)` names the policies beyond the mesh-wide ones that select a proxy,
so translation computes one set of outbound resources per distinct variant, not per proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gossamer.api.kinds.policies import (
    CircuitBreakerPolicy,
    FaultInjectionPolicy,
    HealthCheckPolicy,
    LoadBalancerPolicy,
    Policy,
    PolicyConf,
    RateLimitPolicy,
    RetryPolicy,
    TimeoutPolicy,
    merge_confs,
    specificity,
)
from gossamer.controlplane.translate.node import ProxyNode
from gossamer.controlplane.translate.snapshot import MeshSnapshot

C = TypeVar("C", bound=PolicyConf)

# Client-side kinds: they shape clusters and outbound routes.
OUTBOUND_KINDS: tuple[type[Policy], ...] = (
    RetryPolicy,
    TimeoutPolicy,
    CircuitBreakerPolicy,
    HealthCheckPolicy,
    LoadBalancerPolicy,
)
# Server-side kinds: they shape the inbound listeners.
INBOUND_KINDS: tuple[type[Policy], ...] = (FaultInjectionPolicy, RateLimitPolicy, TimeoutPolicy)


def _key(policy: Policy) -> str:
    return f"{policy.KIND} {policy.namespace}/{policy.name}"


def selects(policy: Policy, node: ProxyNode) -> bool:
    """Does the policy's spec.targetRef select this proxy?"""
    ref = policy.spec.target_ref
    if ref.kind == "Mesh":
        return True
    namespace = ref.namespace or policy.namespace
    if ref.kind == "Service":
        if node.kind == "gateway" or ref.name != node.service or namespace != node.namespace:
            return False
        return all(node.labels.get(k) == v for k, v in (ref.labels or {}).items())
    if ref.kind == "Gateway":
        return node.kind == "gateway" and node.gateway == ref.name and namespace == node.namespace
    return False


@dataclass(frozen=True)
class PolicySet:
    """The policies of the resilience kinds that select one group of proxies, and the
    group's zone when it matters (a LoadBalancerPolicy prefers the caller's zone)."""

    policies: tuple[Policy, ...] = ()
    zone: str | None = None

    def of(self, kind: type[Policy]) -> list[Policy]:
        found = [p for p in self.policies if isinstance(p, kind)]
        return sorted(found, key=lambda p: p.sort_key())

    def to_conf(
        self,
        kind: type[Policy],
        conf_type: type[C],
        namespace: str,
        service: str,
        port: int | None = None,
        route_source: str = "",
    ) -> C | None:
        """The effective `to` conf toward a destination service (port), or None when no
        entry matches. `route_source` ("HTTPRoute ns/name") lets route entries match."""
        confs: list[tuple[tuple[int, int, int], C]] = []
        for policy in self.of(kind):
            for item in policy.entries("to"):
                ref = item.target_ref
                ref_ns = ref.namespace or policy.namespace
                if ref.kind == "Mesh":
                    pass
                elif ref.kind == "Service":
                    if (ref.name, ref_ns) != (service, namespace):
                        continue
                    if ref.port is not None and ref.port != port:
                        continue
                elif ref.kind in ("HTTPRoute", "GRPCRoute"):
                    if route_source != f"{ref.kind} {ref_ns}/{ref.name}":
                        continue
                else:
                    continue  # ExternalService: egress, not translated here
                confs.append((specificity(ref), item.default))
        if not confs:
            return None
        confs.sort(key=lambda c: c[0])  # stable: policy order kept among equals
        return merge_confs(conf_type, (c for _, c in confs))

    def from_conf(self, kind: type[Policy], conf_type: type[C]) -> C | None:
        """The effective `from` conf for every caller (entries with a Mesh targetRef;
        narrower callers need the caller's identity, which mTLS brings)."""
        confs = [
            item.default
            for policy in self.of(kind)
            for item in policy.entries("from")
            if item.target_ref.kind == "Mesh"
        ]
        return merge_confs(conf_type, confs) if confs else None


def policy_sets(
    snapshot: MeshSnapshot, kinds: Sequence[type[Policy]]
) -> tuple[PolicySet, tuple[Policy, ...]]:
    """The mesh-wide set (policies with targetRef Mesh), and the other policies."""
    mesh: list[Policy] = []
    other: list[Policy] = []
    for kind in kinds:
        for policy in snapshot.of(kind):
            (mesh if policy.spec.target_ref.kind == "Mesh" else other).append(policy)
    return PolicySet(tuple(mesh)), tuple(other)


ZONE_MARK = "zone="


def variant(node: ProxyNode, others: Iterable[Policy], zoned: bool = False) -> tuple[str, ...]:
    """Names of the non-mesh-wide policies selecting the node ((): the mesh-wide set),
    plus the node's zone when `zoned` (load balancer policies exist)."""
    names = tuple(sorted(_key(p) for p in others if selects(p, node)))
    return (*names, ZONE_MARK + node.zone) if zoned else names


def with_variant(mesh: PolicySet, others: Iterable[Policy], names: tuple[str, ...]) -> PolicySet:
    if not names:
        return mesh
    zone = next((n[len(ZONE_MARK) :] for n in names if n.startswith(ZONE_MARK)), None)
    chosen = set(names)
    return PolicySet((*mesh.policies, *(p for p in others if _key(p) in chosen)), zone)
