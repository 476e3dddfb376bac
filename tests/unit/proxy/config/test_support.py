"""The supported-subset table, its doc, and NACKs for what is not in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2

from gossamer.proxy.config.compile import ConfigError, compile_cluster, compile_listener
from gossamer.proxy.config.support import markdown

DOC = Path(__file__).parents[4] / "docs" / "xds-support.md"


def test_the_doc_is_generated_from_the_table() -> None:
    assert DOC.read_text() == markdown(), (
        "docs/xds-support.md is stale: "
        "python -m gossamer.proxy.config.support > docs/xds-support.md"
    )


def test_an_unsupported_field_is_named_in_the_error() -> None:
    cluster = cluster_pb2.Cluster(name="c", type=cluster_pb2.Cluster.STATIC)
    cluster.dns_refresh_rate.seconds = 5
    with pytest.raises(ConfigError, match=r"Cluster 'c': dns_refresh_rate: field not supported"):
        compile_cluster(cluster)


def test_a_listener_without_address_is_refused() -> None:
    with pytest.raises(ConfigError, match="a socket address is required"):
        compile_listener(listener_pb2.Listener(name="l"))
