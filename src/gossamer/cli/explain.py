"""`gossamer explain`: what the mesh will do with a request, and why."""

from __future__ import annotations

import textwrap
from typing import Any

import click

from gossamer.cli.client import Client
from gossamer.cli.output import print_structured


def render(body: dict[str, Any]) -> str:
    """The explanation for an operator: the summary, each step, the backends."""
    source = body["source"]
    dest = body["destination"]
    lines = [
        f"{dest['method']} {dest['authority']}{dest['path']} from {source['kind']} "
        f"{source['namespace']}/{source['name']}"
        + (f" (sidecar {source['proxy']})" if source.get("proxy") else ""),
    ]
    if source.get("synthetic"):
        lines.append(
            "note: no sidecar of the source is connected; explained as its sidecar would be "
            "configured."
        )
    lines += [f"outcome: {body['outcome']}", f"  {body['summary']}", ""]
    for step in body["steps"]:
        lines.append(f"{step['stage']:<9} {step['decision']}")
        for part in textwrap.wrap(step["detail"], 88):
            lines.append(f"          {part}")
        if step.get("resource"):
            lines.append(f"          from: {step['resource']}")
    if body.get("backends"):
        lines += ["", "backends:"]
        for b in body["backends"]:
            share = f"{100 * b.get('share', 0):g}%" if "share" in b else f"weight {b['weight']}"
            lines.append(
                f"  {b['service']:<20} {share:>6}  {b['healthyEndpoints']}/"
                f"{len(b['endpoints'])} healthy"
            )
            for ep in b["endpoints"][:10]:
                who = " ".join(x for x in (ep.get("workload"), ep.get("version")) if x)
                state = "healthy" if ep["healthy"] else "UNHEALTHY"
                lines.append(f"    {ep['address']:<22} {state:<9} {who}")
            if len(b["endpoints"]) > 10:
                lines.append(f"    ... {len(b['endpoints']) - 10} more")
    return "\n".join(lines)


@click.command()
@click.option(
    "--from", "source", required=True, metavar="svc/NAME|workload/NAME", help="Who calls."
)
@click.option("--to", "destination", required=True, metavar="HOST[:PORT]", help="What it calls.")
@click.option("-n", "--namespace", default="default", show_default=True, help="Of the source.")
@click.option("--method", default="GET", show_default=True)
@click.option("--path", default="/", show_default=True)
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'")
@click.option("--flags", metavar="FLAGS", help="Response flags of a failed request, e.g. UH.")
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text")
@click.pass_obj
def explain(
    options: Any,
    source: str,
    destination: str,
    namespace: str,
    method: str,
    path: str,
    headers: tuple[str, ...],
    flags: str | None,
    output: str,
) -> None:
    """What the mesh will do with a request, and why.

    The listener and route the source's sidecar matches (by the sidecar's own code on the
    config the control plane sends it), each policy that applies and the resource it came
    from, the backends and their weights, healthy endpoints, mTLS, and the authorization
    decision at the destination. With --flags, what a failed request's response flags
    mean (the `flags` of `gossamer tap`). A source with no connected sidecar is explained
    as its sidecar would be configured.

    \b
    Examples:
      gossamer explain --from svc/magnanimo --to benigno:5000 --path /hello
      gossamer explain --from workload/bookbuyer --to backend:8080 --method POST -H 'x-user: a'
      gossamer explain --from svc/magnanimo --to benigno:5000 --flags UH -o json
    """
    params: dict[str, Any] = {
        "source": source,
        "destination": destination,
        "namespace": namespace,
        "method": method,
        "path": path,
        "flags": flags,
        "header": [h for h in headers] or None,
    }
    with Client(options.target()) as client:
        query = {k: v for k, v in params.items() if v is not None}
        body = client.request("GET", "/api/v1/explain", params=query)
    if print_structured(body, output):
        return
    click.echo(render(body))
