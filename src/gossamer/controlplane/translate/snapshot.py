"""The input of translation: every resource, typed, plus the registry. Immutable."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gossamer.api.kinds.mesh import Mesh, MeshSpec, Service, Workload
from gossamer.api.loader import parse_resource
from gossamer.api.model import DEFAULT_MESH, Resource
from gossamer.controlplane.registry.model import RegistrySnapshot, WorkloadInfo, build_registry

R = TypeVar("R", bound=Resource)


def _order(resource: Resource) -> tuple[str, str, str]:
    # Gateway API's tie-break: oldest first, then namespace/name.
    return (resource.metadata.creation_timestamp or "", resource.namespace, resource.name)


@dataclass(frozen=True)
class MeshSnapshot:
    resources: Mapping[str, tuple[Resource, ...]]  # qualified kind → resources, oldest first
    registry: RegistrySnapshot
    revision: int = 0
    problems: tuple[str, ...] = field(default_factory=tuple)

    def of(self, model: type[R]) -> tuple[R, ...]:
        key = f"{model.KIND}.{model.GROUP}"
        return self.resources.get(key, ())  # type: ignore[return-value]

    @property
    def mesh(self) -> MeshSpec:
        for mesh in self.of(Mesh):
            if mesh.name == DEFAULT_MESH:
                return mesh.spec
        return MeshSpec()


def build_snapshot(
    resources: Iterable[Resource],
    revision: int = 0,
    extra_workloads: Iterable[Workload] = (),
    unhealthy: frozenset[tuple[str, str, int]] = frozenset(),
    workload_cache: dict[tuple[str, str, str], WorkloadInfo] | None = None,
) -> MeshSnapshot:
    grouped: dict[str, list[Resource]] = {}
    for r in resources:
        grouped.setdefault(f"{r.KIND}.{r.GROUP}", []).append(r)
    typed = {k: tuple(sorted(v, key=_order)) for k, v in grouped.items()}
    services = [
        r for r in typed.get(f"{Service.KIND}.{Service.GROUP}", ()) if isinstance(r, Service)
    ]
    workloads = [
        r for r in typed.get(f"{Workload.KIND}.{Workload.GROUP}", ()) if isinstance(r, Workload)
    ]
    registry = build_registry(services, [*workloads, *extra_workloads], unhealthy, workload_cache)
    return MeshSnapshot(typed, registry, revision)


def snapshot_from_documents(
    docs: Iterable[dict[str, Any]], revision: int = 0, **kwargs: Any
) -> MeshSnapshot:
    """From stored documents (already validated when they were applied)."""
    return build_snapshot((parse_resource(d) for d in docs), revision, **kwargs)
