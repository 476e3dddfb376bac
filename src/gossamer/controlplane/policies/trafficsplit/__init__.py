"""SMI TrafficSplit: weights across backend Services for calls to a root Service.

Without `matches` the split is the root's catch-all rule (HTTP) and its L4 split (TCP);
with `matches` (v1alpha3+, HTTPRouteGroup) it applies to the matching requests only.
Backends are Services in the split's namespace, on the same port as the root.
"""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.api.kinds.smi import HTTPMatch as SmiHttpMatch
from gossamer.api.kinds.smi import HTTPRouteGroup, TrafficSplit
from gossamer.controlplane.translate.routing import (
    EVERYTHING,
    Backend,
    Contribution,
    HttpMatch,
    HttpRule,
)
from gossamer.controlplane.translate.snapshot import MeshSnapshot

SOURCE_RANK = 3


def smi_match(match: SmiHttpMatch) -> list[HttpMatch]:
    """One HttpMatch per method (SMI lists methods; a route matches one)."""
    headers = tuple((k, "regex", v) for k, v in sorted(match.header_map().items()))
    path = ("regex", match.path_regex) if match.path_regex else ("prefix", "/")
    methods = [None] if match.any_method else list(match.methods)
    return [
        HttpMatch(path_kind=path[0], path=path[1], headers=headers, method=m)  # type: ignore[arg-type]
        for m in methods
    ]


def contributions(snapshot: MeshSnapshot, problems: list[str]) -> Iterator[Contribution]:
    groups = {(g.namespace, g.name): g for g in snapshot.of(HTTPRouteGroup)}
    seen: dict[tuple[str, str], str] = {}
    for split in snapshot.of(TrafficSplit):
        ref = f"TrafficSplit {split.namespace}/{split.name}"
        root_ns, root = split.root_service_ref()
        backends = tuple(
            Backend(split.namespace, b.service, 0, b.weight)
            for b in split.spec.backends
            if b.weight
        )
        order = (
            SOURCE_RANK,
            split.metadata.creation_timestamp or "",
            f"{split.namespace}/{split.name}",
            0,
        )
        if not split.spec.matches:
            if (root_ns, root) in seen:
                problems.append(
                    f"{ref}: {seen[(root_ns, root)]} already splits {root_ns}/{root}; ignored"
                )
                continue
            seen[(root_ns, root)] = ref
            rule = HttpRule(ref, "split", (EVERYTHING,), backends, order=order)
            yield Contribution(
                root_ns, root, None, http=(rule,), tcp=backends, tcp_order=order, source=ref
            )
            continue
        matches: list[HttpMatch] = []
        for m in split.spec.matches:
            if m.kind != "HTTPRouteGroup":
                continue
            group = groups.get((split.namespace, m.name))
            if group is None:
                problems.append(f"{ref}: HTTPRouteGroup {split.namespace}/{m.name} not found")
                continue
            for hm in group.spec.matches:
                matches.extend(smi_match(hm))
        if matches:
            rule = HttpRule(ref, "split", tuple(matches), backends, order=order)
            yield Contribution(root_ns, root, None, http=(rule,), source=ref)
