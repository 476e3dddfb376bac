"""`gossamer tap` and `gossamer top`: live requests, from the control plane's tap API."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import click

from gossamer.cli.client import Client
from gossamer.cli.output import is_terminal, print_table

TAP_MAX = 100_000  # the API's bounds: by default tap runs until Ctrl-C, within them
TAP_DURATION = 3600.0


def _who(end: dict[str, Any] | None) -> str:
    if not end:
        return "-"
    identity = end.get("identity")
    workload = end.get("workload")
    if identity and workload:
        return f"{identity} ({workload})"
    return str(identity or workload or end.get("address") or "-")


def tap_line(r: dict[str, Any]) -> str:
    """One request: time, direction, method, path, status, latency, source -> destination."""
    clock = datetime.fromtimestamp(float(r.get("time") or 0)).strftime("%H:%M:%S.%f")[:-3]
    direction = "in " if r.get("direction") == "inbound" else "out"
    status = r.get("status") or "-"
    flags = f" {r['flags']}" if r.get("flags") else ""
    line = (
        f"{clock} {direction} {r.get('method', '-')} {r.get('authority', '')}{r.get('path', '')}"
        f" {status}{flags} {float(r.get('latencyMs') or 0):.1f}ms"
        f" {_who(r.get('source'))} -> {_who(r.get('destination'))}"
    )
    headers = r.get("headers")
    if headers:
        line += " " + " ".join(f"{k}={v}" for k, v in sorted(headers.items()))
    return line


def _stream(
    options: Any,
    target: str,
    namespace: str,
    path: str | None,
    method: str | None,
    show_headers: bool,
    limit: int,
    duration: float,
) -> Iterator[dict[str, Any]]:
    with Client(options.target()) as client:
        yield from client.ndjson(
            "/api/v1/tap",
            target=target,
            namespace=namespace,
            path=path,
            method=method,
            showHeaders="true" if show_headers else None,
            limit=limit,
            duration=duration,
        )


_filters = [
    click.option("-n", "--namespace", default="default", show_default=True),
    click.option("--path", metavar="PREFIX", help="Only requests whose path starts so."),
    click.option("--method", metavar="M", help="Only this HTTP method."),
]


def _with_filters(f: Any) -> Any:
    for option in reversed(_filters):
        f = option(f)
    return f


@click.command()
@click.argument("target", metavar="svc/NAME|workload/NAME")
@_with_filters
@click.option("--show-headers", is_flag=True, help="Show header values (redacted by default).")
@click.option("--max", "limit", type=int, default=TAP_MAX, help="Stop after N requests.")
@click.option("--duration", type=float, default=TAP_DURATION, help="Stop after S seconds.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
def tap(
    options: Any,
    target: str,
    namespace: str,
    path: str | None,
    method: str | None,
    show_headers: bool,
    limit: int,
    duration: float,
    output: str,
) -> None:
    """Watch the requests of a service or workload, live, as its sidecars complete them.

    One line per request: time, direction (in: to the target; out: from it), method,
    authority and path, status (and response flags), latency, source -> destination
    identity (workload). Header values are redacted unless --show-headers; bodies are
    never shown. Runs until Ctrl-C, --max or --duration.

    \b
    Examples:
      gossamer tap svc/benigno
      gossamer tap svc/benigno --path /hello --method GET --max 10
      gossamer tap workload/magnanimo --show-headers --duration 30 -o json
    """
    end: dict[str, Any] | None = None
    try:
        for r in _stream(options, target, namespace, path, method, show_headers, limit, duration):
            if r.get("type") == "end":
                end = r
                if output == "json":
                    click.echo(json.dumps(r))
                continue
            click.echo(json.dumps(r) if output == "json" else tap_line(r))
    except KeyboardInterrupt:
        return
    if end is not None and output == "text":
        note = f"{end.get('count', 0)} requests ({end.get('reason')})"
        if end.get("dropped"):
            note += f", {end['dropped']} dropped: the reader fell behind"
        for problem in end.get("errors") or ():
            note += f"\nsidecar: {problem}"
        click.echo(note, err=True)


# --- top ---------------------------------------------------------------------------------


@dataclass
class Row:
    direction: str
    method: str
    path: str
    count: int = 0
    success: int = 0
    latencies: list[float] = field(default_factory=list)
    last: float = 0.0

    def add(self, r: dict[str, Any]) -> None:
        self.count += 1
        status = int(r.get("status") or 0)
        if 0 < status < 500:
            self.success += 1
        if len(self.latencies) < 10_000:
            self.latencies.append(float(r.get("latencyMs") or 0.0))
        self.last = float(r.get("time") or 0.0)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


class Top:
    """Requests aggregated by (direction, method, path), busiest first."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], Row] = {}
        self.total = 0

    def add(self, r: dict[str, Any]) -> None:
        direction = str(r.get("direction") or "")
        method = str(r.get("method") or "")
        path = str(r.get("path") or "").split("?", 1)[0]
        key = (direction, method, path)
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= 10_000:
                return  # bounded: the busiest paths arrive early and often
            row = self.rows[key] = Row(direction, method, path)
        row.add(r)
        self.total += 1

    def busiest(self, n: int) -> list[Row]:
        return sorted(self.rows.values(), key=lambda r: (-r.count, r.path))[:n]

    def table(self, n: int) -> tuple[list[str], list[list[str]]]:
        headers = ["PATH", "METHOD", "DIR", "COUNT", "SUCCESS", "P50", "P95", "MAX"]
        rows = [
            [
                r.path,
                r.method,
                "in" if r.direction == "inbound" else "out",
                str(r.count),
                f"{100.0 * r.success / r.count:.1f}%",
                f"{_quantile(r.latencies, 0.5):.1f}ms",
                f"{_quantile(r.latencies, 0.95):.1f}ms",
                f"{max(r.latencies, default=0.0):.1f}ms",
            ]
            for r in self.busiest(n)
        ]
        return headers, rows

    def to_json(self, n: int) -> dict[str, Any]:
        return {
            "total": self.total,
            "items": [
                {
                    "path": r.path,
                    "method": r.method,
                    "direction": r.direction,
                    "count": r.count,
                    "successRate": r.success / r.count,
                    "latencyMs": {
                        "p50": _quantile(r.latencies, 0.5),
                        "p95": _quantile(r.latencies, 0.95),
                        "max": max(r.latencies, default=0.0),
                    },
                }
                for r in self.busiest(n)
            ],
        }


