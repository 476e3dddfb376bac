"""Gateway API TCPRoute attached to a Service: a weighted L4 split of its connections."""

from __future__ import annotations

from collections.abc import Iterator

from gossamer.api.kinds.gateway import TCPRoute
from gossamer.controlplane.policies.httproute import backends
from gossamer.controlplane.translate.routing import Contribution
from gossamer.controlplane.translate.snapshot import MeshSnapshot

SOURCE_RANK = 2


def contributions(snapshot: MeshSnapshot, problems: list[str]) -> Iterator[Contribution]:
    for route in snapshot.of(TCPRoute):
        ref = f"TCPRoute {route.namespace}/{route.name}"
        if len(route.spec.rules) > 1:
            problems.append(f"{ref}: only the first rule applies to mesh traffic")
        tcp = backends(route.namespace, route.spec.rules[0].backend_refs)
        created = route.metadata.creation_timestamp or ""
        for parent in route.spec.parent_refs:
            if parent.is_service:
                yield Contribution(
                    namespace=parent.namespace or route.namespace,
                    service=parent.name,
                    port=parent.port,
                    tcp=tcp,
                    tcp_order=(SOURCE_RANK, created, f"{route.namespace}/{route.name}", 0),
                    source=ref,
                )
