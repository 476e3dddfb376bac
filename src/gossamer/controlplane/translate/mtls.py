"""Mesh mTLS as xDS: TLS contexts that name SDS secrets, and the secrets themselves.

Every sidecar gets two secrets over ADS: `default` (its certificate chain; the private
key never leaves the sidecar, which pairs the chain with the key it generated) and
`ROOTCA` (the trust bundle). Inbound listeners terminate mTLS (STRICT: TLS only;
PERMISSIVE: a `tls` and a `raw_buffer` filter chain; DISABLED: plaintext); clusters
originate it to sidecar-backed endpoints only (`transport_socket_matches` on the
endpoint metadata `envoy.transport_socket_match: {mtls: true}`), verifying the peer's
SPIFFE ID among the service's workload identities, never a hostname.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2
from envoy.extensions.transport_sockets.raw_buffer.v3 import raw_buffer_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import struct_pb2

from gossamer.controlplane.translate import envoy as e
from gossamer.core.spiffe import spiffe_id

CERT_SECRET = "default"
TRUST_SECRET = "ROOTCA"
SOCKET_MATCH = "envoy.transport_socket_match"
# ALPN between sidecars: says which data path the connection carries; http/1.1 last so a
# plain TLS client (curl --cert) can talk to an HTTP inbound too.
ALPN_HTTP = "gossamer/h1"
ALPN_TCP = "gossamer/tcp"

Mode = Literal["STRICT", "PERMISSIVE", "DISABLED"]


@dataclass(frozen=True)
class Mtls:
    mode: Mode
    trust_domain: str

    @property
    def enabled(self) -> bool:
        return self.mode != "DISABLED"


def _sds(name: str) -> secret_pb2.SdsSecretConfig:
    return secret_pb2.SdsSecretConfig(name=name, sds_config=e.ads())


def _common(alpn: Iterable[str], sans: Iterable[tuple[str, str]]) -> common_pb2.CommonTlsContext:
    params = common_pb2.TlsParameters(
        tls_minimum_protocol_version=common_pb2.TlsParameters.TLSv1_2,
        tls_maximum_protocol_version=common_pb2.TlsParameters.TLSv1_3,
    )
    ctx = tls_pb2.CommonTlsContext(
        tls_params=params,
        tls_certificate_sds_secret_configs=[_sds(CERT_SECRET)],
        alpn_protocols=list(alpn),
    )
    cvc = ctx.combined_validation_context
    cvc.validation_context_sds_secret_config.CopyFrom(_sds(TRUST_SECRET))
    for kind, value in sans:
        matcher = (
            string_pb2.StringMatcher(prefix=value)
            if kind == "prefix"
            else string_pb2.StringMatcher(exact=value)
        )
        cvc.default_validation_context.match_typed_subject_alt_names.append(
            common_pb2.SubjectAltNameMatcher(
                san_type=common_pb2.SubjectAltNameMatcher.URI, matcher=matcher
            )
        )
    return ctx


def downstream_socket(mtls: Mtls, alpn: str) -> base_pb2.TransportSocket:
    """An inbound listener's mTLS: client certificates from the trust domain required."""
    ctx = tls_pb2.DownstreamTlsContext(
        common_tls_context=_common(
            [alpn, "http/1.1"] if alpn == ALPN_HTTP else [alpn],
            [("prefix", f"spiffe://{mtls.trust_domain}/")],
        )
    )
    ctx.require_client_certificate.value = True
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=e.pack(ctx))


def secure_inbound(listener: listener_pb2.Listener, mtls: Mtls, alpn: str) -> None:
    """Make an inbound listener (one plaintext chain) STRICT or PERMISSIVE, in place."""
    if not mtls.enabled:
        return
    chain = listener.filter_chains[0]
    plain = listener_components_pb2.FilterChain()
    plain.CopyFrom(chain)
    chain.transport_socket.CopyFrom(downstream_socket(mtls, alpn))
    if mtls.mode == "PERMISSIVE":
        chain.filter_chain_match.transport_protocol = "tls"
        plain.filter_chain_match.transport_protocol = "raw_buffer"
        plain.transport_socket.CopyFrom(
            base_pb2.TransportSocket(
                name="envoy.transport_sockets.raw_buffer",
                typed_config=e.pack(raw_buffer_pb2.RawBuffer()),
            )
        )
        listener.filter_chains.append(plain)
        listener.listener_filters.append(
            listener_components_pb2.ListenerFilter(
                name="envoy.filters.listener.tls_inspector",
                typed_config=e.pack(tls_inspector_pb2.TlsInspector()),
            )
        )


def upstream_socket(sans: Iterable[str], alpn: str) -> base_pb2.TransportSocket:
    ctx = tls_pb2.UpstreamTlsContext(
        common_tls_context=_common([alpn], [("exact", s) for s in sans])
    )
    return base_pb2.TransportSocket(name="envoy.transport_sockets.tls", typed_config=e.pack(ctx))


def secure_cluster(
    cluster: cluster_pb2.Cluster, mtls: Mtls, identities: Iterable[str], alpn: str
) -> None:
    """Originate mTLS to the cluster's sidecar-backed endpoints, in place."""
    if not mtls.enabled:
        return
    match = struct_pb2.Struct()
    match.update({"mtls": True})
    cluster.transport_socket_matches.append(
        cluster_pb2.Cluster.TransportSocketMatch(
            name="mtls", match=match, transport_socket=upstream_socket(identities, alpn)
        )
    )


def workload_identity(trust_domain: str, namespace: str, service_account: str) -> str:
    return spiffe_id(trust_domain, namespace, service_account)


def certificate_secret(chain_pem: bytes) -> secret_pb2.Secret:
    """The sidecar's certificate chain; its private key stays with the sidecar."""
    secret = secret_pb2.Secret(name=CERT_SECRET)
    secret.tls_certificate.certificate_chain.inline_bytes = chain_pem
    return secret


def trust_secret(bundle_pem: bytes) -> secret_pb2.Secret:
    secret = secret_pb2.Secret(name=TRUST_SECRET)
    secret.validation_context.trusted_ca.inline_bytes = bundle_pem
    return secret
