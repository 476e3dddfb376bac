"""`gossamer demo [SCENARIO]`: the walkthroughs of ../shared/scenarios, on this machine."""

from __future__ import annotations

import sys
from typing import Any

import click

from gossamer.cli.client import CliError


@click.command()
@click.argument("scenario", default="canary")
@click.option(
    "--non-interactive",
    "--steps",
    "non_interactive",
    is_flag=True,
    help="Run the steps unattended, print each step's result, exit 0 only if all held.",
)
@click.option(
    "--duration",
    type=float,
    default=None,
    metavar="SECONDS",
    help="How long each step measures traffic [default: 5 unattended, 8 interactive].",
)
@click.option(
    "--hold-after",
    type=click.IntRange(min=1),
    metavar="STEP",
    help="Run the steps up to STEP, then keep the mesh and its traffic running until "
    "Ctrl-C (e.g. to watch `gossamer stat` or Prometheus with that step's config).",
)
@click.pass_obj
def demo(
    options: Any,
    scenario: str,
    non_interactive: bool,
    duration: float | None,
    hold_after: int | None,
) -> None:
    """Run a walkthrough end to end: a throwaway control plane, the scenario's apps each
    under `gossamer run`, an ingress gateway, then each step's resources, with traffic
    through the ingress and the observed split checked against the configured one.

    \b
    Scenarios: canary (default), tcp-echo, bookstore (needs mTLS identities).
    Interactive on a terminal: a live view, then the mesh keeps running until Ctrl-C.

    \b
    Example (hold the canary at its 90/10 step, then look at it):
      gossamer demo canary --non-interactive --hold-after 2
      gossamer stat svc/benigno      # with the API address the demo printed in --cp
    """
    from gossamer.demo.runner import Demo
    from gossamer.demo.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        raise CliError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    interactive = not non_interactive and sys.stdout.isatty()
    runner = Demo(
        SCENARIOS[scenario],
        duration=duration if duration is not None else (8.0 if interactive else 5.0),
        interactive=interactive,
        hold_after=hold_after,
    )
    sys.exit(runner.run())
