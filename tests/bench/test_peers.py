"""Peers the machine cannot run are reported n/a, not a crash of the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks.suite import peers
from benchmarks.suite.procs import NotAvailable


def test_nginx_tcp_pair_without_the_stream_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peers, "STREAM_MODULE", tmp_path / "missing.so")
    with pytest.raises(NotAvailable, match="stream module"):
        peers.nginx_pair(tmp_path, 1, None, tcp=True)
