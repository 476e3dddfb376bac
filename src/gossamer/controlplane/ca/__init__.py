"""The mesh's certificate authority: a root (or a provided root/intermediate) issuing SVIDs.

- Keys are ECDSA P-256: small certificates and cheap handshakes.
- A root is generated at first start in STATE_DIR/ca (key 0600), or given with
  `gossamer controlplane run --ca-cert/--ca-key` (a root, or an intermediate whose file
  also holds its chain up to the root).
- Leaves are X.509 SVIDs: the only SAN is the URI `spiffe://TD/ns/NS/sa/SA`; they are
  issued from a CSR whose key stays with the sidecar, after the caller's identity was
  checked (see `sign`).
- `rotate()` makes a new root; the old one stays in the trust bundle for the overlap
  period, so leaves issued by either verify until every sidecar has renewed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gossamer.core.logs import get_logger
from gossamer.core.pki import key_pem, make_csr, new_key

__all__ = ["CertificateAuthority", "CsrRejected", "Issued", "key_pem", "make_csr", "new_key"]

log = get_logger("controlplane.ca")

ROOT_LIFETIME = 10 * 365 * 86400.0
# Leaves start a little in the past: clocks of sidecars on other hosts may lag.
BACKDATE = 60.0
MIN_LIFETIME = 60.0


class CsrRejected(ValueError):
    """A CSR the CA will not sign; the message says why (it goes back to the caller)."""


@dataclass(frozen=True)
class TrustedRoot:
    pem: bytes
    until: float | None  # None: the current root; else trusted until then (overlap)


@dataclass(frozen=True)
class Issued:
    chain_pem: bytes  # leaf, then intermediates (not the root)
    serial: int
    not_before: float
    not_after: float
    spiffe_id: str


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def make_root(
    trust_domain: str, now: float | None = None, lifetime: float = ROOT_LIFETIME
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = time.time() if now is None else now
    key = new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gossamer"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"gossamer root {trust_domain} {int(now)}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now - BACKDATE))
        .not_valid_after(_utc(now + lifetime))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def csr_spiffe_id(csr_pem: bytes) -> str:
    """The one SPIFFE ID a CSR asks for, after checking its signature."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CsrRejected(f"not a PEM certificate signing request: {exc}") from None
    if not csr.is_signature_valid:
        raise CsrRejected("the CSR's signature does not verify")
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CsrRejected("the CSR has no subjectAltName") from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if len(uris) != 1 or len(list(san)) != 1:
        raise CsrRejected("the CSR must ask for exactly one name: a spiffe:// URI")
    return str(uris[0])


