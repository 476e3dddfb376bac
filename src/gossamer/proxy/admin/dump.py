"""The current config as JSON for /config_dump, with every private key redacted."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from gossamer.proxy.config import model as m

REDACTED = "[redacted]"


def to_jsonable(value: Any) -> Any:
    if isinstance(value, m.Secret):
        return {
            "name": value.name,
            "certificate_chain": value.certificate_chain.decode("utf-8", "replace"),
            "private_key": REDACTED if value.private_key else "",
            "trusted_ca": value.trusted_ca.decode("utf-8", "replace"),
        }
    if isinstance(value, m.RouteTable):
        # The domain lookup tables repeat the virtual hosts: dump the source only.
        return {
            "name": value.name,
            "virtual_hosts": to_jsonable(value.virtual_hosts),
            "request_headers_to_remove": list(value.request_headers_to_remove),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, frozenset, set)):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (frozenset, set)) else items
    return value


def config_dump(config: m.ProxyConfig | None) -> dict[str, Any]:
    if config is None:
        return {"applied": False}
    return {
        "applied": True,
        "versions": dict(config.versions),
        "listeners": to_jsonable(config.listeners),
        "routes": to_jsonable(config.routes),
        "clusters": to_jsonable(config.clusters),
        "secrets": to_jsonable(config.secrets),
    }
