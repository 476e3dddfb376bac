"""Security views and verbs: `gossamer get ca`, `gossamer get mtls-report`, `gossamer ca`."""

from __future__ import annotations

from typing import Any

import click

from gossamer.cli.output import print_structured, print_table

CA_NAMES = frozenset({"ca", "certificates", "certs"})
REPORT_NAMES = frozenset({"mtls-report", "mtlsreport", "mtls"})


def _days(value: float) -> str:
    if value < 1:
        return f"{value * 24:.1f}h" if value * 24 >= 1 else f"{value * 86400:.0f}s"
    return f"{value:.0f}d"


def print_ca(body: dict[str, Any], output: str) -> None:
    if print_structured(body, output):
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
    if print_structured(body, output):
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


def dataplane_token(options: Any, account: str, namespace: str, node_id: str) -> str | None:
    """A data-plane token for a proxy, minted with the API token this CLI has (the state
    dir's admin token in universal mode). An API token that is itself a data-plane token
    is used as it is; no API token, or no control plane: None (the stream will say why)."""
    from gossamer.cli.client import ApiError, Client, CliError

    target = options.target()
    if not target.token:
        return None
    try:
        with Client(target) as client:
            body = client.request(
                "POST",
                "/api/v1/tokens",
                json={
                    "role": "dataplane",
                    "service": account,
                    "namespace": namespace,
                    "name": f"proxy {node_id}",
                },
            )
    except ApiError as exc:
        if exc.status == 403:
            return str(target.token)
        raise CliError(
            f"could not get a data-plane token for {namespace}/{account}: {exc}"
        ) from None
    except CliError:
        return None
    return str(body["token"])


@click.group()
def token() -> None:
    """API and data-plane tokens (admin). Tokens are stored hashed: shown once, at creation.

    \b
    Roles:
      admin      everything
      reader     API reads only (writes get 403)
      dataplane  one workload identity: its xDS stream and certificate, nothing else
    """


@token.command("create")
@click.option("--service", help="The service (account) a dataplane token may act as.")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option(
    "--role",
    type=click.Choice(["dataplane", "reader", "admin"]),
    help="[default: dataplane with --service, else reader]",
)
@click.option("--name", help="A label for `token list`.")
@click.pass_obj
def create_token(
    options: Any, service: str | None, namespace: str, role: str | None, name: str | None
) -> None:
    """Create a token and print it (the only time it is shown).

    \b
    gossamer token create --service benigno      # for benigno's sidecar (--token, or
                                                 # GOSSAMER_PROXY_TOKEN)
    gossamer token create --role reader          # read-only API access
    """
    role = role or ("dataplane" if service else "reader")
    with options.client() as client:
        body = client.request(
            "POST",
            "/api/v1/tokens",
            json={"role": role, "service": service or "", "namespace": namespace, "name": name},
        )
    click.echo(body["token"])
    click.echo(f"token {body['id']} ({body['role']}) created; it is not shown again", err=True)


@token.command("list")
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_obj
def list_tokens(options: Any, output: str) -> None:
    """Tokens: id, role, identity, created, revoked (never the token itself)."""
    with options.client() as client:
        body = client.get("/api/v1/tokens")
    if print_structured(body["items"], output):
        return
    rows = [
        [
            t["id"],
            t["role"],
            f"{t['namespace']}/{t['service']}" if t["service"] else "-",
            t["name"],
            "revoked" if t["revoked"] else "active",
        ]
        for t in body["items"]
    ]
    print_table(["ID", "ROLE", "IDENTITY", "NAME", "STATE"], rows)


@token.command("revoke")
@click.argument("token_id")
@click.pass_obj
def revoke_token(options: Any, token_id: str) -> None:
    """Revoke a token by id: API calls and new xDS streams with it are refused."""
    with options.client() as client:
        client.request("DELETE", f"/api/v1/tokens/{token_id}")
    click.echo(f"token {token_id} revoked")
