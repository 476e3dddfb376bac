"""`/api/v1/ca`: the trust bundle, issued certificates, root rotation (admin)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Response

from gossamer.controlplane.controller import MeshController
from gossamer.controlplane.http.api import HttpError

DAY = 86400.0


def ca_status(controller: MeshController) -> dict[str, Any]:
    """Expiry of roots, issuer and leaves (no key or certificate bodies)."""
    ca = controller.ca
    if ca is None:
        return {"enabled": False}
    now = time.time()
    roots = [
        {
            "subject": r.subject.rfc4514_string(),
            "notAfter": r.not_valid_after_utc.timestamp(),
            "daysToExpiry": round((r.not_valid_after_utc.timestamp() - now) / DAY, 3),
        }
        for r in ca.roots()
    ]
    issuer_end = ca.issuer.not_valid_after_utc.timestamp()
    leaves = [
        {
            "node": node_id,
            "identity": issued.spiffe_id,
            "notAfter": issued.not_after,
            "daysToExpiry": round((issued.not_after - now) / DAY, 5),
            "lifetimeSeconds": round(issued.not_after - issued.not_before),
        }
        for node_id, issued in sorted(controller.certificates.items())
    ]
    return {
        "enabled": True,
        "trustDomain": controller.trust_domain(),
        "provided": ca.provided,
        "issuer": {
            "subject": ca.issuer.subject.rfc4514_string(),
            "notAfter": issuer_end,
            "daysToExpiry": round((issuer_end - now) / DAY, 3),
        },
        "roots": roots,
        "issued": ca.issued,
        "leaves": leaves,
    }


def ca_metrics(controller: MeshController) -> str:
    """Prometheus text: days to expiry of roots, issuer and leaves; certificates issued."""
    status = ca_status(controller)
    if not status.get("enabled"):
        return ""
    lines = [
        "# HELP gossamer_ca_root_days_to_expiry Days until each trusted root expires.",
        "# TYPE gossamer_ca_root_days_to_expiry gauge",
    ]
    for root in status["roots"]:
        subject = root["subject"].replace('"', "'")
        lines.append(
            f'gossamer_ca_root_days_to_expiry{{subject="{subject}"}} {root["daysToExpiry"]}'
        )
    lines += [
        "# HELP gossamer_ca_issuer_days_to_expiry Days until the issuing certificate expires.",
        "# TYPE gossamer_ca_issuer_days_to_expiry gauge",
        f"gossamer_ca_issuer_days_to_expiry {status['issuer']['daysToExpiry']}",
        "# HELP gossamer_ca_leaf_days_to_expiry Days until each proxy's certificate expires.",
        "# TYPE gossamer_ca_leaf_days_to_expiry gauge",
    ]
    for leaf in status["leaves"]:
        lines.append(
            f'gossamer_ca_leaf_days_to_expiry{{node="{leaf["node"]}",'
            f'identity="{leaf["identity"]}"}} {leaf["daysToExpiry"]}'
        )
    lines += [
        "# HELP gossamer_ca_certificates_issued_total Certificates signed since start.",
        "# TYPE gossamer_ca_certificates_issued_total counter",
        f"gossamer_ca_certificates_issued_total {status['issued']}",
    ]
    return "\n".join(lines) + "\n"


def ca_routes(controller: MeshController) -> Callable[[FastAPI], None]:
    def add(app: FastAPI) -> None:
        @app.get("/api/v1/ca", tags=["ca"])
        async def status() -> dict[str, Any]:
            return ca_status(controller)

        @app.get("/api/v1/ca/bundle", tags=["ca"])
        async def bundle() -> Response:
            if controller.ca is None:
                raise HttpError(404, "this control plane runs no CA")
            return Response(controller.ca.trust_bundle(), media_type="application/x-pem-file")

        @app.get("/metrics/ca", tags=["ca"])
        async def metrics() -> Response:
            return Response(ca_metrics(controller), media_type="text/plain; version=0.0.4")

        @app.get("/api/v1/mtls-report", tags=["ca"])
        async def mtls_report() -> dict[str, Any]:
            return {"kind": "MtlsReport", "items": controller.mtls_overview(), "time": time.time()}

        @app.post("/api/v1/ca/rotate", tags=["ca"])
        async def rotate() -> dict[str, Any]:
            try:
                return controller.rotate_root()
            except ValueError as exc:
                raise HttpError(409, str(exc)) from None

    return add
