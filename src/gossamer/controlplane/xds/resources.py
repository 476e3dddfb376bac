"""Immutable, pre-serialised xDS resources and per-proxy snapshots of them.

Every resource is serialised (deterministically) and hashed once; the result is shared by
every snapshot that holds an identical resource, found first by the message object's
identity and then by content, so 1,000 proxies that see the same 1,000 clusters share one
`Resource` per cluster. Versions are content hashes, so they survive a control-plane
restart and an unchanged type never causes a push.

Messages handed to a `Snapshot` (or to `Resource.of`) must not be mutated afterwards.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, TypeAlias

from google.protobuf import any_pb2
from google.protobuf.message import Message

from gossamer.controlplane.xds import types, wire

_TYPE_PREFIX: Final = "type.googleapis.com/"
# Fields that carry a resource's name, for the types whose name field is not `name`.
_NAME_FIELDS: Final[dict[str, str]] = {types.ENDPOINT: "cluster_name"}


def resource_name(type_url: str, message: Message) -> str:
    """The name a resource of `type_url` is known by (e.g. `cluster_name` for EDS)."""
    return str(getattr(message, _NAME_FIELDS.get(type_url, "name")))


def version_string(accumulator: int) -> str:
    """The version of a set of resources, from the XOR of their `token`s.

    XOR makes it order-free and lets a stream maintain the version of the subset it
    subscribes to in O(changes) when the set changes.
    """
    return f"{accumulator:016x}"


def xor_tokens(resources: Iterable[Resource]) -> int:
    accumulator = 0
    for resource in resources:
        accumulator ^= resource.token
    return accumulator


def content_version(resources: Iterable[Resource]) -> str:
    """A short version string for a set of resources (depends on names and contents)."""
    return version_string(xor_tokens(resources))


class Resource:
    """One named resource: its message, serialised `Any`, content hash and wire chunks.

    Build with `Resource.of` (cached); equal content yields the same object.
    """

    __slots__ = (
        "__weakref__",
        "_delta_chunk",
        "any_bytes",
        "hash",
        "message",
        "name",
        "sotw_chunk",
        "token",
        "type_url",
    )

    def __init__(self, type_url: str, name: str, message: Message, value: bytes) -> None:
        self.type_url = type_url
        self.name = name
        self.message = message
        # 96 bits: collisions are out of reach; the hash doubles as the delta version.
        self.hash = hashlib.blake2b(value, digest_size=12).hexdigest()
        # 64 bits standing for (name, content) in set versions; see `version_string`.
        self.token = int.from_bytes(
            hashlib.blake2b(f"{name}\0{self.hash}".encode(), digest_size=8).digest(), "big"
        )
        self.any_bytes = wire.any_bytes(type_url, value)
        self.sotw_chunk = wire.sotw_resource_chunk(self.any_bytes)
        self._delta_chunk: bytes | None = None

    @staticmethod
    def of(type_url: str, message: Message, name: str | None = None) -> Resource:
        """The shared `Resource` for `message` (named from the message unless `name`)."""
        return _CACHE.get(type_url, message, name)

    @property
    def delta_chunk(self) -> bytes:
        # Lazy: most deployments speak only one of the two protocol variants.
        if self._delta_chunk is None:
            self._delta_chunk = wire.delta_resource_chunk(self.name, self.hash, self.any_bytes)
        return self._delta_chunk

    def to_any(self) -> any_pb2.Any:
        return any_pb2.Any.FromString(self.any_bytes)

    def __repr__(self) -> str:
        return f"Resource({types.short_name(self.type_url)}:{self.name}@{self.hash[:8]})"


class ResourceCache:
    """Finds the shared `Resource` for a message: by identity, then by content.

    Entries live as long as some snapshot (or caller) holds the `Resource`.
    """

    def __init__(self) -> None:
        # id(message) -> Resource holding that very message (checked with `is`).
        self._by_id: dict[int, weakref.ref[Resource]] = {}
        self._by_content: weakref.WeakValueDictionary[tuple[str, str, bytes], Resource] = (
            weakref.WeakValueDictionary()
        )

    def __len__(self) -> int:
        return len(self._by_content)

    def get(self, type_url: str, message: Message, name: str | None = None) -> Resource:
        ref = self._by_id.get(id(message))
        if ref is not None:
            found = ref()
            if (
                found is not None
                and found.message is message
                and found.type_url == type_url
                and (name is None or found.name == name)
            ):
                return found
        actual = _TYPE_PREFIX + message.DESCRIPTOR.full_name
        if actual != type_url:
            raise ValueError(f"a {actual} message cannot be a {type_url} resource")
        if name is None:
            name = resource_name(type_url, message)
        value = message.SerializeToString(deterministic=True)
        key = (type_url, name, hashlib.blake2b(value, digest_size=16).digest())
        resource = self._by_content.get(key)
        if resource is None:
            resource = Resource(type_url, name, message, value)
            self._by_content[key] = resource
            self._remember(message, resource)
        return resource

    def _remember(self, message: Message, resource: Resource) -> None:
        # The Resource holds the message, so the id cannot be reused while it lives.
        key = id(message)

        def forget(dead: weakref.ref[Resource]) -> None:
            if self._by_id.get(key) is dead:
                del self._by_id[key]

        self._by_id[key] = weakref.ref(resource, forget)


_CACHE: Final = ResourceCache()

ResourceInput: TypeAlias = "Message | Resource"
ResourcesInput: TypeAlias = "ResourceSet | Mapping[str, ResourceInput] | Iterable[ResourceInput]"


class ResourceSet(Mapping[str, Resource]):
    """All resources of one type in a snapshot, by name; immutable.

    Share one `ResourceSet` between the snapshots of many proxies when they see the same
    resources: its version is computed once, and a stream skips a type whose set is the
    very object it last answered from.
    """

    __slots__ = ("__weakref__", "_resources", "_sotw_body", "_xor", "type_url")

    def __init__(self, type_url: str, resources: ResourcesInput = ()) -> None:
        self.type_url = type_url
        self._xor: int | None = None
        self._sotw_body: bytes | None = None
        items: dict[str, Resource] = {}
        pairs: Iterable[tuple[str | None, ResourceInput]]
        if isinstance(resources, Mapping):
            pairs = resources.items()
        else:
            pairs = ((None, item) for item in resources)
        for name, item in pairs:
            resource = self._resource(item, name)
            if resource.name in items:
                # A response must never name a resource twice (clients NACK it).
                kind = types.short_name(type_url)
                raise ValueError(f"duplicate {kind} resource {resource.name!r}")
            items[resource.name] = resource
        self._resources = items

    def _resource(self, item: ResourceInput, name: str | None) -> Resource:
        if isinstance(item, Resource):
            if item.type_url != self.type_url:
                raise ValueError(f"a {item.type_url} resource in a {self.type_url} set")
            if name is not None and name != item.name:
                raise ValueError(f"resource {item.name!r} listed under the name {name!r}")
            return item
        resource = _CACHE.get(self.type_url, item, None)
        if name is not None and name != resource.name:
            # The client knows a resource by the name inside it; a different key lies.
            raise ValueError(
                f"{types.short_name(self.type_url)} resource named {resource.name!r} "
                f"listed under the name {name!r}"
            )
        return resource

    @property
    def token_xor(self) -> int:
        """XOR of the resources' tokens (computed once); see `version_string`."""
        if self._xor is None:
            self._xor = xor_tokens(self._resources.values())
        return self._xor

    @property
    def version(self) -> str:
        """Content version of the whole set."""
        return version_string(self.token_xor)

    @property
    def sotw_body(self) -> bytes:
        """All resources as `DiscoveryResponse.resources` entries (joined once)."""
        if self._sotw_body is None:
            self._sotw_body = b"".join(r.sotw_chunk for r in self._resources.values())
        return self._sotw_body

    def __getitem__(self, name: str) -> Resource:
        return self._resources[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._resources.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._resources

    def __iter__(self) -> Iterator[str]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)

    def __repr__(self) -> str:
        return f"ResourceSet({types.short_name(self.type_url)}, {len(self)} @{self.version})"


