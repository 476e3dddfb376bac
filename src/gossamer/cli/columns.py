"""The summary columns `gossamer get` shows per kind (beyond NAMESPACE, NAME and AGE)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gossamer.api.kinds.policies import POLICY_KINDS

Doc = dict[str, Any]
Column = tuple[str, Callable[[Doc], str]]


def _spec(doc: Doc) -> Doc:
    spec = doc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _target(doc: Doc) -> str:
    ref = _spec(doc).get("targetRef") or {"kind": "Mesh"}
    name = ref.get("name")
    return f"{ref.get('kind', 'Mesh')}/{name}" if name else str(ref.get("kind", "Mesh"))


def _ports(ports: list[Doc]) -> str:
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'http')}" for p in ports) or "-"


def _backends(doc: Doc) -> str:
    return ",".join(f"{b.get('service')}={b.get('weight')}" for b in _spec(doc).get("backends", []))


def _parents(doc: Doc) -> str:
    refs = _spec(doc).get("parentRefs") or []
    return ",".join(f"{r.get('kind', 'Gateway')}/{r.get('name')}" for r in refs) or "-"


def _sel(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<all>"


_COLUMNS: dict[str, list[Column]] = {
    "Mesh": [
        ("MTLS", lambda d: str((_spec(d).get("mtls") or {}).get("mode", "STRICT"))),
        ("ACCESS", lambda d: str(_spec(d).get("defaultAccess", "allow"))),
        ("EGRESS", lambda d: str((_spec(d).get("egress") or {}).get("mode", "REGISTRY_ONLY"))),
    ],
    "Service": [
        ("SELECTOR", lambda d: _sel(_spec(d).get("selector") or {})),
        ("PORTS", lambda d: _ports(_spec(d).get("ports") or [])),
    ],
    "Workload": [
        ("ADDRESS", lambda d: str(_spec(d).get("address", ""))),
        ("PORTS", lambda d: _ports(_spec(d).get("ports") or [])),
        ("LABELS", lambda d: _sel(d["metadata"].get("labels") or {})),
    ],
    "ExternalService": [
        ("HOST", lambda d: f"{_spec(d).get('host')}:{_spec(d).get('port')}"),
        ("PROTOCOL", lambda d: str(_spec(d).get("protocol", "http"))),
    ],
    "TrafficSplit": [
        ("SERVICE", lambda d: str(_spec(d).get("service", ""))),
        ("BACKENDS", _backends),
    ],
    "TrafficTarget": [
        ("DESTINATION", lambda d: str((_spec(d).get("destination") or {}).get("name", ""))),
        (
            "SOURCES",
            lambda d: ",".join(str(s.get("name")) for s in _spec(d).get("sources") or []) or "-",
        ),
    ],
    "HTTPRoute": [
        ("PARENTS", _parents),
        ("HOSTNAMES", lambda d: ",".join(_spec(d).get("hostnames") or []) or "*"),
        ("RULES", lambda d: str(len(_spec(d).get("rules") or []))),
    ],
    "GRPCRoute": [
        ("PARENTS", _parents),
        ("RULES", lambda d: str(len(_spec(d).get("rules") or []))),
    ],
    "TCPRoute": [("PARENTS", _parents)],
    "Gateway": [
        ("CLASS", lambda d: str(_spec(d).get("gatewayClassName", ""))),
        (
            "LISTENERS",
            lambda d: ",".join(
                f"{x.get('protocol')}:{x.get('port')}" for x in _spec(d).get("listeners") or []
            ),
        ),
    ],
    "Ingress": [
        ("CLASS", lambda d: str(_spec(d).get("ingressClassName") or "-")),
        (
            "HOSTS",
            lambda d: ",".join(str(r.get("host", "*")) for r in _spec(d).get("rules") or []) or "*",
        ),
    ],
}


def columns_for(kind: str) -> list[Column]:
    if kind in _COLUMNS:
        return _COLUMNS[kind]
    if kind in {k.KIND for k in POLICY_KINDS}:
        return [("TARGET", _target)]
    return []
