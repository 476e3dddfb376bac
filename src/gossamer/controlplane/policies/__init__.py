"""One folder per policy or route source; each translates its resources for the mesh.

Route sources contribute rules to services' ports (translate/routing.py merges them); the
order here is the plugin order, and also the tie-break between sources when two rules
have equal precedence (after each rule's own age).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from gossamer.controlplane.policies import grpcroute, httproute, tcproute, trafficsplit
from gossamer.controlplane.translate.routing import Contribution
from gossamer.controlplane.translate.snapshot import MeshSnapshot


class RouteSource(Protocol):
    def contributions(
        self, snapshot: MeshSnapshot, problems: list[str]
    ) -> Iterable[Contribution]: ...


ROUTE_SOURCES: tuple[RouteSource, ...] = (httproute, grpcroute, tcproute, trafficsplit)
