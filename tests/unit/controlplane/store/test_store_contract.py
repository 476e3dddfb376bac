"""The ResourceStore contract, run against every backend."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gossamer.api.kinds.mesh import Service
from gossamer.api.loader import parse_text
from gossamer.controlplane.store import (
    BaseStore,
    Compacted,
    Conflict,
    MemoryStore,
    NotFound,
    ObjectKey,
    SqliteStore,
)
from gossamer.core.selectors import Selector


def svc(name: str, ns: str = "default", port: int = 5000, **labels: str) -> Service:
    return Service.model_validate(
        {
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"selector": {"app": name}, "ports": [{"port": port}]},
        }
    )


def key(name: str, ns: str = "default") -> ObjectKey:
    return ObjectKey("gossamer.io", "Service", ns, name)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    s: BaseStore = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "g.db")
    yield s
    s.close()


def test_create_fills_in_metadata(store: BaseStore) -> None:
    [result] = store.apply([svc("benigno")])
    assert result.action == "created"
    meta = result.document["metadata"]
    assert meta["generation"] == 1
    assert meta["resourceVersion"] == "1"
    assert meta["uid"] and meta["creationTimestamp"]
    assert store.get(key("benigno")) == result.document
    assert store.revision() == 1


def test_reapplying_the_same_object_changes_nothing(store: BaseStore) -> None:
    store.apply([svc("benigno")])
    [again] = store.apply([svc("benigno")])
    assert again.action == "unchanged"
    assert store.revision() == 1
    assert store.events_since(0)[-1].revision == 1


def test_spec_change_bumps_generation_label_change_does_not(store: BaseStore) -> None:
    store.apply([svc("benigno")])
    [changed] = store.apply([svc("benigno", port=5001)])
    assert changed.action == "configured"
    assert changed.document["metadata"]["generation"] == 2
    [relabelled] = store.apply([svc("benigno", port=5001, team="a")])
    assert relabelled.document["metadata"]["generation"] == 2
    assert relabelled.document["metadata"]["resourceVersion"] == "3"
    assert relabelled.document["metadata"]["uid"] == changed.document["metadata"]["uid"]


def test_stale_resource_version_is_a_conflict_and_changes_nothing(store: BaseStore) -> None:
    store.apply([svc("benigno")])
    store.apply([svc("benigno", port=5001)])
    stale = svc("benigno", port=5002)
    stale.metadata.resource_version = "1"
    with pytest.raises(Conflict, match="stale"):
        store.apply([stale])
    doc = store.get(key("benigno"))
    assert doc is not None and doc["spec"]["ports"][0]["port"] == 5001
    fresh = svc("benigno", port=5002)
    fresh.metadata.resource_version = "2"
    assert store.apply([fresh])[0].action == "configured"


def test_multi_object_apply_is_all_or_nothing(store: BaseStore) -> None:
    store.apply([svc("a")])
    bad = svc("a", port=6000)
    bad.metadata.resource_version = "999"
    with pytest.raises(Conflict):
        store.apply([svc("b"), bad])
    assert store.get(key("b")) is None
    assert store.revision() == 1


def test_dry_run_stores_nothing(store: BaseStore) -> None:
    [result] = store.apply([svc("a")], dry_run=True)
    assert result.action == "created"
    assert store.get(key("a")) is None
    assert store.revision() == 0


def test_list_by_kind_namespace_and_selector(store: BaseStore) -> None:
    store.apply(
        [
            svc("a", "ns1", tier="web"),
            svc("b", "ns1", tier="db"),
            svc("c", "ns2", tier="web"),
            *parse_text("apiVersion: gossamer.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}"),
        ]
    )
    docs, revision = store.list(kind="Service")
    assert [d["metadata"]["name"] for d in docs] == ["a", "b", "c"]
    assert revision == store.revision()
    docs, _ = store.list(kind="Service", namespace="ns1")
    assert [d["metadata"]["name"] for d in docs] == ["a", "b"]
    docs, _ = store.list(selector=Selector.parse("tier=web"))
    assert [d["metadata"]["name"] for d in docs] == ["a", "c"]
    docs, _ = store.list(kind="Mesh")
    assert docs[0]["metadata"]["name"] == "default"
    assert "namespace" not in docs[0]["metadata"]


def test_delete(store: BaseStore) -> None:
    store.apply([svc("a")])
    with pytest.raises(Conflict):
        store.delete(key("a"), resource_version="7")
    deleted = store.delete(key("a"))
    assert deleted["metadata"]["name"] == "a"
    assert store.get(key("a")) is None
    with pytest.raises(NotFound):
        store.delete(key("a"))
    assert [e.type for e in store.events_since(0)] == ["ADDED", "DELETED"]


def test_events_are_ordered_and_compaction_is_reported(tmp_path: Path) -> None:
    for s in (MemoryStore(retain_events=5), SqliteStore(tmp_path / "c.db", retain_events=5)):
        for i in range(12):
            s.apply([svc("a", port=5000 + i)])
        events = s.events_since(8)
        assert [e.revision for e in events] == [9, 10, 11, 12]
        with pytest.raises(Compacted):
            s.events_since(1)
        s.close()


def test_watch_from_a_listed_revision_misses_nothing(store: BaseStore) -> None:
    async def scenario() -> list[tuple[str, int, str]]:
        store.apply([svc("a")])
        _, revision = store.list()
        watch = store.watch(revision)
        store.apply([svc("b")])
        store.apply([svc("a", port=1)])
        store.delete(key("b"))
        seen = []
        for _ in range(3):
            event = await asyncio.wait_for(watch.__anext__(), 5)
            seen.append((event.type, event.revision, event.key.name))
        assert await watch.next(timeout=0.05) is None
        watch.close()
        return seen

    assert asyncio.run(scenario()) == [("ADDED", 2, "b"), ("MODIFIED", 3, "a"), ("DELETED", 4, "b")]


def test_watch_from_a_compacted_revision_fails(tmp_path: Path) -> None:
    s = MemoryStore(retain_events=2)
    for i in range(5):
        s.apply([svc("a", port=100 + i)])

    async def scenario() -> None:
        with pytest.raises(Compacted):
            s.watch(0)

    asyncio.run(scenario())


def test_concurrent_writers_serialise_and_watchers_see_every_revision_in_order(
    store: BaseStore,
) -> None:
    writers, updates = 4, 25

    async def scenario() -> list[int]:
        watch = store.watch(0)

        def write(n: int) -> None:
            for i in range(updates):
                # half the writers fight over one object, the others have their own
                name = "shared" if n % 2 == 0 else f"own-{n}"
                store.apply([svc(name, port=1000 + n * 100 + i)])

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for t in threads:
            t.start()
        await asyncio.get_running_loop().run_in_executor(None, lambda: [t.join() for t in threads])
        revisions = []
        while (event := await watch.next(timeout=0.5)) is not None:
            revisions.append(event.revision)
        watch.close()
        return revisions

    revisions = asyncio.run(scenario())
    assert revisions == list(range(1, writers * updates + 1))
    assert store.revision() == writers * updates
    own = store.get(key("own-1"))
    assert own is not None and own["metadata"]["generation"] == updates


def test_sqlite_survives_restart(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "g.db")
    s.apply([svc("a"), svc("b")])
    s.close()
    again = SqliteStore(tmp_path / "g.db")
    docs, revision = again.list()
    assert [d["metadata"]["name"] for d in docs] == ["a", "b"]
    assert revision == 2
    assert again.apply([svc("c")])[0].document["metadata"]["resourceVersion"] == "3"
    again.close()


_CRASHER = """
import sys
from gossamer.api.kinds.mesh import Service
from gossamer.controlplane.store import SqliteStore
s = SqliteStore(sys.argv[1])
i = 0
while True:
    s.apply([Service.model_validate({"metadata": {"name": f"s{i}"}, "spec": {}})])
    print(i, flush=True)  # acknowledged
    i += 1
"""


def test_sqlite_keeps_every_acknowledged_write_when_killed(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHER, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acked: list[str] = []
    for line in proc.stdout:
        acked.append(line.strip())
        if len(acked) >= 30:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    s = SqliteStore(db)
    names = {d["metadata"]["name"] for d in s.list()[0]}
    assert {f"s{i}" for i in acked} <= names
    s.close()
