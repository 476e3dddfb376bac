"""Hand-encoded responses parse as the generated messages; resources are shared by content."""

from __future__ import annotations

import gc

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from hypothesis import given
from hypothesis import strategies as st

from gossamer.controlplane.xds import (
    CLUSTER,
    ENDPOINT,
    ROUTE,
    Resource,
    ResourceSet,
    Snapshot,
    wire,
)
from gossamer.controlplane.xds.protocol import DiffCache
from gossamer.controlplane.xds.resources import ResourceCache, content_version
from tests.unit.controlplane.xds import envoy_resources as er


def test_sotw_response_parses_as_discovery_response() -> None:
    resources = [Resource.of(CLUSTER, er.cluster(f"c{i}")) for i in range(3)]
    payload = wire.sotw_response(
        "v1", CLUSTER, "7", (r.sotw_chunk for r in resources), wire.control_plane("gossamer")
    )
    parsed = discovery_pb2.DiscoveryResponse.FromString(payload)
    assert parsed.version_info == "v1"
    assert parsed.type_url == CLUSTER
    assert parsed.nonce == "7"
    assert parsed.control_plane.identifier == "gossamer"
    assert [a.type_url for a in parsed.resources] == [CLUSTER] * 3
    assert [a.value for a in parsed.resources] == [
        er.cluster(f"c{i}").SerializeToString(deterministic=True) for i in range(3)
    ]


def test_delta_response_parses_as_delta_discovery_response() -> None:
    resource = Resource.of(ENDPOINT, er.endpoints("c1", 8080))
    payload = wire.delta_response("sys", ENDPOINT, "3", [resource.delta_chunk], ["gone", ""])
    parsed = discovery_pb2.DeltaDiscoveryResponse.FromString(payload)
    assert parsed.system_version_info == "sys"
    assert parsed.nonce == "3"
    assert parsed.type_url == ENDPOINT
    assert list(parsed.removed_resources) == ["gone", ""]
    (got,) = parsed.resources
    assert (got.name, got.version) == ("c1", resource.hash)
    assert got.resource.value == er.endpoints("c1", 8080).SerializeToString(deterministic=True)


@given(st.integers(min_value=0, max_value=2**63))
def test_varint_matches_protobuf(value: int) -> None:
    # A string field whose length is `value` is too big to build; compare via an int field.
    from google.protobuf import wrappers_pb2

    encoded = wrappers_pb2.UInt64Value(value=value).SerializeToString()
    expected = b"\x08" + wire.varint(value) if value else b""
    assert encoded == expected


def test_identical_messages_share_one_resource() -> None:
    a, b = er.cluster("web"), er.cluster("web")
    assert a is not b
    first = Resource.of(CLUSTER, a)
    assert Resource.of(CLUSTER, a) is first  # by identity
    assert Resource.of(CLUSTER, b) is first  # by content
    assert Resource.of(CLUSTER, er.cluster("api")) is not first
    changed = er.cluster("web")
    changed.connect_timeout.seconds = 5
    assert Resource.of(CLUSTER, changed).hash != first.hash


def test_cache_forgets_unreferenced_resources() -> None:
    cache = ResourceCache()
    resource = cache.get(CLUSTER, er.cluster("tmp"))
    assert len(cache) == 1
    del resource
    gc.collect()
    assert len(cache) == 0


def test_resource_set_checks_names_and_types() -> None:
    with pytest.raises(ValueError, match="listed under the name"):
        ResourceSet(CLUSTER, {"other": er.cluster("web")})
    with pytest.raises(ValueError, match="cannot be a"):
        ResourceSet(CLUSTER, [er.endpoints("web")])
    with pytest.raises(ValueError, match="duplicate cds resource 'web'"):
        ResourceSet(CLUSTER, [er.cluster("web"), er.cluster("web")])
    # ClusterLoadAssignment is named by cluster_name.
    assert list(ResourceSet(ENDPOINT, [er.endpoints("web", 1)])) == ["web"]


def test_versions_depend_on_content_only() -> None:
    one = ResourceSet(CLUSTER, [er.cluster("a"), er.cluster("b")])
    two = ResourceSet(CLUSTER, {"b": er.cluster("b"), "a": er.cluster("a")})
    assert one.version == two.version
    assert ResourceSet(CLUSTER, [er.cluster("a")]).version != one.version
    assert content_version([]) == ResourceSet(CLUSTER).version


def test_snapshot_types_and_replace() -> None:
    clusters = ResourceSet(CLUSTER, [er.cluster("a")])
    snap = Snapshot(clusters=clusters, routes=[er.route("r", "a", "a")])
    assert snap.get(CLUSTER) is clusters  # shared, not copied
    assert len(snap.get(ENDPOINT)) == 0
    assert snap.get(ENDPOINT) is Snapshot().get(ENDPOINT)  # one empty set per type
    changed = snap.replace(ROUTE, [er.route("r", "a", "b")])
    assert changed.get(CLUSTER) is clusters
    assert changed.version(ROUTE) != snap.version(ROUTE)
    with pytest.raises(ValueError, match="given twice"):
        Snapshot({CLUSTER: []}, clusters=[])


def test_equal_sets_of_different_snapshots_are_one_object() -> None:
    # Built independently per proxy, they still share one set (and one version).
    one = Snapshot(clusters=[er.cluster("a"), er.cluster("b")])
    two = Snapshot(clusters=[er.cluster("a"), er.cluster("b")])
    assert one.get(CLUSTER) is two.get(CLUSTER)
    assert Snapshot(clusters=[er.cluster("a")]).get(CLUSTER) is not one.get(CLUSTER)


def test_diffs_between_two_sets_are_computed_once() -> None:
    cache = DiffCache()
    old = ResourceSet(ENDPOINT, [er.endpoints("a", 1), er.endpoints("b", 1), er.endpoints("c", 1)])
    new = ResourceSet(ENDPOINT, [er.endpoints("a", 1), er.endpoints("b", 2), er.endpoints("d", 1)])
    diff = cache.get(old, new)
    assert cache.get(old, new) is diff  # shared by every stream making this move
    assert [r.name for r in diff.added] == ["d"]
    assert [(o.name, n.name) for o, n in diff.modified] == [("b", "b")]
    assert [r.name for r in diff.removed] == ["c"]
    assert cache.get(new, old) is not diff
