"""TLS on the data path: SSL contexts from SDS secrets, the peer's SPIFFE ID, resumption.

- Contexts are built when a config is applied (never per connection) and cached by the
  secrets' content, so an unchanged certificate costs nothing on a config swap; a renewed
  one gives new contexts, which new connections use (existing ones keep theirs).
- Peers are verified by the trust bundle and by SPIFFE ID (URI SAN), never by hostname:
  `check_hostname` is off and the ID is checked right after the handshake.
- TLS 1.3 preferred, 1.2 allowed with ECDHE AEAD suites only.
- Client-side session resumption: `ResumingContext` hands OpenSSL the last session
  ticket of the endpoint (keyed by the server name we dial it with), so most new
  connections between two sidecars skip the certificate exchange.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import ssl
import tempfile
from collections.abc import Mapping
from typing import Any

from gossamer.proxy.config import model as m

SPIFFE_PREFIX = "spiffe://"
HANDSHAKE_TIMEOUT = 10.0
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
MAX_SESSIONS = 4096


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


def san_allowed(identity: str | None, allowed: tuple[str, ...]) -> bool:
    """Exact IDs, or prefixes written with a trailing `*`; nothing listed: any ID."""
    if identity is None:
        return False
    if not allowed:
        return True
    for pattern in allowed:
        if pattern.endswith("*"):
            if identity.startswith(pattern[:-1]):
                return True
        elif identity == pattern:
            return True
    return False


class ResumingContext(ssl.SSLContext):
    """A client context that resumes the last session with the same server name.

    asyncio/uvloop create the SSLObject through `wrap_bio` with no session argument; the
    session is looked up here by the server name the connection was opened with.
    """

    sessions: dict[str, ssl.SSLSession]

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and not server_side and isinstance(server_hostname, str):
            session = self.sessions.get(server_hostname)
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)

    def remember(self, server_hostname: str, ssl_object: Any) -> None:
        session = ssl_object.session
        if session is None or not session.has_ticket:
            return
        if len(self.sessions) >= MAX_SESSIONS and server_hostname not in self.sessions:
            self.sessions.clear()  # bounded; they come back with the next handshakes
        self.sessions[server_hostname] = session


class ServerTls:
    """What a TLS listener accepts with: its current context, and plaintext or not."""

    __slots__ = ("allow_plaintext", "context", "verify_sans")

    def __init__(
        self, context: ssl.SSLContext, allow_plaintext: bool, verify_sans: tuple[str, ...]
    ) -> None:
        self.context = context
        self.allow_plaintext = allow_plaintext
        self.verify_sans = verify_sans


class ClientTls:
    """How a cluster originates TLS: context, server name, accepted peer IDs."""

    __slots__ = ("context", "sni", "verify_sans")

    def __init__(self, context: ResumingContext, sni: str, verify_sans: tuple[str, ...]) -> None:
        self.context = context
        self.sni = sni
        self.verify_sans = verify_sans

    def server_hostname(self, address: str, port: int) -> str:
        # One name (one resumable session) per endpoint unless an SNI is configured.
        if self.sni:
            return self.sni
        return f"p{port}.{address.replace(':', '-')}.gossamer.internal"


def _load_chain(ctx: ssl.SSLContext, chain: bytes, key: bytes) -> None:
    # The ssl module loads keys from files only: a private directory, removed at once.
    with tempfile.TemporaryDirectory(prefix="gossamer-tls-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path, key_path = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        with open(os.open(cert_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(chain)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(key)
        ctx.load_cert_chain(cert_path, key_path)


def _common(ctx: ssl.SSLContext, trust: bytes | None, alpn: tuple[str, ...]) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    if trust:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=trust.decode())
        # A provided intermediate may be the trust anchor itself.
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if alpn:
        ctx.set_alpn_protocols(list(alpn))


class TlsError(ValueError):
    pass


class TlsFactory:
    """Builds and caches the contexts of one process's config (by secret content)."""

    def __init__(self) -> None:
        self._server: dict[bytes, ssl.SSLContext] = {}
        self._client: dict[bytes, ResumingContext] = {}

    @staticmethod
    def _key(*parts: object) -> bytes:
        h = hashlib.sha256()
        for p in parts:
            h.update(repr(p).encode() if not isinstance(p, bytes) else p)
            h.update(b"\0")
        return h.digest()

    def server(self, tls: m.DownstreamTls, secrets: Mapping[str, m.Secret]) -> ServerTls:
        cert = secrets.get(tls.certificate_secret)
        if cert is None or not cert.certificate_chain or not cert.private_key:
            raise TlsError(f"waiting for certificate {tls.certificate_secret!r}")
        trust = secrets.get(tls.trust_secret) if tls.trust_secret else None
        if tls.trust_secret and (trust is None or not trust.trusted_ca):
            raise TlsError(f"waiting for trust bundle {tls.trust_secret!r}")
        bundle = trust.trusted_ca if trust else b""
        key = self._key(cert.certificate_chain, cert.private_key, bundle, tls.alpn)
        ctx = self._server.get(key)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            _common(ctx, bundle or None, tls.alpn)
            _load_chain(ctx, cert.certificate_chain, cert.private_key)
            self._server[key] = ctx
        return ServerTls(ctx, tls.allow_plaintext, tls.verify_san_uris)

    def client(self, tls: m.UpstreamTls, secrets: Mapping[str, m.Secret]) -> ClientTls:
        cert = secrets.get(tls.certificate_secret) if tls.certificate_secret else None
        if tls.certificate_secret and (
            cert is None or not cert.certificate_chain or not cert.private_key
        ):
            raise TlsError(f"waiting for certificate {tls.certificate_secret!r}")
        trust = secrets.get(tls.trust_secret) if tls.trust_secret else None
        if tls.trust_secret and (trust is None or not trust.trusted_ca):
            raise TlsError(f"waiting for trust bundle {tls.trust_secret!r}")
        chain = cert.certificate_chain if cert else b""
        private = cert.private_key if cert else b""
        bundle = trust.trusted_ca if trust else b""
        key = self._key(chain, private, bundle, tls.alpn)
        ctx = self._client.get(key)
        if ctx is None:
            ctx = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.sessions = {}
            ctx.check_hostname = False  # identities are SPIFFE IDs, checked after handshake
            if bundle:
                _common(ctx, bundle, tls.alpn)
            else:
                _common(ctx, None, tls.alpn)
                ctx.load_default_certs()
                ctx.verify_mode = ssl.CERT_REQUIRED
                if tls.verify_hostname:
                    ctx.check_hostname = True
            if cert is not None:
                _load_chain(ctx, chain, private)
            self._client[key] = ctx
        return ClientTls(ctx, tls.sni, tls.verify_san_uris)

    def retain(self, server: list[ssl.SSLContext], client: list[ResumingContext]) -> None:
        """Forget contexts the current config does not use (bounded memory)."""
        self._server = {k: v for k, v in self._server.items() if any(v is s for s in server)}
        self._client = {k: v for k, v in self._client.items() if any(v is c for c in client)}


def handshake_failed(exc: BaseException) -> bool:
    """Whether an error from opening a TLS connection is a TLS failure (vs a connect one)."""
    with contextlib.suppress(Exception):
        return isinstance(exc, ssl.SSLError | ssl.CertificateError)
    return False
