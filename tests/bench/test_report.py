"""The suite's report from saved results: ratios, verdicts against the issue's targets,
and rewriting only its own section of the page. No processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.suite import report


def sample(rps: float, cpu: float = 0.02) -> dict[str, float]:
    return {"rps": rps, "cpu_per_1000": cpu, "switches_per_request": 0.3, "errors": 0}


def latency(p99: float) -> dict[str, float]:
    return {"p50": 100.0, "p99": p99, "p999": p99 * 2, "sent": 10, "completed": 10}


def results(gossamer_rps: float, pinned_p99: float, unpinned_p99: float) -> dict[str, Any]:
    def phase(p99: float) -> dict[str, Any]:
        return {
            "layout": "test",
            "throughput": {
                "small": {
                    "direct": [sample(100_000)] * 3,
                    "gossamer": [sample(gossamer_rps, 0.05), sample(gossamer_rps + 10, 0.05)],
                    "haproxy": [sample(10_000)],
                    "nginx": [sample(12_000)],
                },
                "tcp": {"gossamer-tcp": [sample(20_000)], "haproxy-tcp": [sample(10_000)]},
            },
            "latency": {
                "direct": [{**latency(500), "errors": 0, "cpu_per_1000": 0.0}],
                "gossamer": [{**latency(p99), "errors": 0, "cpu_per_1000": 0.1}],
                "haproxy": [{**latency(1500), "errors": 0, "cpu_per_1000": 0.1}],
            },
        }

    return {
        "meta": {
            "date": "d",
            "cpu": "c",
            "cores": 2,
            "memory_gib": 1,
            "os": "o",
            "kernel": "k",
            "commit": "x",
            "loadavg": ["0", "0", "0"],
            "versions": dict.fromkeys(
                ("python", "uvloop", "httptools", "haproxy", "nginx", "wrk"), "1"
            ),
        },
        "config": {
            "rounds": 3,
            "duration": 4,
            "latency_duration": 4,
            "rate": 1000.0,
            "connections": 32,
            "workers": 1,
        },
        "phases": {"pinned": phase(pinned_p99), "unpinned": phase(unpinned_p99)},
        "memory": {"gossamer": {"a": {"hwm": 40.0, "rss": 39.0, "processes": 1}}},
        "na": {"gossamer-mtls": "mTLS not landed"},
    }


def test_ratios_and_verdicts() -> None:
    rows = {t: (m, v) for t, m, v in report.targets(results(5_000, 1_000, 3_000))}
    # median of 5,000 and 5,010 over 10,000
    assert rows["HTTP/1.1 plaintext: ≥ 1.0\u00d7 haproxy pair req/s"] == (
        "0.50\u00d7 pinned, 0.50\u00d7 unpinned",
        "**not met**",
    )
    assert rows["TCP: ≥ 1.0\u00d7 haproxy TCP pair"][1] == "**met**"
    # added p99: +500 vs +1,000 pinned (met), +2,500 vs +1,000 unpinned (not met)
    added = next(v for t, v in rows.items() if t.startswith("added p99"))
    assert added[1] == "**met** pinned, **not met** unpinned"
    mtls = next(v for t, v in rows.items() if "mTLS" in t)
    assert mtls == ("—", "n/a (mTLS not landed)")
    memory = next(v for t, v in rows.items() if "48 MiB" in t)
    assert memory[1] == "**met**"


def test_met_when_gossamer_is_faster() -> None:
    rows = {t: v for t, _, v in report.targets(results(20_000, 1_000, 1_000))}
    assert rows["HTTP/1.1 plaintext: ≥ 1.0\u00d7 haproxy pair req/s"] == "**met**"


def test_only_the_suite_section_is_rewritten(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(
        f"# B\n\nintro\n\n{report.BEGIN}\nold figures\n{report.END}\n\n## Other\nkept\n"
    )
    report.write(results(5_000, 1_000, 3_000), page, tmp_path, plots=False)
    text = page.read_text()
    assert "old figures" not in text
    assert text.startswith("# B\n\nintro\n\n" + report.BEGIN)
    assert text.endswith("## Other\nkept\n")
    assert (
        "| HTTP/1.1 keep-alive, small body | 100,000 | 5,005 | 10,000 | 12,000 | 0.50\u00d7" in text
    )
    # and once more: still one section
    report.write(results(5_000, 1_000, 3_000), page, tmp_path, plots=False)
    assert page.read_text().count(report.BEGIN) == 1
