"""Tokens (stored hashed, revocable) and who may speak for which proxy."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import grpc
import pytest

from gossamer.controlplane.auth import TokenAuthority, TokenStore, XdsAuthenticator
from gossamer.controlplane.ca.service import Refused
from gossamer.controlplane.translate.node import ProxyNode


def test_tokens_are_stored_hashed_and_can_be_revoked(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    store = TokenStore(path)
    record, token = store.create("dataplane", service="benigno")
    assert token.startswith(f"gst_{record.id}_")
    text = path.read_text()
    assert token.split("_", 2)[2] not in text and record.hash in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = TokenStore(path)  # survives a restart
    principal = again.authenticate(token)
    assert principal is not None and (principal.role, principal.service) == ("dataplane", "benigno")
    assert again.authenticate(token[:-1] + "x") is None
    assert again.authenticate("gst_nope_x") is None and again.authenticate("junk") is None
    again.revoke(record.id)
    assert again.authenticate(token) is None
    assert json.loads(path.read_text())[0]["revoked"]


def test_bad_token_requests_are_refused_with_the_field() -> None:
    store = TokenStore(None)
    with pytest.raises(ValueError, match="service: a dataplane token needs --service"):
        store.create("dataplane")
    with pytest.raises(ValueError, match="role: must be one of"):
        store.create("root")
    with pytest.raises(ValueError, match="only dataplane tokens name a service"):
        store.create("reader", service="x")


def _node(kind: str = "sidecar", service: str = "benigno", ns: str = "default") -> ProxyNode:
    return ProxyNode(
        id="n",
        kind=kind,
        namespace=ns,
        service=service,
        service_account=service,  # type: ignore[arg-type]
    )


def test_a_sidecar_needs_a_token_for_its_own_identity() -> None:
    store = TokenStore(None)
    tokens = TokenAuthority("admin-secret", store)
    auth = XdsAuthenticator(tokens)
    _, benigno = store.create("dataplane", service="benigno")
    _, reader = store.create("reader")

    def check(node: ProxyNode, token: str | None) -> grpc.StatusCode | None:
        try:
            auth.check_node(node, {"authorization": f"Bearer {token}"} if token else {})
        except Refused as exc:
            return exc.code
        return None

    assert check(_node(), benigno) is None
    assert check(_node(), "admin-secret") is None
    assert check(_node(), None) == grpc.StatusCode.UNAUTHENTICATED
    assert check(_node(service="magnanimo"), benigno) == grpc.StatusCode.PERMISSION_DENIED
    assert check(_node(ns="other"), benigno) == grpc.StatusCode.PERMISSION_DENIED
    assert check(_node(), reader) == grpc.StatusCode.PERMISSION_DENIED


def test_proxyless_clients_are_anonymous_unless_refused() -> None:
    tokens = TokenAuthority("admin-secret", TokenStore(None))
    proxyless = _node(kind="proxyless", service="")
    XdsAuthenticator(tokens).check_node(proxyless, {})
    with pytest.raises(Refused) as refused:
        XdsAuthenticator(tokens, anonymous_proxyless=False).check_node(proxyless, {})
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(Refused):  # a token they do send must be valid
        XdsAuthenticator(tokens).check_node(proxyless, {"authorization": "Bearer nope"})
