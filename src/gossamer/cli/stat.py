"""`gossamer stat`: golden metrics (success rate, requests/s, latency percentiles) per
service, workload or edge, as the control plane aggregates them from the sidecars."""

from __future__ import annotations

from typing import Any

import click

from gossamer.cli.output import print_structured, print_table

KINDS = {
    "svc": "service",
    "service": "service",
    "services": "service",
    "wl": "workload",
    "workload": "workload",
    "workloads": "workload",
    "edge": "edge",
    "edges": "edge",
}
WINDOWS = ("10s", "1m", "10m")


def parse_target(target: str | None, name: str | None) -> tuple[str, str | None]:
    """`svc`, `svc NAME`, `svc/NAME`, `edge SRC>DST` -> (kind, name)."""
    if target is None:
        return "service", name
    kind_text, slash, rest = target.partition("/")
    kind = KINDS.get(kind_text.lower())
    if kind is None:
        raise click.BadParameter(
            f"{target!r}: expected svc, workload or edge (optionally /NAME)", param_hint="TARGET"
        )
    if slash and name:
        raise click.BadParameter(f"give the name once: {target!r} or {name!r}")
    return kind, (rest or None) if slash else name


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.2f}%"


def _ms(latency: dict[str, float] | None, key: str) -> str:
    return "-" if not latency else f"{latency[key]:g}ms"


def _row(name: str, item: dict[str, Any]) -> list[str]:
    lat = item.get("latencyMs")
    return [
        name,
        _pct(item.get("successRate")),
        f"{item['rps']:.1f}",
        _ms(lat, "p50"),
        _ms(lat, "p95"),
        _ms(lat, "p99"),
    ]


def print_stats(kind: str, body: dict[str, Any], output: str) -> None:
    if print_structured(body, output):
        return
    items = body["items"]
    if not items:
        click.echo(f"No traffic seen for {kind}s in the last {body['window']}.", err=True)
        return
    rows = []
    for item in items:
        if kind == "edge":
            src, dst = item["source"], item["destination"]
            name = f"{src['namespace']}/{src['name']} > {dst['namespace']}/{dst['name']}"
        else:
            name = f"{item['namespace']}/{item['name']}"
            if kind == "workload" and item.get("version") not in (None, "unknown"):
                name += f" ({item['version']})"
        rows.append(_row(name, item))
        versions = item.get("versions") or {}
        if list(versions) == ["unknown"]:
            versions = {}  # no version label on its workloads: nothing to break down
        for version, v in versions.items():
            share = f" {v['rps'] / item['rps'] * 100:.0f}%" if item["rps"] else ""
            rows.append(
                [f"  version {version}{share}", _pct(v["successRate"]), f"{v['rps']:.1f}"]
                + ["-"] * 3
            )
    print_table(["NAME", "SUCCESS", "RPS", "P50", "P95", "P99"], rows)


@click.command()
@click.argument("target", required=False, metavar="[svc|workload|edge][/NAME]")
@click.argument("name", required=False)
@click.option("-n", "--namespace", help="Only this namespace.")
@click.option(
    "--window",
    type=click.Choice(WINDOWS),
    default="1m",
    show_default=True,
    help="How far back the numbers look.",
)
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_obj
def stat(
    options: Any,
    target: str | None,
    name: str | None,
    namespace: str | None,
    window: str,
    output: str,
) -> None:
    """Golden metrics per service (with a row per version), workload or edge: success
    rate (responses that are not 5xx), requests per second and p50/p95/p99 latency, over
    the last 10s, 1m or 10m. The control plane scrapes every sidecar every 2 s; a service's
    numbers are what its own sidecars served (inbound), an edge's what the caller saw.

    \b
    Examples:
      gossamer stat                        # every service, last minute
      gossamer stat svc benigno            # one service, a row per version
      gossamer stat svc/benigno -o json
      gossamer stat workload --window 10s
      gossamer stat edge 'magnanimo>benigno'
    """
    kind, name = parse_target(target, name)
    with options.client() as client:
        body = client.get("/api/v1/stats", kind=kind, name=name, namespace=namespace, window=window)
    print_stats(kind, body, output)
