"""TLS on the data path: the verified peer's SPIFFE ID, read once per connection."""

from __future__ import annotations

from typing import Any

SPIFFE_PREFIX = "spiffe://"


def spiffe_ids(cert: Any) -> tuple[str, ...]:
    """The SPIFFE IDs among a peer certificate's URI SANs (`SSLObject.getpeercert()`)."""
    if not cert:
        return ()
    return tuple(
        value
        for kind, value in cert.get("subjectAltName", ())
        if kind == "URI" and value.startswith(SPIFFE_PREFIX)
    )


def peer_identity(transport: Any) -> str | None:
    """The verified SPIFFE ID of a TLS connection's peer; None on plaintext connections.

    Only certificates the handshake verified against the trust bundle get here
    (`getpeercert()` returns an empty dict for unverified ones), so the ID is trustworthy.
    """
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    ids = spiffe_ids(ssl_object.getpeercert())
    return ids[0] if len(ids) == 1 else None
