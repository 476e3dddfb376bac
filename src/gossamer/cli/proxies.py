"""`gossamer get proxies` and `gossamer describe proxy NAME`: the data plane as the
control plane sees it (connected streams, versions ACKed, NACKs with the proxy's error)."""

from __future__ import annotations

import time
from typing import Any

import click

from gossamer.cli.output import print_structured, print_table

PROXY_NAMES = frozenset({"proxy", "proxies", "px", "dataplane", "dataplanes", "dp"})


def _since(ts: float | None) -> str:
    if not ts:
        return "-"
    seconds = int(time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _short(version: str | None) -> str:
    return (version or "-")[:8]


def print_proxies(body: dict[str, Any], output: str) -> None:
    items = body["items"]
    if print_structured(items, output):
        return
    if not items:
        click.echo("No proxies connected.", err=True)
        return
    rows = []
    for p in items:
        types = p["types"]
        rows.append(
            [
                p["name"],
                p["kind"],
                f"{p['namespace']}/{p['workload']}" if p["workload"] else "-",
                p["state"].upper() if p["state"] == "nacking" else p["state"],
                *(_short((types.get(t) or {}).get("acked")) for t in ("CDS", "LDS", "RDS")),
                _since(p["connectedSince"]),
                (p["nack"] or {}).get("error", "")[:80],
            ]
        )
    headers = ["NAME", "KIND", "WORKLOAD", "STATE", "CDS", "LDS", "RDS", "AGE", "NACK"]
    print_table(headers, rows)


ENDPOINT_NAMES = ("endpoints", "endpoint", "ep")


def print_endpoints(body: dict[str, Any], output: str) -> None:
    """Service endpoints and what the sidecars' active health checks say of them."""
    items = body["items"]
    if print_structured(items, output):
        return
    if not items:
        click.echo("No endpoints.", err=True)
        return
    rows = []
    for e in items:
        checks = e["checks"]
        failing = sorted(n for n, r in checks.items() if r == "fail")
        detail = f"{len(checks) - len(failing)}/{len(checks)} pass" if checks else "-"
        if failing:
            detail += " (failing for " + ", ".join(failing) + ")"
        rows.append(
            [
                f"{e['namespace']}/{e['service']}:{e['port']}",
                e["address"],
                e["workload"] or "-",
                e["health"].upper() if e["health"] == "failing" else e["health"],
                detail,
            ]
        )
    print_table(["SERVICE", "ENDPOINT", "WORKLOAD", "HEALTH", "CHECKS"], rows)


def describe_proxy(p: dict[str, Any]) -> None:
    click.echo(f"Name:       {p['name']}")
    click.echo(f"Kind:       {p['kind']} ({p['userAgent'] or 'unknown agent'}, {p['streamKind']})")
    workload = f"{p['namespace']}/{p['workload']}" if p["workload"] else "-"
    click.echo(f"Workload:   {workload}   service: {p['service'] or '-'}")
    click.echo(f"State:      {p['state']}   streams: {p['streams']}   peer: {p['peer'] or '-'}")
    click.echo(f"Connected:  {_since(p['connectedSince'])} ago")
    click.echo("Config:")
    for t, status in sorted(p["types"].items()):
        line = f"  {t}: sent {_short(status['sent'])}, acked {_short(status['acked'])}"
        if status.get("pending"):
            line += " (waiting for ACK)"
        click.echo(line)
        if status.get("nack"):
            n = status["nack"]
            click.echo(f"    NACK of {_short(n['version'])}: {n['error']}")
    if p.get("nack"):
        click.echo(f"Rejected config: {p['nack']['error']}")
