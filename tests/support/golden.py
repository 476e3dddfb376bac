"""Golden files for translation: input YAML (node + resources) → expected xDS as YAML.

Run `pytest --update-golden` to rewrite the expected files from the current output, then
read the diff: the diff is the review.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from gossamer.api.loader import parse_resources
from gossamer.api.model import Resource
from gossamer.controlplane.translate import MeshTranslator, Resources
from gossamer.controlplane.translate.node import ProxyNode
from gossamer.controlplane.translate.snapshot import build_snapshot

SHORT = {
    "type.googleapis.com/envoy.config.listener.v3.Listener": "listeners",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": "routes",
    "type.googleapis.com/envoy.config.cluster.v3.Cluster": "clusters",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "endpoints",
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "secrets",
}


def load_case(path: Path) -> tuple[list[Resource], list[ProxyNode]]:
    data = yaml.safe_load(path.read_text())
    resources = parse_resources(data.get("resources") or [], str(path))
    # Stable ages for Gateway API tie-breaks: documents are "created" in file order.
    for i, r in enumerate(resources):
        r.metadata.creation_timestamp = (
            r.metadata.creation_timestamp or f"2026-01-01T00:00:{i:02d}Z"
        )
    nodes = []
    for n in data["nodes"]:
        node = ProxyNode.from_metadata(n["id"], n.get("metadata") or {})
        if n.get("requested"):
            node = node.with_requested(frozenset(n["requested"]))
        nodes.append(node)
    return resources, nodes


def render(resources: Resources, only: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for type_url, items in resources.items():
        short = SHORT[type_url]
        if only and short not in only:
            continue
        if items:
            out[short] = {name: _dict(items[name]) for name in sorted(items)}
    return out


def _dict(message: Message) -> dict[str, Any]:
    # Through JSON: MessageToDict gives OrderedDicts for Any, which safe_dump refuses.
    data: dict[str, Any] = json.loads(
        json.dumps(MessageToDict(message, preserving_proto_field_name=True))
    )
    return data


def translate_case(path: Path, only: tuple[str, ...] = ()) -> tuple[str, Resources]:
    resources, nodes = load_case(path)
    translator = MeshTranslator(build_snapshot(resources))
    rendered: dict[str, Any] = {}
    last: Resources = {}
    for node in nodes:
        last = translator.for_proxy(node)
        rendered[node.id] = render(last, only)
    problems = translator.problems
    doc: dict[str, Any] = {"proxies": rendered}
    if problems:
        doc["problems"] = problems
    return yaml.safe_dump(doc, sort_keys=True, width=100), last


def check_golden(path: Path, update: bool, only: tuple[str, ...] = ()) -> Resources:
    text, resources = translate_case(path, only)
    golden = path.with_name(path.name.replace(".input.yaml", ".golden.yaml"))
    if update or not golden.exists():
        golden.write_text(text)
    assert text == golden.read_text(), (
        f"{golden.name} differs; rerun with --update-golden and review"
    )
    return resources
