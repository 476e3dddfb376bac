"""`gossamer run --service S [...] -- CMD ARGS...`: an app with its sidecar."""

from __future__ import annotations

import secrets
import sys
from typing import Any

import click

from gossamer.cli.bootstrap import xds_address
from gossamer.cli.client import CliError


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--service", required=True, help="The service this workload belongs to.")
@click.option("--name", help="Workload name [default: SERVICE-<random>].")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option(
    "--label", "labels", multiple=True, metavar="K=V", help="Workload label (repeatable)."
)
@click.option(
    "--port",
    type=int,
    default=8080,
    show_default=True,
    help="The service port, as callers name it (benigno:5000).",
)
@click.option(
    "--protocol", type=click.Choice(["http", "tcp", "grpc"]), default="http", show_default=True
)
@click.option(
    "--app-port", type=int, default=0, help="Where the app listens ($PORT) [default: any free]."
)
@click.option(
    "--outbound",
    multiple=True,
    metavar="SVC[:SVCPORT]=PORT",
    help="Also expose SVC on 127.0.0.1:PORT for apps that cannot use HTTP_PROXY.",
)
@click.option(
    "--admin-port", type=int, default=0, help="The sidecar's admin port [default: any free]."
)
@click.option("--xds", metavar="HOST:PORT", help="xDS address [default: the local control plane].")
@click.option(
    "--token",
    envvar="GOSSAMER_PROXY_TOKEN",
    help="Data-plane token for the sidecar's xDS stream and certificate [default: minted "
    "with the state dir's admin token].",
)
@click.option(
    "--workers", type=int, default=1, show_default=True, help="Sidecar data-path processes."
)
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def run(
    options: Any,
    service: str,
    name: str | None,
    namespace: str,
    labels: tuple[str, ...],
    port: int,
    protocol: str,
    app_port: int,
    outbound: tuple[str, ...],
    admin_port: int,
    xds: str | None,
    token: str | None,
    workers: int,
    command: tuple[str, ...],
) -> None:
    """Start an app and its sidecar as one unit (universal mode, any language).

    The app gets PORT and HOST to listen on, and HTTP_PROXY pointing at its sidecar, so
    `http://benigno:5000/hello` reaches the benigno service through the mesh. The
    workload is registered with the control plane (labels: app=SERVICE plus --label)
    while it runs. Exits with the app's exit code.

    \b
    Example:
      gossamer run --service benigno --port 5000 --label version=v2 -- python app.py
    """
    from gossamer.universal.run import Runner, RunSpec

    label_map = {"app": service}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--label {item!r}: expected KEY=VALUE")
        label_map[key] = value
    specs = []
    for item in outbound:
        target, sep, listen = item.partition("=")
        svc, _, svc_port = target.partition(":")
        if not sep or not listen.isdigit():
            raise CliError(f"--outbound {item!r}: expected SVC[:SVCPORT]=PORT")
        specs.append(f"{svc}:{svc_port or port}={listen}")
    spec = RunSpec(
        service=service,
        command=list(command),
        xds=xds_address(options, xds),
        name=name or f"{service}-{secrets.token_hex(3)}",
        namespace=namespace,
        labels=label_map,
        port=port,
        protocol=protocol,
        app_port=app_port,
        outbound=specs,
        admin_port=admin_port,
        workers=workers,
        token=token,
    )
    sys.exit(Runner(spec).run())
