"""Reading and writing manifests: multi-document YAML, JSON, and `kind: List`.

`parse_resources` validates every document before returning any: a file with one bad
document yields an ApplyError listing every problem, and nothing is applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from gossamer.api.errors import ApplyError, Problem, ResourceError, problems_from_validation
from gossamer.api.model import Resource
from gossamer.api.registry import KindInfo, all_kinds, by_api_version, kinds_named


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def load_documents(text: str, source: str = "") -> list[dict[str, Any]]:
    """Every object in a YAML stream or JSON text; `kind: List` items are flattened."""
    where = source or "input"
    stripped = text.lstrip()
    try:
        if stripped.startswith(("{", "[")):
            data: Any = json.loads(text)
            raw = data if isinstance(data, list) else [data]
        else:
            raw = list(yaml.load_all(text, Loader=_UniqueKeyLoader))
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        problem = Problem("", f"not valid YAML or JSON: {exc}")
        raise ApplyError([ResourceError(where, [problem])]) from None
    docs: list[dict[str, Any]] = []
    for index, doc in enumerate(raw, start=1):
        if doc is None:
            continue  # an empty document between two `---`
        if not isinstance(doc, dict):
            raise ApplyError(
                [
                    ResourceError(
                        f"document {index}",
                        [Problem("", f"expected a mapping, got {type(doc).__name__}")],
                        source,
                    )
                ]
            )
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            docs.extend(item for item in doc["items"] if item is not None)
        else:
            docs.append(doc)
    return docs


def _doc_ref(doc: Mapping[str, Any], index: int) -> str:
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else None
    raw_meta = doc.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else "default"
    if kind and name:
        api_version = doc.get("apiVersion")
        info = by_api_version(api_version, kind) if isinstance(api_version, str) else None
        if info is not None and not info.namespaced:
            return f"{kind} {name}"
        return f"{kind} {ns}/{name}"
    if kind:
        return f"{kind} (document {index})"
    return f"document {index}"


def _find_kind(doc: Mapping[str, Any], ref: str, source: str) -> KindInfo:
    api_version = doc.get("apiVersion")
    kind = doc.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ResourceError(ref, [Problem("kind", "required field is missing")], source)
    if not isinstance(api_version, str) or not api_version:
        raise ResourceError(ref, [Problem("apiVersion", "required field is missing")], source)
    info = by_api_version(api_version, kind)
    if info is None:
        same = kinds_named(kind)
        if same:
            wanted = ", ".join(i.preferred_api_version for i in same)
            reason = f"kind {kind} is not in apiVersion {api_version}; use {wanted}"
            raise ResourceError(ref, [Problem("apiVersion", reason)], source)
        known = ", ".join(sorted({i.kind for i in all_kinds()}))
        raise ResourceError(
            ref, [Problem("kind", f"unknown kind {kind!r}; known: {known}")], source
        )
    version = api_version.rsplit("/", 1)[-1]
    if version not in info.versions:
        supported = ", ".join(info.versions)
        reason = f"version {version!r} of {info.qualified} is not supported; use one of {supported}"
        raise ResourceError(ref, [Problem("apiVersion", reason)], source)
    return info


def parse_resource(doc: Mapping[str, Any], index: int = 1, source: str = "") -> Resource:
    """Validate one document; raises ResourceError naming the resource and field."""
    ref = _doc_ref(doc, index)
    info = _find_kind(doc, ref, source)
    try:
        resource = info.model.model_validate(dict(doc))
    except ValidationError as exc:
        raise ResourceError(ref, problems_from_validation(exc), source) from None
    semantic = resource.validate_semantics()
    if semantic:
        raise ResourceError(resource.ref, [Problem(p, r) for p, r in semantic], source)
    return resource


def parse_resources(docs: Iterable[Mapping[str, Any]], source: str = "") -> list[Resource]:
    """Validate all documents; raise one ApplyError with every failure, or return them all."""
    resources: list[Resource] = []
    errors: list[ResourceError] = []
    seen: dict[tuple[str, str, str, str], int] = {}
    for index, doc in enumerate(docs, start=1):
        try:
            resource = parse_resource(doc, index, source)
        except ResourceError as exc:
            errors.append(exc)
            continue
        key = (resource.GROUP, resource.KIND, resource.namespace, resource.name)
        if key in seen:
            errors.append(
                ResourceError(
                    resource.ref,
                    [
                        Problem(
                            "metadata.name", f"appears twice (documents {seen[key]} and {index})"
                        )
                    ],
                    source,
                )
            )
            continue
        seen[key] = index
        resources.append(resource)
    if errors:
        raise ApplyError(errors)
    return resources


def parse_text(text: str, source: str = "") -> list[Resource]:
    return parse_resources(load_documents(text, source), source)


def to_document(resource: Resource) -> dict[str, Any]:
    """The canonical stored form: what the user wrote, metadata filled in by the store."""
    meta = resource.metadata.to_dict()
    if resource.NAMESPACED:
        meta["namespace"] = resource.namespace
    else:
        meta.pop("namespace", None)
    doc: dict[str, Any] = {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": meta,
    }
    spec = resource.to_dict().get("spec")
    if spec is not None:
        doc["spec"] = spec
    return doc


def dump_yaml(docs: Iterable[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all(
        [dict(d) for d in docs], sort_keys=False, default_flow_style=False, allow_unicode=True
    )


def dump_json(docs: list[dict[str, Any]]) -> str:
    return json.dumps(docs[0] if len(docs) == 1 else {"kind": "List", "items": docs}, indent=2)