class Snapshot:
    """The complete configuration of one proxy: a `ResourceSet` per type URL.

    `Snapshot({types.CLUSTER: [cluster, ...], types.ROUTE: {"r": route}})`, or with the
    keywords `listeners=`, `routes=`, `clusters=`, `endpoints=`, `secrets=`. Values may be
    a `ResourceSet` (shared as is), a mapping name → message/`Resource`, or an iterable of
    messages/`Resource`s (named from the message). A type that is absent is empty.
    """

    __slots__ = ("_sets",)

    def __init__(
        self,
        resources: Mapping[str, ResourcesInput] | None = None,
        *,
        listeners: ResourcesInput | None = None,
        routes: ResourcesInput | None = None,
        clusters: ResourcesInput | None = None,
        endpoints: ResourcesInput | None = None,
        secrets: ResourcesInput | None = None,
    ) -> None:
        given: dict[str, ResourcesInput] = dict(resources or {})
        for type_url, value in (
            (types.LISTENER, listeners),
            (types.ROUTE, routes),
            (types.CLUSTER, clusters),
            (types.ENDPOINT, endpoints),
            (types.SECRET, secrets),
        ):
            if value is not None:
                if type_url in given:
                    raise ValueError(f"{types.short_name(type_url)} resources given twice")
                given[type_url] = value
        self._sets: dict[str, ResourceSet] = {
            type_url: _as_set(type_url, value) for type_url, value in given.items()
        }

    def get(self, type_url: str) -> ResourceSet:
        """The resources of `type_url` (an empty set if the snapshot has none)."""
        found = self._sets.get(type_url)
        if found is None:
            found = _empty(type_url)
        return found

    def version(self, type_url: str) -> str:
        return self.get(type_url).version

    @property
    def type_urls(self) -> tuple[str, ...]:
        return tuple(self._sets)

    def replace(self, type_url: str, resources: ResourcesInput) -> Snapshot:
        """A copy with the resources of one type replaced (the other sets are shared)."""
        new = Snapshot()
        new._sets = dict(self._sets)
        new._sets[type_url] = _as_set(type_url, resources)
        return new

    def __repr__(self) -> str:
        inner = ", ".join(f"{types.short_name(t)}={len(s)}" for t, s in self._sets.items())
        return f"Snapshot({inner})"


def _as_set(type_url: str, value: ResourcesInput) -> ResourceSet:
    if isinstance(value, ResourceSet):
        if value.type_url != type_url:
            raise ValueError(f"a {value.type_url} set given as {type_url}")
        return value
    return _intern(ResourceSet(type_url, value))


# Equal sets built separately (one per proxy) collapse into one object, so a stream sees
# "same set as last time" by identity and the set's version is computed once. The key is
# the tuple of shared `Resource` objects: hashing and comparing it costs no serialisation.
_SETS: weakref.WeakValueDictionary[tuple[str, tuple[Resource, ...]], ResourceSet] = (
    weakref.WeakValueDictionary()
)


def _intern(new: ResourceSet) -> ResourceSet:
    key = (new.type_url, tuple(new.values()))
    found = _SETS.get(key)
    if found is None:
        _SETS[key] = found = new
    return found


_EMPTY: dict[str, ResourceSet] = {}


def _empty(type_url: str) -> ResourceSet:
    # One shared empty set per type, so "still empty" is recognised by identity.
    found = _EMPTY.get(type_url)
    if found is None:
        found = _EMPTY[type_url] = ResourceSet(type_url)
    return found