def _rich_table(top: Top, n: int, title: str) -> Any:
    from rich.table import Table

    headers, rows = top.table(n)
    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for h in headers:
        table.add_column(h, justify="left" if h in ("PATH", "METHOD", "DIR") else "right")
    for row in rows:
        table.add_row(*row)
    return table


@click.command()
@click.argument("target", metavar="[svc/NAME|workload/NAME]", required=False, default="all")
@_with_filters
@click.option("--rows", type=int, default=20, show_default=True, help="Paths shown.")
@click.option("--once", is_flag=True, help="Watch --duration seconds, print one table, exit.")
@click.option(
    "--duration",
    type=float,
    default=None,
    help="Stop after S seconds [default: 5 with --once or when not on a terminal, else 3600].",
)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def top(
    options: Any,
    target: str,
    namespace: str,
    path: str | None,
    method: str | None,
    rows: int,
    once: bool,
    duration: float | None,
    output: str,
) -> None:
    """The busiest paths of a service or workload (default: every sidecar), live.

    Counts, success rate (status below 500) and latency (p50, p95, max) per path,
    method and direction, from the requests its sidecars complete (tap). On a terminal
    the table refreshes until Ctrl-C; with --once (or piped) it watches for --duration
    seconds and prints one table.

    \b
    Examples:
      gossamer top svc/benigno
      gossamer top --once --duration 10
      gossamer top workload/magnanimo --path /hw2 --once -o json
    """
    live = is_terminal() and not once and output == "table"
    if duration is None:
        duration = TAP_DURATION if live else 5.0
    board = Top()
    title = f"top {target}"
    records = _stream(options, target, namespace, path, method, False, TAP_MAX, duration)
    try:
        if live:
            from rich.live import Live

            with Live(_rich_table(board, rows, title), refresh_per_second=2) as view:
                shown = time.monotonic()
                for r in records:
                    if r.get("type") == "request":
                        board.add(r)
                    if time.monotonic() - shown > 0.5:
                        view.update(_rich_table(board, rows, title))
                        shown = time.monotonic()
                view.update(_rich_table(board, rows, title))
            return
        for r in records:
            if r.get("type") == "request":
                board.add(r)
    except KeyboardInterrupt:
        if live:
            return
    if output == "json":
        click.echo(json.dumps(board.to_json(rows), indent=2))
        return
    headers, table_rows = board.table(rows)
    print_table(headers, table_rows)
    if not table_rows:
        click.echo(f"no requests in {duration:g} s", err=True)
