"""The table of known kinds: (group, kind) → schema, plus the names the CLI accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from gossamer.api.model import Resource

R = TypeVar("R", bound=type[Resource])


@dataclass(frozen=True)
class KindInfo:
    group: str
    kind: str
    versions: tuple[str, ...]
    plural: str
    short_names: tuple[str, ...]
    namespaced: bool
    model: type[Resource]

    @property
    def preferred_api_version(self) -> str:
        return self.api_version(self.versions[-1])

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def qualified(self) -> str:
        """`kind.group` — unique even where two groups define the same kind (TCPRoute)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


_BY_GROUP_KIND: dict[tuple[str, str], KindInfo] = {}


def register(model: R) -> R:
    """Class decorator: make a Resource subclass a known kind."""
    if not (model.KIND and model.VERSIONS and model.PLURAL):
        raise TypeError(f"{model.__name__} must set KIND, VERSIONS and PLURAL")
    info = KindInfo(
        group=model.GROUP,
        kind=model.KIND,
        versions=model.VERSIONS,
        plural=model.PLURAL,
        short_names=model.SHORT_NAMES,
        namespaced=model.NAMESPACED,
        model=model,
    )
    key = (info.group, info.kind)
    if key in _BY_GROUP_KIND and _BY_GROUP_KIND[key].model is not model:
        raise TypeError(f"kind {info.qualified} registered twice")
    _BY_GROUP_KIND[key] = info
    return model


def _ensure_loaded() -> None:
    # Importing the kinds package registers every kind; done lazily to avoid import cycles.
    import gossamer.api.kinds  # noqa: F401


def all_kinds() -> list[KindInfo]:
    _ensure_loaded()
    return sorted(
        _BY_GROUP_KIND.values(), key=lambda k: (k.group != "gossamer.io", k.group, k.kind)
    )


def split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, version = api_version.rsplit("/", 1)
        return group, version
    return "", api_version


def by_api_version(api_version: str, kind: str) -> KindInfo | None:
    _ensure_loaded()
    group, _ = split_api_version(api_version)
    return _BY_GROUP_KIND.get((group, kind))


def by_group_kind(group: str, kind: str) -> KindInfo | None:
    _ensure_loaded()
    return _BY_GROUP_KIND.get((group, kind))


def kinds_named(kind: str) -> list[KindInfo]:
    _ensure_loaded()
    return [k for k in _BY_GROUP_KIND.values() if k.kind == kind]


# Where two groups define one kind, the bare name means this group's.
_PREFERRED_GROUP = {"TCPRoute": "gateway.networking.k8s.io"}


class UnknownKind(LookupError):
    pass


def resolve(name: str) -> KindInfo:
    """Find a kind by what a user types: kind, plural, short name, any case, or `name.group`."""
    _ensure_loaded()
    lowered = name.lower()
    candidates: list[KindInfo] = []
    for info in _BY_GROUP_KIND.values():
        names = {info.kind.lower(), info.plural, info.kind.lower() + "s", *info.short_names}
        qualified = {f"{n}.{info.group}" for n in names}
        if lowered in qualified:
            return info
        if lowered in names:
            candidates.append(info)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        preferred = _PREFERRED_GROUP.get(candidates[0].kind)
        for info in candidates:
            if info.group == preferred:
                return info
        choices = ", ".join(sorted(c.qualified for c in candidates))
        raise UnknownKind(f"kind {name!r} is ambiguous: use one of {choices}")
    raise UnknownKind(
        f"unknown kind {name!r}; known kinds: " + ", ".join(k.kind for k in all_kinds())
    )
