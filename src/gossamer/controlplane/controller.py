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
from typing import Any

from envoy.config.core.v3 import base_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from gossamer.api.kinds.mesh import Workload
from gossamer.api.loader import parse_resource
from gossamer.api.model import Resource as ApiResource
from gossamer.controlplane.registry.model import REGISTERED_BY, WorkloadInfo
from gossamer.controlplane.store import BaseStore, Event, NotFound, ObjectKey
from gossamer.controlplane.translate import MeshTranslator, MessageCache
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
    XdsServer,
)
from gossamer.controlplane.xds.status import NackInfo
from gossamer.core.logs import get_logger

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


class MeshController(BaseCallbacks):
    def __init__(
        self,
        store: BaseStore,
        server: XdsServer | None = None,
        grace: float = 15.0,
        debounce: float = 0.02,
    ) -> None:
        self.store = store
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
            self.snapshot(), cache=previous.cache if previous else MessageCache()
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

    def _shared_set(self, type_url: str, items: Mapping[str, Message]) -> ResourceSet:
        """The mesh-wide set of a type (built once per rebuild, shared by every proxy)."""
        found = self._shared.get(type_url)
        if found is None:
            found = ResourceSet(type_url, items)
            self._shared[type_url] = found
        return found

    def _push(self, node: ProxyNode) -> None:
        t = self.translator
        if t is None:
            return
        own = t.proxy_specific(node)
        sets: dict[str, ResourceSet | Mapping[str, Message]] = {
            LISTENER: own[LISTENER],
            ROUTE: own[ROUTE],
            SECRET: own[SECRET],
        }
        for type_url, mesh in ((CLUSTER, t.clusters), (ENDPOINT, t.endpoints)):
            shared = self._shared_set(type_url, mesh)
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
