"""The sidecar's certificate renewal timing (on a fake clock) and key pairing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossamer.controlplane.ca import CertificateAuthority
from gossamer.core.pki import key_pem, make_csr, new_key
from gossamer.proxy.certs import CertManager, Held, RenewalTimer, new_key_and_csr
from gossamer.proxy.config import model as m

ID = "spiffe://gossamer.local/ns/default/sa/benigno"


def test_renewal_at_half_life_from_when_it_arrived() -> None:
    timer = RenewalTimer()
    assert timer.after_issue(1000.0, 1060.0) == 1030.0
    assert timer.after_issue(0.0, 86400.0) == 43200.0
    # notBefore is backdated (clock skew): it does not pull the renewal earlier.
    assert timer.after_issue(1006.0, 1060.0) == 1033.0


def test_failures_back_off_but_never_past_a_quarter_of_what_is_left() -> None:
    timer = RenewalTimer(first_retry=0.2, max_retry=10.0)
    waits = [timer.after_failure(0.0, n, None) for n in range(1, 9)]
    assert waits[:4] == pytest.approx([0.2, 0.4, 0.8, 1.6]) and waits[-1] == 10.0
    # 8 s left on the certificate: retry within 2 s whatever the backoff says.
    assert timer.after_failure(100.0, 8, not_after=108.0) == 102.0
    # Expired already: keep trying at the backoff.
    assert timer.after_failure(100.0, 8, not_after=90.0) == 110.0


def _issue(ca: CertificateAuthority, manager: CertManager) -> tuple[bytes, bytes]:
    key = new_key()
    issued = ca.sign(make_csr(key, ID), ID, 3600)
    manager.keys[issued.chain_pem] = (key_pem(key), issued.not_after)
    return issued.chain_pem, key_pem(key)


def test_a_pushed_certificate_gets_the_key_it_was_made_for(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, "gossamer.local")
    manager = CertManager("127.0.0.1:1", "n")
    chain1, key1 = _issue(ca, manager)
    chain2, key2 = _issue(ca, manager)
    out = manager.complete({"default": m.Secret("default", chain1)})
    assert out["default"].private_key == key1
    out = manager.complete({"default": m.Secret("default", chain2)})
    assert out["default"].private_key == key2
    # A chain we hold no key for is not used (never a mismatched pair).
    stranger = ca.sign(make_csr(new_key(), ID), ID, 3600).chain_pem
    assert "default" not in manager.complete({"default": m.Secret("default", stranger)})


def test_our_own_certificate_stands_in_when_the_control_plane_forgot_it(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, "gossamer.local")
    manager = CertManager("127.0.0.1:1", "n")
    chain, key = _issue(ca, manager)
    manager.held = Held(chain, key, ca.trust_bundle(), 0.0, 2e9, ID)
    out = manager.complete({})
    assert out["default"].certificate_chain == chain and out["default"].private_key == key
    assert out["ROOTCA"].trusted_ca == ca.trust_bundle()


def test_the_key_and_csr_come_from_a_child_process() -> None:
    import asyncio

    from gossamer.controlplane.ca import csr_spiffe_id

    key, csr = asyncio.run(new_key_and_csr(ID))
    assert key.startswith(b"-----BEGIN PRIVATE KEY") and csr_spiffe_id(csr) == ID
