"""Tables (rich on a terminal, plain columns when piped), YAML and JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click
import yaml
from rich.console import Console
from rich.table import Table

from gossamer.api.loader import dump_yaml


def print_structured(body: Any, output: str) -> bool:
    """Print `body` as JSON or YAML when that is the output asked for; False otherwise."""
    if output not in ("json", "yaml"):
        return False
    text = json.dumps(body, indent=2) if output == "json" else yaml.safe_dump(body)
    click.echo(text, nl=output == "json")
    return True


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = "") -> None:
    if is_terminal():
        table = Table(title=title or None, box=None, header_style="bold", pad_edge=False)
        for h in headers:
            table.add_column(h, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    for line in [headers, *rows]:
        click.echo("   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def print_documents(docs: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        body = docs[0] if len(docs) == 1 else {"kind": "List", "items": docs}
        click.echo(json.dumps(body, indent=2))
    else:
        click.echo(dump_yaml(docs), nl=False)


def age(timestamp: str | None, now: datetime | None = None) -> str:
    """kubectl-style age: 45s, 12m, 3h, 5d."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2 or (unit == "m" and seconds >= size):
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def error(message: str) -> None:
    for line in message.splitlines() or [message]:
        click.echo(f"error: {line}", err=True)
