"""`gossamer controlplane run`."""

from __future__ import annotations

from pathlib import Path

import click
import uvloop

from gossamer.cli.client import CliError, default_state_dir


@click.group()
def controlplane() -> None:
    """Run the control plane."""


@controlplane.command("run")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the store, CA and tokens live [default: the global --state-dir].",
)
@click.option(
    "--store",
    "store_url",
    default="sqlite://",
    show_default=True,
    metavar="URL",
    help="sqlite:// (a file in the state dir), sqlite:///PATH, or memory:// (nothing kept).",
)
@click.option("--api-host", default="127.0.0.1", show_default=True, help="REST API and GUI host.")
@click.option("--api-port", default=5681, show_default=True, help="REST API and GUI port (0: any).")
@click.option("--xds-host", default="127.0.0.1", show_default=True, help="xDS server host.")
@click.option("--xds-port", default=5678, show_default=True, help="xDS (ADS) port (0: any).")
@click.option(
    "--read-access",
    type=click.Choice(["loopback", "token"]),
    default="loopback",
    show_default=True,
    help="loopback: reads from 127.0.0.0/8 need no token; token: every request needs one. "
    "Writes always need a token.",
)
@click.option(
    "--workload-grace",
    default=15.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a disconnected sidecar's workload stays registered (it may come back).",
)
@click.option(
    "--ca-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Issue workload certificates from this CA (PEM; a root, or an intermediate followed "
    "by its chain) instead of the root generated in STATE_DIR/ca.",
)
@click.option(
    "--ca-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The private key of --ca-cert (PEM, unencrypted).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Serve the API and xDS over TLS with this certificate (PEM chain).",
)
@click.option(
    "--tls-key", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Its key."
)
@click.option(
    "--tls-auto",
    is_flag=True,
    help="Serve the API and xDS over TLS with a certificate from the built-in CA (for "
    "localhost, 127.0.0.1 and this host); clients on this machine find the CA bundle "
    "through the state dir.",
)
@click.option(
    "--no-anonymous-proxyless",
    is_flag=True,
    help="Refuse proxyless gRPC clients that present no token (by default they may connect "
    "without one: a gRPC bootstrap has no place for it). Sidecars always need a token.",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.option(
    "--log-format", default="text", show_default=True, type=click.Choice(["text", "json"])
)
@click.pass_obj
def run(
    options: object,
    state_dir: Path | None,
    store_url: str,
    api_host: str,
    api_port: int,
    xds_host: str,
    xds_port: int,
    read_access: str,
    workload_grace: float,
    ca_cert: Path | None,
    ca_key: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_auto: bool,
    no_anonymous_proxyless: bool,
    log_level: str,
    log_format: str,
) -> None:
    """Run the control plane until SIGTERM or Ctrl-C.

    The admin token is generated at first start into STATE_DIR/admin.token (mode 0600);
    the CLI on this machine finds it, and the API address, through the state dir.
    """
    from gossamer.controlplane.memory import limit_arenas
    from gossamer.controlplane.server import ControlPlaneConfig, run_control_plane
    from gossamer.core.logs import configure

    configure(log_level, log_format)
    global_dir = getattr(options, "state_dir", None)
    config = ControlPlaneConfig(
        state_dir=(state_dir or global_dir or default_state_dir()).absolute(),
        store_url=store_url,
        api_host=api_host,
        api_port=api_port,
        xds_host=xds_host,
        xds_port=xds_port,
        read_access="token" if read_access == "token" else "loopback",
        workload_grace=workload_grace,
        ca_cert=ca_cert,
        ca_key=ca_key,
        anonymous_proxyless=not no_anonymous_proxyless,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_auto=tls_auto,
    )
    if (tls_cert is None) != (tls_key is None):
        raise CliError("--tls-cert and --tls-key go together")
    if (ca_cert is None) != (ca_key is None):
        raise CliError("--ca-cert and --ca-key go together")
    limit_arenas()  # before gRPC starts its threads
    try:
        uvloop.run(run_control_plane(config))
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
