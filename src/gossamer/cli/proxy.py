"""`gossamer proxy run`: the sidecar alone (for an app started some other way).

Flags are checked and resolved here, then the process execs a lean interpreter running
gossamer.proxy.sidecar (same PID): the CLI's own imports (click, httpx, pydantic) would
otherwise cost the sidecar ~28 MiB for nothing.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import click

from gossamer.cli.client import CliError, default_state_dir


@click.group()
def proxy() -> None:
    """Run the sidecar proxy."""


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 2))


@proxy.command("run")
@click.option(
    "--xds",
    metavar="HOST:PORT",
    help="Control plane xDS address [default: from STATE_DIR/controlplane.json].",
)
@click.option(
    "--xds-ca",
    envvar="GOSSAMER_XDS_CA",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Connect to xDS over TLS, verifying the control plane with this CA bundle "
    "[default: the state dir's, when the control plane serves TLS].",
)
@click.option(
    "--token",
    envvar="GOSSAMER_PROXY_TOKEN",
    help="Data-plane token for the xDS stream and certificate requests [default: one minted "
    "with the CLI's API token, e.g. the state dir's admin token].",
)
@click.option(
    "--xds-protocol",
    default="delta",
    show_default=True,
    type=click.Choice(["delta", "sotw"]),
    help="ADS variant: incremental (delta) or state of the world.",
)
@click.option(
    "--id",
    "node_id",
    metavar="NODE_ID",
    help="xDS node id [default: the workload, else SERVICE-HOST-PID].",
)
@click.option("--workload", metavar="NAME", help="Workload name [default: the node id].")
@click.option("--namespace", default="default", show_default=True, metavar="NS")
@click.option("--service", metavar="NAME", help="The service this workload belongs to.")
@click.option(
    "--label", "labels", multiple=True, metavar="K=V", help="Workload label (repeatable)."
)
@click.option(
    "--zone",
    default="",
    metavar="ZONE",
    help="The workload's zone: callers prefer endpoints in their own zone "
    "(LoadBalancerPolicy localityAware).",
)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    metavar="IP",
    help="Address inbound listeners bind to.",
)
@click.option(
    "--inbound",
    multiple=True,
    metavar="SVCPORT:APPPORT:LISTENPORT[:PROTOCOL]",
    help="Inbound port: service port, app port, sidecar listener, protocol "
    "(http|tcp|grpc|http2; default http). Repeatable.",
)
@click.option(
    "--http-proxy-port",
    type=int,
    metavar="PORT",
    help="Outbound HTTP proxy listener (apps use HTTP_PROXY).",
)
@click.option(
    "--outbound-tls-port",
    type=int,
    metavar="PORT",
    help="Outbound TLS listener for hosts on port 443: routes the apps' own TLS by its "
    "server name (SNI) to ExternalServices of protocol tls, without terminating it.",
)
@click.option(
    "--outbound",
    multiple=True,
    metavar="SVC:SVCPORT=LISTENPORT",
    help="Explicit outbound listener (repeatable).",
)
@click.option(
    "--admin-port",
    default=0,
    show_default=True,
    metavar="PORT",
    help="Admin listener port (0: pick one).",
)
@click.option(
    "--gateway",
    metavar="NAME",
    help="Run as an ingress gateway serving the Gateway resource NAME (in --namespace).",
)
@click.option(
    "--admin-host",
    default="127.0.0.1",
    show_default=True,
    metavar="IP",
    help="Admin listener address.",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write {"admin": "HOST:PORT", "pid": N} here once the admin listener is bound.',
)
@click.option(
    "--workers",
    type=int,
    default=_default_workers(),
    show_default="one per core, up to 2",
    help="Data-path processes.",
)
@click.option(
    "--drain-timeout",
    type=float,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM: how long in-flight requests may take.",
)
@click.option(
    "--request-header-timeout",
    type=float,
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="A request head must arrive within this (408 otherwise).",
)
@click.option(
    "--request-metrics",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="Per-request metrics (golden series by route, peer and endpoint). Off: listener, "
    "cluster and flag counters only.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A static config (Envoy v3 resources in YAML/JSON) instead of a control plane.",
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
    xds: str | None,
    xds_ca: Path | None,
    token: str | None,
    xds_protocol: str,
    node_id: str | None,
    workload: str | None,
    namespace: str,
    service: str | None,
    labels: tuple[str, ...],
    zone: str,
    address: str,
    inbound: tuple[str, ...],
    http_proxy_port: int | None,
    outbound_tls_port: int | None,
    outbound: tuple[str, ...],
    admin_port: int,
    gateway: str | None,
    admin_host: str,
    ready_file: Path | None,
    workers: int,
    drain_timeout: float,
    request_header_timeout: float,
    request_metrics: str,
    config_file: Path | None,
    log_level: str,
    log_format: str,
) -> None:
    """Run the sidecar until SIGTERM: listeners, routing and balancing from the control
    plane (xDS), or from a static --config file.

    \b
    Examples:
      gossamer proxy run --service benigno --inbound 5000:8080:15006 --http-proxy-port 15001
      gossamer proxy run --config sidecar.yaml --admin-port 9901
    """
    from gossamer.proxy.node import (
        NodeInfo,
        OptionError,
        parse_inbound,
        parse_label,
        parse_outbound,
    )
    from gossamer.proxy.sidecar import OPTIONS_ENV, SidecarOptions

    try:
        inbound_ports = tuple(parse_inbound(p) for p in inbound)
        outbound_ports = tuple(parse_outbound(p) for p in outbound)
        label_map = dict(parse_label(v) for v in labels)
    except OptionError as exc:
        raise click.BadParameter(str(exc)) from None
    if workers < 1:
        raise click.BadParameter("--workers must be at least 1")
    if config_file is None and not xds:
        state_dir = getattr(options, "state_dir", None) or default_state_dir()
        try:
            xds = json.loads((state_dir / "controlplane.json").read_text())["xds"]
        except (OSError, ValueError, KeyError):
            raise CliError(
                f"no control plane found in {state_dir} (is `gossamer controlplane run` running?); "
                "pass --xds HOST:PORT, or --config FILE for a static config"
            ) from None
    if config_file is not None and not config_file.is_file():
        raise CliError(f"--config {config_file}: no such file")
    if service and "app" not in label_map:
        label_map["app"] = service  # how the registry implies a Service from workloads
    # Unique by default (two replicas of a service on one host must not collide); a
    # launcher such as `gossamer run` passes stable names.
    node_id = node_id or workload or f"{service or 'sidecar'}-{socket.gethostname()}-{os.getpid()}"
    node = NodeInfo(
        node_id=node_id,
        workload=workload or node_id,
        namespace=namespace,
        service=service or "",
        labels=label_map,
        address=address,
        inbound=inbound_ports,
        http_proxy_port=http_proxy_port,
        outbound_tls_port=outbound_tls_port,
        outbound=outbound_ports,
        gateway=gateway or "",
        zone=zone,
    )
    if config_file is None and xds_ca is None:
        state_dir = getattr(options, "state_dir", None) or default_state_dir()
        try:
            discovered = json.loads((state_dir / "controlplane.json").read_text())
            if discovered.get("xdsTls") and discovered.get("caBundle"):
                xds_ca = Path(discovered["caBundle"])
        except (OSError, ValueError):
            pass
    if config_file is None and token is None:
        from gossamer.cli.security import dataplane_token

        account = service or gateway or node.workload
        token = dataplane_token(options, account, namespace, node_id)
    sidecar = SidecarOptions(
        node=node,
        xds=xds,
        xds_ca=str(xds_ca.absolute()) if xds_ca else None,
        token=token,
        xds_protocol=xds_protocol,
        config_file=str(config_file.absolute()) if config_file else None,
        admin_host=admin_host,
        admin_port=admin_port,
        ready_file=str(ready_file.absolute()) if ready_file else None,
        workers=workers,
        drain_timeout=drain_timeout,
        header_timeout=request_header_timeout,
        request_metrics=request_metrics == "on",
        log_level=log_level,
        log_format=log_format,
    )
    env = {**os.environ, OPTIONS_ENV: sidecar.to_json()}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "gossamer.proxy.sidecar"], env)