class CertificateAuthority:
    """Issues SVIDs; keeps its root(s) under `directory` unless given a CA."""

    def __init__(
        self,
        directory: Path,
        trust_domain: str,
        ca_cert: Path | None = None,
        ca_key: Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.directory = directory
        self.trust_domain = trust_domain
        self._clock = clock or time.time
        self.provided = ca_cert is not None
        self.issued = 0
        self._trusted: list[TrustedRoot] = []
        if ca_cert is not None:
            if ca_key is None:
                raise ValueError("--ca-cert needs --ca-key")
            self._load_provided(ca_cert, ca_key)
        else:
            self._load_or_create()

    def now(self) -> float:
        return float(self._clock())

    # --- roots -------------------------------------------------------------------------

    def _load_provided(self, cert_path: Path, key_path: Path) -> None:
        certs = x509.load_pem_x509_certificates(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | _rsa_type()):
            raise ValueError(f"{key_path}: an EC or RSA private key is expected")
        issuer = certs[0]
        if issuer.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise ValueError(f"{key_path} is not the key of the first certificate in {cert_path}")
        self.issuer = issuer
        self.issuer_key = key
        # Intermediates travel with each leaf; self-signed ones are the trust anchors (an
        # intermediate given alone is itself the anchor: sidecars allow partial chains).
        self.intermediates = [c for c in certs if c.issuer != c.subject]
        roots = [c for c in certs if c.issuer == c.subject] or [issuer]
        self._trusted = [TrustedRoot(_pem(c), None) for c in roots]

    def _load_or_create(self) -> None:
        cert_path, key_path = self.directory / "root.crt", self.directory / "root.key"
        if cert_path.exists() and key_path.exists():
            if key_path.stat().st_mode & 0o077:
                key_path.chmod(0o600)
            self.issuer = x509.load_pem_x509_certificate(cert_path.read_bytes())
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(loaded, ec.EllipticCurvePrivateKey)
            self.issuer_key = loaded
        else:
            self.issuer, self.issuer_key = make_root(self.trust_domain, self.now())
            _write_private(key_path, key_pem(self.issuer_key))
            cert_path.write_bytes(_pem(self.issuer))
            log.info("CA root generated", subject=self.issuer.subject.rfc4514_string())
        self.intermediates = []
        self._trusted = [TrustedRoot(_pem(self.issuer), None)]
        previous = self.directory / "previous.json"
        if previous.exists():
            for item in json.loads(previous.read_text()):
                self._trusted.append(TrustedRoot(item["pem"].encode(), float(item["until"])))

    def rotate(self, overlap: float) -> x509.Certificate:
        """A new root; the old ones stay trusted for `overlap` seconds."""
        if self.provided:
            raise ValueError(
                "the CA was given with --ca-cert: rotate it by restarting with a new one"
            )
        now = self.now()
        old = [
            TrustedRoot(t.pem, now + overlap if t.until is None else t.until)
            for t in self._trusted
            if t.until is None or t.until > now
        ]
        self.issuer, self.issuer_key = make_root(self.trust_domain, now)
        _write_private(self.directory / "root.key", key_pem(self.issuer_key))
        (self.directory / "root.crt").write_bytes(_pem(self.issuer))
        (self.directory / "previous.json").write_text(
            json.dumps([{"pem": t.pem.decode(), "until": t.until} for t in old], indent=2)
        )
        self._trusted = [TrustedRoot(_pem(self.issuer), None), *old]
        log.info("CA root rotated", overlap_seconds=overlap, trusted=len(self._trusted))
        return self.issuer

    def trust_bundle(self) -> bytes:
        """PEM of every root trusted now (the current one first)."""
        now = self.now()
        return b"".join(t.pem for t in self._trusted if t.until is None or t.until > now)

    def next_bundle_change(self) -> float | None:
        """When an overlapping root stops being trusted (the bundle must be pushed again)."""
        ends = [t.until for t in self._trusted if t.until is not None and t.until > self.now()]
        return min(ends) if ends else None

    def roots(self) -> list[x509.Certificate]:
        return [x509.load_pem_x509_certificate(t.pem) for t in self._trusted]

    # --- leaves ------------------------------------------------------------------------

    def sign(self, csr_pem: bytes, allowed_id: str, lifetime: float) -> Issued:
        """Sign a CSR asking for exactly `allowed_id` (the caller's authenticated identity)."""
        requested = csr_spiffe_id(csr_pem)
        if requested != allowed_id:
            raise CsrRejected(
                f"the CSR asks for {requested}, but the caller may only be {allowed_id}"
            )
        if not requested.startswith(f"spiffe://{self.trust_domain}/"):
            raise CsrRejected(f"{requested} is outside the trust domain {self.trust_domain}")
        csr = x509.load_pem_x509_csr(csr_pem)
        now = self.now()
        lifetime = max(MIN_LIFETIME, lifetime)
        not_after = now + lifetime
        backdate = min(BACKDATE, lifetime / 10)
        issuer_end = self.issuer.not_valid_after_utc.timestamp()
        not_after = min(not_after, issuer_end)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gossamer")]))
            .issuer_name(self.issuer.subject)
            .public_key(csr.public_key())
            .serial_number(serial)
            .not_valid_before(_utc(now - backdate))
            .not_valid_after(_utc(not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=True,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(requested)]),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.issuer_key.public_key()  # type: ignore[arg-type]
                ),
                critical=False,
            )
            .sign(self.issuer_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        self.issued += 1
        chain = _pem(cert) + b"".join(_pem(c) for c in self.intermediates)
        return Issued(chain, serial, now - backdate, not_after, requested)

    def issue_server_cert(
        self, dns_names: list[str], ips: list[str], lifetime: float
    ) -> tuple[bytes, bytes]:
        """A TLS server certificate for the control plane's own API/xDS (--tls-auto)."""
        import ipaddress

        key = new_key()
        now = self.now()
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gossamer control plane")])
            )
            .issuer_name(self.issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_utc(now - BACKDATE))
            .not_valid_after(_utc(min(now + lifetime, self.issuer.not_valid_after_utc.timestamp())))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(self.issuer_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        chain = _pem(cert) + b"".join(_pem(c) for c in self.intermediates)
        return chain, key_pem(key)


def _rsa_type() -> type:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.RSAPrivateKey


def expiry(pem: bytes) -> float:
    """notAfter of the first certificate of a PEM blob, as a Unix time."""
    return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
