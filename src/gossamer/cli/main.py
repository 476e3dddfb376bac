"""`gossamer`: the command line. One module per verb group; this one wires them together."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click

from gossamer import __version__
from gossamer.cli.client import Client, CliError, Target, find_target
from gossamer.cli.output import error


@dataclass
class Options:
    cp: str | None
    token: str | None
    state_dir: Path | None

    def target(self) -> Target:
        return find_target(self.cp, self.token, self.state_dir)

    def client(self) -> Client:
        return Client(self.target())


class GossamerGroup(click.Group):
    """Turns CliError into a one-line message and exit code 1, as kubectl does."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except CliError as exc:
            error(str(exc))
            sys.exit(1)


@click.group(
    cls=GossamerGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="gossamer")
@click.option(
    "--cp",
    envvar="GOSSAMER_CP",
    metavar="URL",
    help="Control plane API address [env GOSSAMER_CP; default: found via the state dir, "
    "else http://127.0.0.1:5681].",
)
@click.option(
    "--token",
    envvar="GOSSAMER_TOKEN",
    metavar="TOKEN",
    help="Bearer token for the API [env GOSSAMER_TOKEN; default: the state dir's admin.token].",
)
@click.option(
    "--state-dir",
    envvar="GOSSAMER_STATE_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Control plane state directory [env GOSSAMER_STATE_DIR; default ~/.local/state/gossamer].",
)
@click.pass_context
def cli(ctx: click.Context, cp: str | None, token: str | None, state_dir: Path | None) -> None:
    """Gossamer: a service mesh you can run on one laptop, many hosts, or Kubernetes.

    \b
    Start here:
      gossamer demo                      the canary walkthrough, end to end
      gossamer controlplane run          the control plane (API and dashboard on :5681)
      gossamer apply -f route.yaml       create or update resources
      gossamer get svc -A                list resources
    """
    ctx.obj = Options(cp, token, state_dir)


def _register() -> None:
    from gossamer.cli import (
        bootstrap,
        check,
        controlplane,
        dashboard,
        demo,
        proxy,
        resources,
        run,
        security,
        stat,
        traces,
    )

    cli.add_command(controlplane.controlplane)
    cli.add_command(bootstrap.bootstrap)
    cli.add_command(run.run)
    cli.add_command(demo.demo)
    cli.add_command(proxy.proxy)
    cli.add_command(dashboard.dashboard)
    cli.add_command(security.ca)
    cli.add_command(security.token)
    cli.add_command(check.check)
    cli.add_command(stat.stat)
    cli.add_command(traces.traces)
    for command in resources.COMMANDS:
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="gossamer")
