"""`gossamer check`: is the mesh healthy? Control plane, proxies, certificates."""

from __future__ import annotations

import sys
import time
from typing import Any

import click


@click.command()
@click.pass_obj
def check(options: Any) -> None:
    """Check the mesh: the control plane answers, proxies are connected and accept their
    config, and no CA root, issuer or workload certificate is expiring or expired.

    Exits 1 when something is wrong (warnings alone exit 0).
    """
    findings: list[tuple[str, str]] = []
    with options.client() as client:
        version = client.get("/api/v1/version")
        findings.append(("ok", f"control plane {version['version']} answers"))
        proxies = client.get("/api/v1/proxies")["items"]
        nacking = [p["name"] for p in proxies if p["state"] == "nacking"]
        if nacking:
            findings.append(("error", f"proxies rejecting their config: {', '.join(nacking)}"))
        findings.append(("ok", f"{len(proxies)} proxies known"))
        status = client.get("/api/v1/ca")
    problems = expiry_findings(status)
    findings += problems
    if status.get("enabled") and not problems:
        findings.append(
            ("ok", f"certificates: {len(status['leaves'])} workload certificates, none expiring")
        )
    for level, message in findings:
        click.echo(f"{level:8} {message}")
    if any(level == "error" for level, _ in findings):
        sys.exit(1)


def expiry_findings(status: dict[str, Any], now: float | None = None) -> list[tuple[str, str]]:
    """(level, message) about certificate expiry, for `gossamer check`."""
    now = time.time() if now is None else now
    out: list[tuple[str, str]] = []
    if not status.get("enabled"):
        return [("warning", "the control plane runs no CA: no mTLS")]
    for what, days in [("issuer", status["issuer"]["daysToExpiry"])] + [
        (f"root {r['subject']}", r["daysToExpiry"]) for r in status["roots"]
    ]:
        if days <= 0:
            out.append(("error", f"CA {what} has expired"))
        elif days < 30:
            out.append(("warning", f"CA {what} expires in {days:.1f} days: rotate it"))
    for leaf in status["leaves"]:
        left = leaf["notAfter"] - now
        if left <= 0:
            out.append(("error", f"certificate of {leaf['node']} has expired"))
        elif left < leaf["lifetimeSeconds"] / 4:
            out.append(
                (
                    "warning",
                    f"certificate of {leaf['node']} expires in {left:.0f}s and was not "
                    "renewed at half-life (is the sidecar reaching the control plane?)",
                )
            )
    return out
