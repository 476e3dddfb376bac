"""The mesh controller: store changes and connected proxies in, xDS snapshots out.

- Every store change (debounced) rebuilds the mesh snapshot and re-translates for each
  connected proxy; the xDS server pushes only the types whose content changed.
- A sidecar that connects registers its workload (a Workload resource annotated
  `gossamer.io/registered-by: sidecar`); when its last stream has been gone for the grace
  period the workload is removed. Workloads left over from before a control-plane restart
  are removed if their sidecar does not come back within the grace period.
- Proxyless gRPC clients get the listeners they ask for by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from envoy.config.core.v3 import base_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from gossamer.api.kinds.mesh import MeshSpec, Workload
from gossamer.api.loader import parse_resource
from gossamer.api.model import Resource as ApiResource
from gossamer.api.model import parse_duration
from gossamer.controlplane.ca import CertificateAuthority, Issued
from gossamer.controlplane.ca.service import Refused
from gossamer.controlplane.registry.model import REGISTERED_BY, WorkloadInfo
from gossamer.controlplane.store import BaseStore, Event, NotFound, ObjectKey
from gossamer.controlplane.translate import MeshTranslator, MessageCache
from gossamer.controlplane.translate.mtls import (
    CERT_SECRET,
    TRUST_SECRET,
    certificate_secret,
    trust_secret,
)
from gossamer.controlplane.translate.node import ProxyNode
from gossamer.controlplane.translate.snapshot import MeshSnapshot, build_snapshot
from gossamer.controlplane.xds import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    SECRET,
    BaseCallbacks,
    Resource,
    ResourceSet,
    Snapshot,
    StreamInfo,
    StreamRejected,
    XdsServer,
)
from gossamer.controlplane.xds.status import NackInfo
from gossamer.core.logs import get_logger
from gossamer.core.spiffe import spiffe_id

log = get_logger("controlplane.mesh")

NODE_ANNOTATION = "gossamer.io/node"


@dataclass
class ProxyRecord:
    node: ProxyNode
    streams: int = 0
    connected_since: float = field(default_factory=time.time)
    disconnected_at: float | None = None
    removal: asyncio.TimerHandle | None = None
    last_nack: NackInfo | None = None


class Authenticator(Protocol):
    """Who may speak for a node (tokens): raises StreamRejected or Refused when not."""

    def check_node(self, node: ProxyNode, metadata: Mapping[str, str]) -> None: ...


class MeshController(BaseCallbacks):
    def __init__(
        self,
        store: BaseStore,
        server: XdsServer | None = None,
        grace: float = 15.0,
        debounce: float = 0.02,
        ca: CertificateAuthority | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.store = store
        # The mesh CA: sidecars and gateways get their certificate (Secret `default`) and
        # the trust bundle (Secret `ROOTCA`) over SDS.
        self.ca = ca
        self.authenticator = authenticator
        self.certificates: dict[str, Issued] = {}  # node id -> its current certificate
        self.mtls_reports: dict[str, dict[str, Any]] = {}  # node id -> its last report
        self._bundle: tuple[bytes, Message] | None = None
        self._bundle_timer: asyncio.TimerHandle | None = None
        self.server = server if server is not None else XdsServer(self)
        self.grace = grace
        self.debounce = debounce
        self.proxies: dict[str, ProxyRecord] = {}
        self.translator: MeshTranslator | None = None
        self._resources: dict[ObjectKey, ApiResource] = {}
        self._revision = 0
        self._pending: list[Event] = []
        self._events_lock = threading.Lock()
        self._shared: dict[str, ResourceSet] = {}
        self._workload_cache: dict[tuple[str, str, str], WorkloadInfo] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._cancel_watch: Callable[[], None] | None = None
        self.rebuilds = 0
        self.last_rebuild_seconds = 0.0
        # The built-in trace collector's address (our REST API), for sidecars' tracing.
        self.collector: tuple[str, int] | None = None

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        docs, revision = self.store.list()
        for doc in docs:
            self._resources[_key(doc)] = parse_resource(doc)
        self._revision = revision
        # Atomic with the list above: every later change arrives as an event, in order.
        self._cancel_watch = self.store.subscribe(self._on_store_events, from_revision=revision)
        self._rebuild()
        self._task = asyncio.create_task(self._rebuild_loop(), name="mesh-rebuild")
        self._loop.call_later(self.grace, self._sweep_orphans)

    async def stop(self) -> None:
        if self._cancel_watch:
            self._cancel_watch()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for record in self.proxies.values():
            if record.removal:
                record.removal.cancel()

    def _on_store_events(self, events: list[Event]) -> None:
        # Runs on the writer's thread, under the store lock: queue them, in order.
        with self._events_lock:
            self._pending.extend(events)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._dirty.set)

    async def _rebuild_loop(self) -> None:
        while True:
            await self._dirty.wait()
            # Debounce: let a burst of changes (a multi-document apply) land first.
            await asyncio.sleep(self.debounce)
            self._dirty.clear()
            try:
                self._rebuild()
            except Exception:
                log.error("rebuilding the mesh failed; proxies keep their config", exc_info=True)

    def set_collector(self, host: str, port: int) -> None:
        """The API is listening: sidecars may send spans there (`backend: builtin`)."""
        self.collector = (host, port)
        self._dirty.set()

    def _take_events(self) -> None:
        """Fold queued store events into the parsed resources (only changed documents are
        parsed again)."""
        with self._events_lock:
            events, self._pending = self._pending, []
        for event in events:
            key = ObjectKey(*event.key)
            if event.type == "DELETED":
                self._resources.pop(key, None)
            else:
                self._resources[key] = parse_resource(event.document)
            self._revision = max(self._revision, event.revision)

    def snapshot(self) -> MeshSnapshot:
        self._take_events()
        return build_snapshot(
            self._resources.values(), self._revision, workload_cache=self._workload_cache
        )

    def _rebuild(self) -> None:
        started = time.perf_counter()
        previous = self.translator
        self.translator = MeshTranslator(
            self.snapshot(),
            cache=previous.cache if previous else MessageCache(),
            collector=self.collector,
        )
        self._shared = {}
        for record in list(self.proxies.values()):
            self._push(record.node)
        self.rebuilds += 1
        self.last_rebuild_seconds = time.perf_counter() - started
        log.debug(
            "mesh rebuilt",
            revision=self.translator.snapshot.revision,
            proxies=len(self.proxies),
            seconds=round(self.last_rebuild_seconds, 4),
        )

    def _shared_set(self, key: str, type_url: str, items: Mapping[str, Message]) -> ResourceSet:
        """The mesh-wide set of a type (built once per rebuild, shared by every proxy)."""
        found = self._shared.get(key)
        if found is None:
            found = ResourceSet(type_url, items)
            self._shared[key] = found
        return found

    # --- certificates ----------------------------------------------------------------------

    def _secrets(self, node: ProxyNode) -> dict[str, Message]:
        if self.ca is None or node.kind == "proxyless":
            return {}
        out: dict[str, Message] = {TRUST_SECRET: self._bundle_secret()}
        issued = self.certificates.get(node.id)
        if issued is not None:
            out[CERT_SECRET] = certificate_secret(issued.chain_pem)
        return out

    def _bundle_secret(self) -> Message:
        assert self.ca is not None
        bundle = self.ca.trust_bundle()
        if self._bundle is None or self._bundle[0] != bundle:
            self._bundle = (bundle, trust_secret(bundle))
            self._schedule_bundle_change()
        return self._bundle[1]

    def _schedule_bundle_change(self) -> None:
        # An overlapping old root stops being trusted: push the smaller bundle then.
        if self.ca is None or self._loop is None:
            return
        if self._bundle_timer is not None:
            self._bundle_timer.cancel()
        when = self.ca.next_bundle_change()
        if when is not None:
            delay = max(0.0, when - time.time()) + 0.1
            self._bundle_timer = self._loop.call_later(delay, self.push_all)

    def push_all(self) -> None:
        for record in list(self.proxies.values()):
            self._push(record.node)

    def rotate_root(self) -> dict[str, Any]:
        """A new CA root; the old one stays trusted for the mesh's root_overlap."""
        if self.ca is None:
            raise ValueError("this control plane runs no CA")
        spec = self._mesh_spec()
        overlap = parse_duration(spec.mtls.root_overlap)
        root = self.ca.rotate(overlap)
        self.push_all()
        return {
            "subject": root.subject.rfc4514_string(),
            "notAfter": root.not_valid_after_utc.isoformat(),
            "trustedRoots": len(self.ca.roots()),
            "overlapSeconds": overlap,
        }

    def _mesh_spec(self) -> MeshSpec:
        if self.translator is not None:
            return self.translator.snapshot.mesh
        return MeshSpec()

    def trust_domain(self) -> str:
        return self._mesh_spec().mtls.trust_domain

    def trust_bundle(self) -> bytes:
        assert self.ca is not None
        return self.ca.trust_bundle()

    def identity_of(self, node: ProxyNode) -> str:
        account = node.service_account or node.service or node.gateway or node.workload
        return spiffe_id(self.trust_domain(), node.namespace, account)

    def csr_identity(self, node_id: str, metadata: Mapping[str, str]) -> str:
        if self.ca is None:
            raise Refused(grpc.StatusCode.UNIMPLEMENTED, "this control plane runs no CA")
        record = self.proxies.get(node_id)
        if record is None or record.streams == 0:
            raise Refused(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"node {node_id!r} has no xDS stream: open it before asking for a certificate",
            )
        if record.node.kind == "proxyless":
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, "proxyless clients get no certificate")
        if self.authenticator is not None:
            self.authenticator.check_node(record.node, metadata)
        return self.identity_of(record.node)

    def mtls_report(
        self, node_id: str, report: dict[str, Any], metadata: Mapping[str, str]
    ) -> None:
        record = self.proxies.get(node_id)
        if record is None or record.streams == 0:
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, f"node {node_id!r} is not connected")
        if self.authenticator is not None:
            self.authenticator.check_node(record.node, metadata)
        self.mtls_reports[node_id] = {"listeners": report["listeners"], "at": time.time()}

    def mtls_overview(self) -> list[dict[str, Any]]:
        """Per sidecar with inbound listeners: mode, and who still sends plaintext."""
        mode = self._mesh_spec().mtls.mode
        out = []
        for node_id, record in sorted(self.proxies.items()):
            if record.node.kind == "proxyless" or not record.node.inbound:
                continue
            report = self.mtls_reports.get(node_id, {})
            plaintext: dict[str, int] = {}
            rejected: dict[str, int] = {}
            handshakes = failures = 0
            for listener in (report.get("listeners") or {}).values():
                for peer, n in (listener.get("plaintext") or {}).items():
                    plaintext[peer] = plaintext.get(peer, 0) + int(n)
                for peer, n in (listener.get("plaintextRejected") or {}).items():
                    rejected[peer] = rejected.get(peer, 0) + int(n)
                handshakes += int(listener.get("tlsHandshakes", 0))
                failures += int(listener.get("tlsFailures", 0))
            out.append(
                {
                    "proxy": node_id,
                    "workload": f"{record.node.namespace}/{record.node.workload}",
                    "identity": self.identity_of(record.node),
                    "mode": mode,
                    "certificate": node_id in self.certificates,
                    "tlsHandshakes": handshakes,
                    "tlsFailures": failures,
                    "plaintextClients": plaintext,
                    "plaintextRejected": rejected,
                    "reportedAt": report.get("at"),
                }
            )
        return out

    def sign_for(self, node_id: str, csr_pem: bytes, metadata: Mapping[str, str]) -> Issued:
        allowed = self.csr_identity(node_id, metadata)
        assert self.ca is not None
        self.ca.trust_domain = self.trust_domain()
        lifetime = parse_duration(self._mesh_spec().mtls.cert_lifetime)
        issued = self.ca.sign(csr_pem, allowed, lifetime)
        self.certificates[node_id] = issued
        log.info(
            "certificate issued",
            node=node_id,
            identity=issued.spiffe_id,
            serial=f"{issued.serial:x}"[:16],
            expires_in=round(issued.not_after - time.time()),
        )
        record = self.proxies.get(node_id)
        if record is not None:
            self._push(record.node)
        return issued

    def _push(self, node: ProxyNode) -> None:
        t = self.translator
        if t is None:
            return
        own = t.proxy_specific(node)
        sets: dict[str, ResourceSet | Mapping[str, Message]] = {
            LISTENER: own[LISTENER],
            ROUTE: own[ROUTE],
            SECRET: {**own[SECRET], **self._secrets(node)},
        }
        clusters = t.plain_clusters if node.kind == "proxyless" else t.clusters
        for type_url, mesh in ((CLUSTER, clusters), (ENDPOINT, t.endpoints)):
            key = (
                f"{type_url}:plain"
                if mesh is t.plain_clusters and mesh is not t.clusters
                else type_url
            )
            shared = self._shared_set(key, type_url, mesh)
            if own[type_url]:
                extra = {n: Resource.of(type_url, m) for n, m in own[type_url].items()}
                sets[type_url] = ResourceSet(type_url, {**shared, **extra})
            else:
                sets[type_url] = shared
        self.server.set_snapshot(node.id, Snapshot(sets))

    # --- xDS callbacks ---------------------------------------------------------------------

    async def on_stream_open(self, stream: StreamInfo, node: base_pb2.Node) -> None:
        meta = MessageToDict(node.metadata) if node.HasField("metadata") else {}
        proxy = ProxyNode.from_metadata(node.id, meta, node.user_agent_name)
        if self.authenticator is not None:
            headers = {k: v if isinstance(v, str) else v.decode() for k, v in stream.metadata}
            try:
                self.authenticator.check_node(proxy, headers)
            except Refused as exc:
                log.warning("xds stream refused", node=node.id, reason=exc.message)
                raise StreamRejected(exc.code, exc.message) from None
        record = self.proxies.get(node.id)
        if record is None:
            record = ProxyRecord(proxy)
            self.proxies[node.id] = record
            log.info(
                "proxy connected", node=node.id, kind=proxy.kind, workload=proxy.workload or "-"
            )
        else:
            record.node = _keep_requested(proxy, record.node)
        record.streams += 1
        record.disconnected_at = None
        if record.removal is not None:
            record.removal.cancel()
            record.removal = None
        if proxy.kind in ("sidecar", "gateway") and proxy.workload and proxy.inbound:
            await asyncio.to_thread(self._register, proxy)
        self._push(record.node)

    async def on_subscription_change(
        self,
        stream: StreamInfo,
        node: base_pb2.Node,
        type_url: str,
        wildcard: bool,
        names: frozenset[str],
    ) -> None:
        record = self.proxies.get(node.id)
        if record is None or type_url != LISTENER or record.node.kind != "proxyless":
            return
        if names != record.node.requested_listeners:
            record.node = record.node.with_requested(frozenset(names))
            self._push(record.node)

    def on_nack(self, stream: StreamInfo, node: base_pb2.Node, nack: NackInfo) -> None:
        record = self.proxies.get(node.id)
        if record is not None:
            record.last_nack = nack
        log.warning("proxy rejected config (NACK)", node=node.id, error=nack.message)

    def on_stream_closed(self, stream: StreamInfo, node: base_pb2.Node) -> None:
        record = self.proxies.get(node.id)
        if record is None:
            return
        record.streams = max(0, record.streams - 1)
        if record.streams == 0 and self._loop is not None:
            record.disconnected_at = time.time()
            log.info("proxy disconnected", node=node.id, grace=self.grace)
            record.removal = self._loop.call_later(self.grace, self._expire, node.id)

    # --- workloads --------------------------------------------------------------------------

    def _register(self, proxy: ProxyNode) -> None:
        doc: dict[str, Any] = {
            "apiVersion": "gossamer.io/v1alpha1",
            "kind": "Workload",
            "metadata": {
                "name": proxy.workload,
                "namespace": proxy.namespace,
                "labels": dict(proxy.labels),
                "annotations": {REGISTERED_BY: "sidecar", NODE_ANNOTATION: proxy.id},
            },
            "spec": {
                "address": proxy.address,
                "ports": [
                    {
                        "port": p.port,
                        "targetPort": p.target_port,
                        "inboundPort": p.inbound_port,
                        "protocol": p.protocol,
                    }
                    for p in proxy.inbound
                ],
            },
        }
        if proxy.service_account:
            doc["spec"]["serviceAccount"] = proxy.service_account
        if proxy.zone:
            doc["spec"]["zone"] = proxy.zone
        workload = parse_resource(doc)
        self.store.apply([workload])

    def _expire(self, node_id: str) -> None:
        record = self.proxies.get(node_id)
        if record is None or record.streams > 0:
            return
        del self.proxies[node_id]
        self.certificates.pop(node_id, None)
        self.mtls_reports.pop(node_id, None)
        self.server.clear_snapshot(node_id)
        log.info("proxy gone; removing its workload", node=node_id)
        if record.node.workload:
            asyncio.get_running_loop().run_in_executor(
                None, self._unregister, record.node.namespace, record.node.workload, node_id
            )

    def _unregister(self, namespace: str, name: str, node_id: str) -> None:
        key = ObjectKey(Workload.GROUP, Workload.KIND, namespace, name)
        doc = self.store.get(key)
        if doc is None:
            return
        annotations = doc["metadata"].get("annotations") or {}
        # Only what a sidecar registered, and only if no newer sidecar took the name over.
        if REGISTERED_BY not in annotations or annotations.get(NODE_ANNOTATION) != node_id:
            return
        with contextlib.suppress(NotFound):
            self.store.delete(key, doc["metadata"]["resourceVersion"])

    def _sweep_orphans(self) -> None:
        """After a restart: remove sidecar-registered workloads whose sidecar did not return."""
        docs, _ = self.store.list(Workload.GROUP, Workload.KIND)
        connected = set(self.proxies)
        for doc in docs:
            annotations = doc["metadata"].get("annotations") or {}
            node_id = annotations.get(NODE_ANNOTATION)
            if REGISTERED_BY in annotations and node_id and node_id not in connected:
                meta = doc["metadata"]
                asyncio.get_running_loop().run_in_executor(
                    None, self._unregister, meta["namespace"], meta["name"], node_id
                )


def _keep_requested(new: ProxyNode, old: ProxyNode) -> ProxyNode:
    return new.with_requested(old.requested_listeners) if old.requested_listeners else new


def _key(doc: Mapping[str, Any]) -> ObjectKey:
    meta = doc["metadata"]
    api_version = doc["apiVersion"]
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return ObjectKey(group, doc["kind"], meta.get("namespace", ""), meta["name"])
