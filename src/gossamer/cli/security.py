"""Security views and verbs: `gossamer get ca`, `gossamer get mtls-report`, `gossamer ca`."""

from __future__ import annotations

import json
from typing import Any

import click
import yaml

from gossamer.cli.output import print_table

CA_NAMES = frozenset({"ca", "certificates", "certs"})
REPORT_NAMES = frozenset({"mtls-report", "mtlsreport", "mtls"})


def _dump(body: Any, output: str) -> bool:
    if output in ("json", "yaml"):
        text = json.dumps(body, indent=2) if output == "json" else yaml.safe_dump(body)
        click.echo(text, nl=output == "json")
        return True
    return False


def _days(value: float) -> str:
    if value < 1:
        return f"{value * 24:.1f}h" if value * 24 >= 1 else f"{value * 86400:.0f}s"
    return f"{value:.0f}d"


def print_ca(body: dict[str, Any], output: str) -> None:
    if _dump(body, output):
        return
    if not body.get("enabled"):
        click.echo("This control plane runs no CA.")
        return
    click.echo(f"Trust domain: {body['trustDomain']}   certificates issued: {body['issued']}")
    rows = [["issuer", body["issuer"]["subject"], _days(body["issuer"]["daysToExpiry"])]]
    rows += [["root", r["subject"], _days(r["daysToExpiry"])] for r in body["roots"]]
    rows += [
        [f"leaf {leaf['node']}", leaf["identity"], _days(leaf["daysToExpiry"])]
        for leaf in body["leaves"]
    ]
    print_table(["WHAT", "SUBJECT / IDENTITY", "EXPIRES IN"], rows)


def print_mtls_report(body: dict[str, Any], output: str) -> None:
    if _dump(body, output):
        return
    items = body["items"]
    if not items:
        click.echo("No sidecars with inbound listeners.", err=True)
        return
    rows = []
    for item in items:
        plain = item["plaintextClients"]
        rows.append(
            [
                item["proxy"],
                item["mode"],
                "yes" if item["certificate"] else "no",
                str(item["tlsHandshakes"]),
                ", ".join(f"{peer} ({n})" for peer, n in sorted(plain.items())) or "-",
                str(sum(item["plaintextRejected"].values())),
            ]
        )
    print_table(["PROXY", "MODE", "CERT", "TLS", "PLAINTEXT CLIENTS", "REFUSED"], rows)
    if any(item["plaintextClients"] for item in items):
        click.echo("Clients above still send plaintext: mesh them before switching to STRICT.")


@click.group()
def ca() -> None:
    """The mesh certificate authority: status, trust bundle, root rotation."""


@ca.command("rotate")
@click.pass_obj
def rotate(options: Any) -> None:
    """Make a new root (admin). The old root stays trusted for the Mesh's mtls.rootOverlap,
    so certificates it issued keep working until every sidecar has renewed."""
    with options.client() as client:
        body = client.request("POST", "/api/v1/ca/rotate")
    click.echo(
        f"new root {body['subject']}; {body['trustedRoots']} roots trusted for "
        f"{body['overlapSeconds']:.0f}s"
    )


@ca.command("bundle")
@click.pass_obj
def bundle(options: Any) -> None:
    """Print the trust bundle (PEM): the roots sidecars trust now."""
    with options.client() as client:
        click.echo(client.get("/api/v1/ca/bundle"), nl=False)
