"""`gossamer dashboard`: where the control plane's web GUI is."""

from __future__ import annotations

import webbrowser
from typing import Any

import click

from gossamer.cli.client import Client, CliError


@click.command()
@click.option("--open", "open_", is_flag=True, help="Also open it in a browser.")
@click.pass_obj
def dashboard(options: Any, open_: bool) -> None:
    """Print (or open) the address of the control plane's dashboard."""
    target = options.target()
    with Client(target) as client:
        client.get("/healthz")  # fails with a clear message if it is not running
    url = target.api + "/"
    click.echo(url)
    if open_ and not webbrowser.open(url):
        raise CliError("no browser could be started here; open the address above")
