"""Command-line port forms and the node metadata the control plane reads."""

from __future__ import annotations

import pytest

from gossamer.controlplane.translate.node import ProxyNode
from gossamer.proxy.node import (
    Inbound,
    NodeInfo,
    OptionError,
    Outbound,
    parse_inbound,
    parse_label,
    parse_outbound,
)


def test_parse_ports_and_labels() -> None:
    assert parse_inbound("5000:8080:15006") == Inbound(5000, 8080, 15006, "http")
    assert parse_inbound("6379:16379:15007:TCP") == Inbound(6379, 16379, 15007, "tcp")
    assert parse_outbound("benigno:5000=15000") == Outbound("benigno", 5000, 15000)
    assert parse_outbound("benigno.other:5000=15001").service == "benigno.other"
    assert parse_label("version=v2") == ("version", "v2")


@pytest.mark.parametrize(
    "text", ["5000:8080", "5000:x:1", "5000:8080:15006:udp", "0:1:2", "1:2:70000"]
)
def test_bad_inbound(text: str) -> None:
    with pytest.raises(OptionError):
        parse_inbound(text)


@pytest.mark.parametrize("text", ["benigno=15000", "benigno:5000", ":5000=1", "Bad_Name:1=2"])
def test_bad_outbound(text: str) -> None:
    with pytest.raises(OptionError):
        parse_outbound(text)


def test_metadata_is_what_the_control_plane_reads() -> None:
    info = NodeInfo(
        node_id="magnanimo-1",
        workload="magnanimo-1",
        namespace="shop",
        service="magnanimo",
        labels={"app": "magnanimo", "version": "v1"},
        address="127.0.0.2",
        inbound=(Inbound(4000, 41000, 41001), Inbound(6379, 6380, 41003, "tcp")),
        http_proxy_port=41002,
        outbound=(Outbound("benigno", 5000, 15000),),
    )
    node = ProxyNode.from_metadata(info.node_id, info.metadata())
    assert node.kind == "sidecar"
    assert (node.workload, node.namespace, node.service) == ("magnanimo-1", "shop", "magnanimo")
    assert dict(node.labels) == {"app": "magnanimo", "version": "v1"}
    assert node.address == "127.0.0.2"
    assert node.service_account == "magnanimo"
    assert [(p.port, p.target_port, p.inbound_port, p.protocol) for p in node.inbound] == [
        (4000, 41000, 41001, "http"),
        (6379, 6380, 41003, "tcp"),
    ]
    assert node.outbound_http_port == 41002
    assert [(o.service, o.port, o.listen_port) for o in node.outbound] == [("benigno", 5000, 15000)]
