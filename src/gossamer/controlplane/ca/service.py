"""The CSR endpoint: `gossamer.ca.v1.CertificateService` on the xDS port.

Two unary methods with JSON bodies (no generated code: the messages are three strings):

    Identity {"nodeId"}         -> {"spiffeId", "trustDomain"}   who the caller may be
    Sign     {"nodeId", "csr"}  -> {"certificateChain", "trustBundle", "notAfter"}
    Report   {"nodeId", "listeners": {name: {mode, plaintext, ...}}} -> {}
                                   TLS listener counters for `gossamer get mtls-report`

The caller authenticates as on its xDS stream (`authorization: Bearer <dataplane token>`
metadata); the owner (`CertificateOwner`, the mesh controller) decides which SPIFFE ID
that caller may hold and refuses anything else with PERMISSION_DENIED and the reason. The
signed certificate is also pushed to the node over SDS (Secret `default`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import grpc

from gossamer.controlplane.ca import CsrRejected, Issued

SERVICE = "gossamer.ca.v1.CertificateService"
IDENTITY = f"/{SERVICE}/Identity"
SIGN = f"/{SERVICE}/Sign"
REPORT = f"/{SERVICE}/Report"


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class CertificateOwner(Protocol):
    def csr_identity(self, node_id: str, metadata: Mapping[str, str]) -> str:
        """The SPIFFE ID this caller may get a certificate for; raises Refused."""

    def trust_domain(self) -> str: ...

    def sign_for(self, node_id: str, csr_pem: bytes, metadata: Mapping[str, str]) -> Issued:
        """Sign and remember (push) the certificate; raises Refused or CsrRejected."""

    def trust_bundle(self) -> bytes: ...

    def mtls_report(
        self, node_id: str, report: dict[str, Any], metadata: Mapping[str, str]
    ) -> None:
        """A sidecar's TLS listener counters (plaintext clients by address...)."""


def _metadata(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        out.setdefault(key.lower(), value if isinstance(value, str) else value.decode())
    return out


def _request(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "the request is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("nodeId"), str):
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "nodeId (a string) is required")
    return body


def handler(owner: CertificateOwner) -> grpc.GenericRpcHandler:
    async def identity(data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        try:
            body = _request(data)
            spiffe = owner.csr_identity(body["nodeId"], _metadata(context))
        except Refused as exc:
            await context.abort(exc.code, exc.message)
        return json.dumps({"spiffeId": spiffe, "trustDomain": owner.trust_domain()}).encode()

    async def sign(data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        try:
            body = _request(data)
            csr = body.get("csr")
            if not isinstance(csr, str):
                raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "csr (PEM text) is required")
            issued = owner.sign_for(body["nodeId"], csr.encode(), _metadata(context))
        except Refused as exc:
            await context.abort(exc.code, exc.message)
        except CsrRejected as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        return json.dumps(
            {
                "certificateChain": issued.chain_pem.decode(),
                "trustBundle": owner.trust_bundle().decode(),
                "notBefore": issued.not_before,
                "notAfter": issued.not_after,
                "spiffeId": issued.spiffe_id,
            }
        ).encode()

    async def report(data: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        try:
            body = _request(data)
            listeners = body.get("listeners")
            if not isinstance(listeners, dict):
                raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "listeners (an object) is required")
            owner.mtls_report(body["nodeId"], body, _metadata(context))
        except Refused as exc:
            await context.abort(exc.code, exc.message)
        return b"{}"

    def raw(x: bytes) -> bytes:
        return x

    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Identity": grpc.unary_unary_rpc_method_handler(
                identity, request_deserializer=raw, response_serializer=raw
            ),
            "Sign": grpc.unary_unary_rpc_method_handler(
                sign, request_deserializer=raw, response_serializer=raw
            ),
            "Report": grpc.unary_unary_rpc_method_handler(
                report, request_deserializer=raw, response_serializer=raw
            ),
        },
    )
