"""A static configuration file (`gossamer proxy run --config FILE`): no control plane.

YAML or JSON with four lists of Envoy v3 resources in proto-JSON form (field names in
either snake_case or lowerCamelCase, typed configs with "@type"):

    listeners: [Listener...]          routes: [RouteConfiguration...]
    clusters:  [Cluster...]           endpoints: [ClusterLoadAssignment...]

They go through json_format into the envoy messages and through the same compile
functions as xDS responses, so a static file and the control plane configure the
sidecar identically (and a file the sidecar accepts is one Envoy would accept).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    ConfigError,
    assemble,
    compile_cluster,
    compile_endpoints,
    compile_listener,
    compile_route_configuration,
)

SECTIONS = ("listeners", "routes", "clusters", "endpoints")


class StaticConfigError(ValueError):
    pass


def _messages() -> dict[str, Any]:
    from envoy.config.cluster.v3 import cluster_pb2
    from envoy.config.endpoint.v3 import endpoint_pb2
    from envoy.config.listener.v3 import listener_pb2
    from envoy.config.route.v3 import route_pb2

    from gossamer.proxy.config.support import _import_typed_configs

    _import_typed_configs()  # so that "@type" of typed configs resolves
    return {
        "listeners": listener_pb2.Listener,
        "routes": route_pb2.RouteConfiguration,
        "clusters": cluster_pb2.Cluster,
        "endpoints": endpoint_pb2.ClusterLoadAssignment,
    }


def parse_document(text: str, source: str = "config") -> dict[str, Any]:
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError are ValueErrors
        raise StaticConfigError(f"{source}: not valid YAML or JSON: {exc}") from None
    except Exception as exc:
        raise StaticConfigError(f"{source}: not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise StaticConfigError(f"{source}: expected a mapping with {', '.join(SECTIONS)}")
    unknown = set(data) - set(SECTIONS)
    if unknown:
        raise StaticConfigError(
            f"{source}: unknown section(s) {', '.join(sorted(unknown))}; "
            f"expected {', '.join(SECTIONS)}"
        )
    return data


def compile_document(data: dict[str, Any], source: str = "config") -> m.ProxyConfig:
    """Proto-JSON documents → one consistent ProxyConfig (or StaticConfigError)."""
    from google.protobuf import json_format

    classes = _messages()
    parsed: dict[str, list[Any]] = {}
    for section in SECTIONS:
        items = data.get(section) or []
        if not isinstance(items, list):
            raise StaticConfigError(f"{source}: {section} must be a list")
        parsed[section] = []
        for i, item in enumerate(items):
            try:
                parsed[section].append(json_format.ParseDict(item, classes[section]()))
            except json_format.ParseError as exc:
                first_line = str(exc).split("\n", 1)[0]  # the rest lists every field
                raise StaticConfigError(f"{source}: {section}[{i}]: {first_line}") from None
    try:
        listeners = {lst.name: compile_listener(lst) for lst in parsed["listeners"]}
        routes = {rc.name: compile_route_configuration(rc) for rc in parsed["routes"]}
        clusters = {c.name: compile_cluster(c) for c in parsed["clusters"]}
        endpoints = {cla.cluster_name: compile_endpoints(cla) for cla in parsed["endpoints"]}
    except ConfigError as exc:
        raise StaticConfigError(f"{source}: {exc}") from None
    for name, lst in listeners.items():
        handler = lst.handler
        if isinstance(handler, m.HttpConnectionManager):
            rds = handler.route_config_name
            if rds is not None and rds not in routes:
                raise StaticConfigError(
                    f"{source}: listener {name!r} uses route {rds!r}: not found"
                )
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    versions = {t: f"static-{digest}" for t in (LISTENER, ROUTE, CLUSTER, ENDPOINT)}
    return assemble(listeners, routes, clusters, endpoints, {}, versions)


def load_file(path: Path) -> m.ProxyConfig:
    try:
        text = path.read_text()
    except OSError as exc:
        raise StaticConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    return compile_document(parse_document(text, str(path)), str(path))
