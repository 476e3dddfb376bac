"""`gossamer stat`: target parsing and the table."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from gossamer.cli.stat import parse_target, print_stats


def test_targets() -> None:
    assert parse_target(None, None) == ("service", None)
    assert parse_target("svc/benigno", None) == ("service", "benigno")
    assert parse_target("svc", "benigno") == ("service", "benigno")
    assert parse_target("workload", None) == ("workload", None)
    assert parse_target("edge", "a>b") == ("edge", "a>b")
    with pytest.raises(click.BadParameter, match="expected svc, workload or edge"):
        parse_target("pods", None)
    with pytest.raises(click.BadParameter, match="give the name once"):
        parse_target("svc/a", "b")


def test_table_has_a_row_per_version() -> None:
    body = {
        "kind": "StatList",
        "window": "1m",
        "items": [
            {
                "kind": "service",
                "namespace": "default",
                "name": "benigno",
                "requests": 100,
                "rps": 10.0,
                "successRate": 0.99,
                "latencyMs": {"p50": 1.5, "p95": 4.0, "p99": 9.0},
                "versions": {
                    "v1": {"requests": 90, "rps": 9.0, "successRate": 1.0},
                    "v2": {"requests": 10, "rps": 1.0, "successRate": 0.9},
                },
            }
        ],
    }

    @click.command()
    def show() -> None:
        print_stats("service", body, "table")

    out = CliRunner().invoke(show).output.splitlines()
    assert out[0].split() == ["NAME", "SUCCESS", "RPS", "P50", "P95", "P99"]
    assert out[1].split() == ["default/benigno", "99.00%", "10.0", "1.5ms", "4ms", "9ms"]
    assert out[2].split()[:5] == ["version", "v1", "90%", "100.00%", "9.0"]
    assert out[3].split()[:5] == ["version", "v2", "10%", "90.00%", "1.0"]
