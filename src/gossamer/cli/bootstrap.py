"""`gossamer bootstrap --grpc`: the bootstrap a proxyless gRPC client needs."""

from __future__ import annotations

import json
import socket
from typing import Any

import click

from gossamer.cli.client import CliError, default_state_dir


def xds_address(options: Any, xds: str | None) -> str:
    """The control plane's xDS address: flag, else the state dir's controlplane.json."""
    if xds:
        return xds
    state = getattr(options, "state_dir", None) or default_state_dir()
    try:
        return str(json.loads((state / "controlplane.json").read_text())["xds"])
    except (OSError, ValueError, KeyError):
        raise CliError(f"no running control plane found in {state}; pass --xds HOST:PORT") from None


def grpc_bootstrap(xds: str, node_id: str, namespace: str) -> dict[str, Any]:
    return {
        "xds_servers": [
            {
                "server_uri": xds,
                "channel_creds": [{"type": "insecure"}],
                "server_features": ["xds_v3"],
            }
        ],
        "node": {
            "id": node_id,
            "cluster": "proxyless",
            "metadata": {"gossamer": {"kind": "proxyless", "namespace": namespace}},
        },
    }


@click.command()
@click.option("--grpc", "grpc_", is_flag=True, required=True, help="For a proxyless gRPC client.")
@click.option("--xds", metavar="HOST:PORT", help="xDS address [default: the local control plane].")
@click.option("--id", "node_id", help="Node id [default: proxyless-<hostname>].")
@click.option("-n", "--namespace", default="default", show_default=True)
@click.pass_obj
def bootstrap(
    options: Any, grpc_: bool, xds: str | None, node_id: str | None, namespace: str
) -> None:
    """Print an xDS bootstrap for a proxyless gRPC client.

    \b
    gossamer bootstrap --grpc > bootstrap.json
    GRPC_XDS_BOOTSTRAP=bootstrap.json python client.py   # channel target: xds:///greeter
    """
    node = node_id or f"proxyless-{socket.gethostname()}"
    click.echo(json.dumps(grpc_bootstrap(xds_address(options, xds), node, namespace), indent=2))
