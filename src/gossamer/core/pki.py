"""Key pairs and CSRs, shared by the sidecar (which makes them) and the CA (which signs)."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def new_key() -> ec.EllipticCurvePrivateKey:
    """ECDSA P-256: small certificates, cheap handshakes."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_csr(key: ec.EllipticCurvePrivateKey, spiffe_id: str) -> bytes:
    """A CSR for `spiffe_id` (what a sidecar sends; its key never leaves it)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def public_key_id(public_key: object) -> bytes:
    """A public key's DER bytes: pairs a certificate with the private key it was made for."""
    return public_key.public_bytes(  # type: ignore[attr-defined,no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_key_id(chain_pem: bytes) -> bytes:
    return public_key_id(x509.load_pem_x509_certificate(chain_pem).public_key())


def validity(chain_pem: bytes) -> tuple[float, float]:
    """(notBefore, notAfter) of the first certificate, as Unix times."""
    cert = x509.load_pem_x509_certificate(chain_pem)
    return cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()


def main(argv: list[str]) -> int:
    """`python -m gossamer.core.pki csr SPIFFE_ID`: a new key and its CSR as JSON on stdout.

    The sidecar runs this as a short-lived child, so that the cryptography library (about
    13 MiB) never stays in the long-running proxy; the key goes back over the pipe only.
    """
    import json
    import sys

    if len(argv) != 2 or argv[0] != "csr":
        print("usage: python -m gossamer.core.pki csr SPIFFE_ID", file=sys.stderr)
        return 2
    key = new_key()
    out = {"key": key_pem(key).decode(), "csr": make_csr(key, argv[1]).decode()}
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
