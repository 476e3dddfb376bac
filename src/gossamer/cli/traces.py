"""`gossamer traces [TRACE_ID]`: the built-in collector's recent traces, or one of them."""

from __future__ import annotations

import time
from typing import Any

import click

from gossamer.cli.output import print_structured, print_table


def _ms(us: float) -> str:
    return f"{us / 1000:.1f}ms"


@click.command("traces")
@click.argument("trace_id", required=False)
@click.option("--service", help="Only traces that went through this service.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@click.pass_obj
def traces(
    options: Any, trace_id: str | None, service: str | None, limit: int, output: str
) -> None:
    """Recent traces from the control plane's built-in collector, newest first; with
    TRACE_ID, that trace's spans as a tree (who called whom, when, how long).

    \b
    Tracing is a Mesh setting (off until set):
      spec: {tracing: {sampling: 100}}            every request, to the control plane
      spec: {tracing: {backend: {zipkin: URL}}}   to Zipkin, Jaeger, an OTel collector
    Apps must forward the trace headers they receive (traceparent, b3, x-b3-*).
    """
    with options.client() as client:
        if trace_id:
            body = client.get(f"/api/v1/traces/{trace_id}")
        else:
            body = client.get("/api/v1/traces", service=service, limit=limit)
    if print_structured(body, output):
        return
    if trace_id:
        _print_tree(body)
        return
    items = body["items"]
    if not items:
        click.echo("No traces (is tracing on? see `gossamer traces --help`).", err=True)
        return
    rows = [
        [
            t["traceId"],
            time.strftime("%H:%M:%S", time.localtime(t["startUs"] / 1e6)),
            f"{t['rootService']}: {t['rootName']}",
            _ms(t["durationUs"]),
            str(t["spans"]),
            " > ".join(t["services"]),
            "error" if t["error"] else "",
        ]
        for t in items
    ]
    print_table(["TRACE", "START", "ROOT", "DURATION", "SPANS", "SERVICES", ""], rows)


def _print_tree(trace: dict[str, Any]) -> None:
    spans = trace["spans"]
    click.echo(f"trace {trace['traceId']}: {len(spans)} spans")
    if not spans:
        return
    ids = {s["id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s.get("parentId") if s.get("parentId") in ids else None
        children.setdefault(parent, []).append(s)
    start = min(s.get("timestamp", 0) for s in spans)
    rows: list[list[str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda s: s.get("timestamp", 0)):
            tags = s.get("tags") or {}
            service = (s.get("localEndpoint") or {}).get("serviceName", "?")
            rows.append(
                [
                    "  " * depth + f"{service} {s.get('kind', '').lower()}",
                    s.get("name", ""),
                    tags.get("http.status_code", ""),
                    tags.get("response_flags", ""),
                    "+" + _ms(s.get("timestamp", 0) - start),
                    _ms(s.get("duration", 0)),
                    tags.get("peer.identity", ""),
                ]
            )
            walk(s["id"], depth + 1)

    walk(None, 0)
    print_table(["SPAN", "NAME", "STATUS", "FLAGS", "AT", "DURATION", "CALLER (mTLS)"], rows)
