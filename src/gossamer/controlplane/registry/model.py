"""Services, workloads and endpoints: what the mesh knows exists, as one immutable snapshot.

Built by a pure function from Service and Workload resources (declared, or registered by
sidecars when they connect) and endpoint health. The translation reads only this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from gossamer.api.kinds.mesh import Service, Workload

Protocol = Literal["http", "http2", "grpc", "tcp"]
# Annotation a sidecar sets on the Workload it registers; such workloads are removed when
# their sidecar has been gone for the grace period.
REGISTERED_BY = "gossamer.io/registered-by"
# Label naming the service of a workload started with `gossamer run --service S`.
APP_LABEL = "app"

NamespacedName = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True, slots=True)
class ServicePortInfo:
    port: int
    protocol: Protocol = "http"
    name: str = ""
    target_port: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    namespace: str
    name: str
    selector: Mapping[str, str]
    ports: tuple[ServicePortInfo, ...]
    # True when no Service resource exists and it was implied by workloads' `app` label.
    implied: bool = False
    # The Service resource's resourceVersion (for `explain`), "" when implied.
    source: str = ""

    @property
    def key(self) -> NamespacedName:
        return (self.namespace, self.name)

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"

    def port(self, number: int) -> ServicePortInfo | None:
        for p in self.ports:
            if p.port == number:
                return p
        return None


@dataclass(frozen=True, slots=True)
class WorkloadPortInfo:
    port: int  # the service port it serves
    target_port: int  # where the app listens
    inbound_port: int | None  # where its sidecar listens; None: unmeshed
    protocol: Protocol = "http"
    name: str = ""


@dataclass(frozen=True, slots=True)
class WorkloadInfo:
    namespace: str
    name: str
    labels: Mapping[str, str]
    address: str
    service_account: str
    ports: tuple[WorkloadPortInfo, ...]
    zone: str = ""
    registered_by_sidecar: bool = False

    @property
    def key(self) -> NamespacedName:
        return (self.namespace, self.name)

    @property
    def meshed(self) -> bool:
        return any(p.inbound_port for p in self.ports)


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    workload: str
    namespace: str
    address: str
    # Where a meshed caller connects: the sidecar's inbound port, or the app if unmeshed.
    port: int
    target_port: int
    meshed: bool
    labels: Mapping[str, str]
    service_account: str
    zone: str = ""
    healthy: bool = True


@dataclass(frozen=True)
class RegistrySnapshot:
    services: Mapping[NamespacedName, ServiceInfo] = field(default_factory=dict)
    workloads: Mapping[NamespacedName, WorkloadInfo] = field(default_factory=dict)
    _endpoints: Mapping[tuple[str, str, int], tuple[EndpointInfo, ...]] = field(
        default_factory=dict
    )

    def service(self, namespace: str, name: str) -> ServiceInfo | None:
        return self.services.get((namespace, name))

    def endpoints(self, service: ServiceInfo, port: int) -> tuple[EndpointInfo, ...]:
        return self._endpoints.get((service.namespace, service.name, port), ())

    def resolve(self, name: str, namespace: str) -> ServiceInfo | None:
        """A service as an app or a manifest names it: svc, svc.ns, svc.ns.svc[.cluster.local]."""
        parts = name.split(".")
        if len(parts) == 1:
            return self.services.get((namespace, name))
        if len(parts) == 2 or parts[2:] in (["svc"], ["svc", "cluster", "local"]):
            return self.services.get((parts[1], parts[0]))
        return None


def _workload_info(wl: Workload) -> WorkloadInfo:
    spec = wl.spec
    return WorkloadInfo(
        namespace=wl.namespace,
        name=wl.name,
        labels=MappingProxyType(dict(wl.metadata.labels)),
        address=spec.address,
        service_account=spec.service_account or wl.metadata.labels.get(APP_LABEL, wl.name),
        ports=tuple(
            WorkloadPortInfo(p.port, p.target_port, p.inbound_port, p.protocol, p.name or "")
            for p in spec.ports
        ),
        zone=spec.zone or "",
        registered_by_sidecar=REGISTERED_BY in wl.metadata.annotations,
    )


def _service_info(svc: Service) -> ServiceInfo:
    return ServiceInfo(
        namespace=svc.namespace,
        name=svc.name,
        selector=MappingProxyType(dict(svc.spec.selector)),
        ports=tuple(
            ServicePortInfo(p.port, p.protocol, p.name or "", p.target_port) for p in svc.spec.ports
        ),
        source=svc.metadata.resource_version or "",
    )


class _LabelIndex:
    """Workloads of one namespace by (label, value): a selector is an intersection of
    small sets instead of a scan of every workload (1,000 services x 10,000 workloads)."""

    def __init__(self, workloads: list[WorkloadInfo]) -> None:
        self.workloads = workloads
        self.by_label: dict[tuple[str, str], list[int]] = {}
        for i, w in enumerate(workloads):
            for pair in w.labels.items():
                self.by_label.setdefault(pair, []).append(i)

    def select(self, selector: Mapping[str, str]) -> list[WorkloadInfo]:
        # As on Kubernetes, a Service without a selector selects no workloads.
        if not selector:
            return []
        lists = sorted((self.by_label.get(pair, []) for pair in selector.items()), key=len)
        chosen = set(lists[0])
        for other in lists[1:]:
            chosen.intersection_update(other)
        return [self.workloads[i] for i in sorted(chosen)]


def _members(info: ServiceInfo, index: _LabelIndex | None) -> list[WorkloadInfo]:
    return index.select(info.selector) if index is not None else []


def _ports_of(workloads: Iterable[WorkloadInfo]) -> tuple[ServicePortInfo, ...]:
    ports: dict[int, ServicePortInfo] = {}
    for wl in workloads:
        for p in wl.ports:
            ports.setdefault(p.port, ServicePortInfo(p.port, p.protocol, p.name))
    return tuple(ports[k] for k in sorted(ports))


def build_registry(
    services: Iterable[Service],
    workloads: Iterable[Workload],
    unhealthy: frozenset[tuple[str, str, int]] = frozenset(),
    cache: dict[tuple[str, str, str], WorkloadInfo] | None = None,
) -> RegistrySnapshot:
    """Services (declared, or implied by workloads' `app` label), and their endpoints.

    `unhealthy` holds (namespace, workload, target port) reported failing by health checks.
    A declared Service without ports serves the ports its workloads declare. `cache`
    (namespace, name, resourceVersion) → WorkloadInfo spares converting unchanged
    workloads again; it is rewritten to hold exactly this call's workloads.
    """
    infos: list[WorkloadInfo] = []
    used: dict[tuple[str, str, str], WorkloadInfo] = {}
    for w in workloads:
        version = w.metadata.resource_version
        key = (w.namespace, w.name, version or "")
        winfo = cache.get(key) if cache is not None and version else None
        if winfo is None:
            winfo = _workload_info(w)
        used[key] = winfo
        infos.append(winfo)
    if cache is not None:
        cache.clear()
        cache.update(used)
    wl_infos = sorted(infos, key=lambda w: w.key)
    grouped: dict[str, list[WorkloadInfo]] = {}
    for wl in wl_infos:
        grouped.setdefault(wl.namespace, []).append(wl)
    by_ns = {ns: _LabelIndex(wls) for ns, wls in grouped.items()}

    svc_infos: dict[NamespacedName, ServiceInfo] = {}
    for svc in services:
        info = _service_info(svc)
        if not info.ports:
            members = _members(info, by_ns.get(info.namespace))
            info = ServiceInfo(
                info.namespace, info.name, info.selector, _ports_of(members), False, info.source
            )
        svc_infos[info.key] = info
    implied: dict[NamespacedName, list[WorkloadInfo]] = {}
    for wl in wl_infos:
        app = wl.labels.get(APP_LABEL)
        if app and (wl.namespace, app) not in svc_infos:
            implied.setdefault((wl.namespace, app), []).append(wl)
    for (ns, name), members in implied.items():
        svc_infos[(ns, name)] = ServiceInfo(
            ns, name, MappingProxyType({APP_LABEL: name}), _ports_of(members), implied=True
        )

    endpoints: dict[tuple[str, str, int], tuple[EndpointInfo, ...]] = {}
    for info in svc_infos.values():
        members = _members(info, by_ns.get(info.namespace))
        for sport in info.ports:
            eps: list[EndpointInfo] = []
            for wl in members:
                for wport in wl.ports:
                    if wport.port != sport.port:
                        continue
                    eps.append(
                        EndpointInfo(
                            workload=wl.name,
                            namespace=wl.namespace,
                            address=wl.address,
                            port=wport.inbound_port or wport.target_port,
                            target_port=wport.target_port,
                            meshed=wport.inbound_port is not None,
                            labels=wl.labels,
                            service_account=wl.service_account,
                            zone=wl.zone,
                            healthy=(wl.namespace, wl.name, wport.target_port) not in unhealthy,
                        )
                    )
            endpoints[(info.namespace, info.name, sport.port)] = tuple(eps)
    return RegistrySnapshot(
        services=MappingProxyType(dict(sorted(svc_infos.items()))),
        workloads=MappingProxyType({w.key: w for w in wl_infos}),
        _endpoints=MappingProxyType(endpoints),
    )
