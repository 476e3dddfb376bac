"""The CA: roots, SVIDs from CSRs, identity checks, rotation with overlap."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gossamer.controlplane.ca import CertificateAuthority, CsrRejected, make_root
from gossamer.core.pki import key_pem, make_csr, new_key

TD = "gossamer.local"
BENIGNO = f"spiffe://{TD}/ns/default/sa/benigno"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_root_is_generated_once_with_a_private_key_file(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca", TD)
    key_file = tmp_path / "ca" / "root.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = CertificateAuthority(tmp_path / "ca", TD)
    assert again.issuer == ca.issuer
    assert ca.issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_leaf_carries_only_the_spiffe_id_and_verifies_against_the_bundle(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca", TD)
    key = new_key()
    issued = ca.sign(make_csr(key, BENIGNO), BENIGNO, 3600)
    leaf = x509.load_pem_x509_certificate(issued.chain_pem)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [BENIGNO]
    assert len(list(san)) == 1
    assert 3500 < issued.not_after - ca.now() <= 3600
    # The key in the certificate is the sidecar's: the CA never saw the private key.
    assert leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # An OpenSSL client context built from the bundle accepts it.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=ca.trust_bundle().decode())
    chain = tmp_path / "chain.pem"
    chain.write_bytes(issued.chain_pem)
    keyfile = tmp_path / "key.pem"
    keyfile.write_bytes(key_pem(key))
    ctx.load_cert_chain(chain, keyfile)


def test_a_csr_for_another_identity_is_refused(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca", TD)
    csr = make_csr(new_key(), f"spiffe://{TD}/ns/default/sa/thief")
    with pytest.raises(
        CsrRejected, match=r"may only be spiffe://gossamer\.local/ns/default/sa/benigno"
    ):
        ca.sign(csr, BENIGNO, 3600)
    with pytest.raises(CsrRejected, match="not a PEM"):
        ca.sign(b"junk", BENIGNO, 3600)


def test_lifetime_has_a_floor_of_one_minute(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca", TD)
    issued = ca.sign(make_csr(new_key(), BENIGNO), BENIGNO, 1)
    assert issued.not_after - ca.now() == pytest.approx(60, abs=1)


def test_rotation_keeps_the_old_root_for_the_overlap(tmp_path: Path) -> None:
    clock = Clock()
    ca = CertificateAuthority(tmp_path / "ca", TD, clock=clock)
    old = ca.issuer
    ca.rotate(overlap=600)
    assert ca.issuer != old
    assert len(ca.roots()) == 2 and ca.next_bundle_change() == clock.now + 600
    # Restarted during the overlap: still two roots.
    assert len(CertificateAuthority(tmp_path / "ca", TD, clock=clock).roots()) == 2
    clock.now += 601
    assert ca.trust_bundle().count(b"BEGIN CERTIFICATE") == 1
    assert ca.next_bundle_change() is None


def test_a_provided_intermediate_issues_and_travels_in_the_chain(tmp_path: Path) -> None:
    root, root_key = make_root(TD)
    # An intermediate signed by the root: issue it as a "leaf" CA by hand.
    inter_key = new_key()
    from cryptography.hazmat.primitives import hashes

    inter = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "inter")]))
        .issuer_name(root.subject)
        .public_key(inter_key.public_key())
        .serial_number(7)
        .not_valid_before(root.not_valid_before_utc)
        .not_valid_after(root.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert_file, key_file = tmp_path / "ca.crt", tmp_path / "ca.key"
    cert_file.write_bytes(inter.public_bytes(pem) + root.public_bytes(pem))
    key_file.write_bytes(key_pem(inter_key))
    ca = CertificateAuthority(tmp_path / "unused", TD, cert_file, key_file)
    issued = ca.sign(make_csr(new_key(), BENIGNO), BENIGNO, 3600)
    chain = x509.load_pem_x509_certificates(issued.chain_pem)
    assert [c.subject for c in chain][1] == inter.subject
    assert ca.trust_bundle() == root.public_bytes(pem)
    with pytest.raises(ValueError, match="--ca-cert"):
        ca.rotate(60)
    with pytest.raises(ValueError, match="not the key"):
        CertificateAuthority(tmp_path / "unused", TD, cert_file, tmp_path / "other.key")


@pytest.fixture(autouse=True)
def _other_key(tmp_path: Path) -> None:
    (tmp_path / "other.key").write_bytes(key_pem(new_key()))
