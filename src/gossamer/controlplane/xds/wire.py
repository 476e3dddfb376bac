"""Hand-encoding of discovery responses from pre-serialised resources.

A response is mostly its resources, and every resource is already serialised once (see
`resources.Resource`). Protobuf's wire format lets a repeated message field be written
as concatenated `tag, length, bytes` chunks, so a response is a `b"".join` of cached
chunks instead of a fresh message tree that would copy and re-serialise every resource
for every proxy. The layouts follow envoy/service/discovery/v3/discovery.proto; a unit
test checks them against the generated classes.
"""

from __future__ import annotations

from collections.abc import Iterable

_LEN = 2  # wire type: length-delimited

# DiscoveryResponse
_SOTW_VERSION_INFO = 1
_SOTW_RESOURCES = 2
_SOTW_TYPE_URL = 4
_SOTW_NONCE = 5
_SOTW_CONTROL_PLANE = 6
# DeltaDiscoveryResponse
_DELTA_SYSTEM_VERSION_INFO = 1
_DELTA_RESOURCES = 2
_DELTA_TYPE_URL = 4
_DELTA_NONCE = 5
_DELTA_REMOVED_RESOURCES = 6
_DELTA_CONTROL_PLANE = 7
# Resource (delta)
_RESOURCE_VERSION = 1
_RESOURCE_RESOURCE = 2
_RESOURCE_NAME = 3
# google.protobuf.Any
_ANY_TYPE_URL = 1
_ANY_VALUE = 2
# config.core.v3.ControlPlane
_CONTROL_PLANE_IDENTIFIER = 1


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """One length-delimited field (string, bytes or embedded message)."""
    return varint((number << 3) | _LEN) + varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    # proto3 leaves empty strings out; parsers treat absent and empty alike.
    return field(number, text.encode()) if text else b""


def any_bytes(type_url: str, value: bytes) -> bytes:
    """A serialised `google.protobuf.Any`."""
    return _string(_ANY_TYPE_URL, type_url) + (field(_ANY_VALUE, value) if value else b"")


def sotw_resource_chunk(any_payload: bytes) -> bytes:
    """One entry of `DiscoveryResponse.resources`."""
    return field(_SOTW_RESOURCES, any_payload)


def delta_resource_chunk(name: str, version: str, any_payload: bytes) -> bytes:
    """One entry of `DeltaDiscoveryResponse.resources` (a `Resource` with name and version)."""
    resource = (
        _string(_RESOURCE_VERSION, version)
        + field(_RESOURCE_RESOURCE, any_payload)
        + _string(_RESOURCE_NAME, name)
    )
    return field(_DELTA_RESOURCES, resource)


def control_plane(identifier: str) -> bytes:
    """A serialised `ControlPlane` message, to be passed to the response encoders."""
    return _string(_CONTROL_PLANE_IDENTIFIER, identifier)


def sotw_response(
    version_info: str,
    type_url: str,
    nonce: str,
    resource_chunks: Iterable[bytes],
    control_plane_payload: bytes = b"",
) -> bytes:
    """A serialised `DiscoveryResponse`."""
    parts = [_string(_SOTW_VERSION_INFO, version_info)]
    parts.extend(resource_chunks)
    parts.append(_string(_SOTW_TYPE_URL, type_url))
    parts.append(_string(_SOTW_NONCE, nonce))
    if control_plane_payload:
        parts.append(field(_SOTW_CONTROL_PLANE, control_plane_payload))
    return b"".join(parts)


def delta_response(
    system_version_info: str,
    type_url: str,
    nonce: str,
    resource_chunks: Iterable[bytes],
    removed: Iterable[str],
    control_plane_payload: bytes = b"",
) -> bytes:
    """A serialised `DeltaDiscoveryResponse`."""
    parts = [_string(_DELTA_SYSTEM_VERSION_INFO, system_version_info)]
    parts.extend(resource_chunks)
    parts.append(_string(_DELTA_TYPE_URL, type_url))
    parts.append(_string(_DELTA_NONCE, nonce))
    # A removed name must be sent even if it is "" (a repeated string keeps empties).
    parts.extend(field(_DELTA_REMOVED_RESOURCES, name.encode()) for name in removed)
    if control_plane_payload:
        parts.append(field(_DELTA_CONTROL_PLANE, control_plane_payload))
    return b"".join(parts)
