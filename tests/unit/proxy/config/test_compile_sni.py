"""Listeners routing TLS by SNI (egress): what compiles, and what is NACKed with a path."""

from __future__ import annotations

import pytest
from envoy.config.listener.v3 import listener_pb2

from gossamer.controlplane.translate import envoy as e
from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import ConfigError, compile_listener


def _listener(*chains: tuple[list[str], str]) -> listener_pb2.Listener:
    lst = listener_pb2.Listener(name="tls", address=e.socket_address("127.0.0.1", 1))
    for names, cluster in chains:
        chain = lst.filter_chains.add()
        chain.filter_chain_match.server_names.extend(names)
        chain.filters.add(
            name="envoy.filters.network.tcp_proxy",
            typed_config=e.pack(e.tcp_proxy("tls", [(cluster, 1)])),
        )
    return lst


def test_chains_by_server_name_and_a_default() -> None:
    compiled = compile_listener(
        _listener((["Pay.Example.com."], "pay"), (["a.test", "b.test"], "ab"), ([], "blocked"))
    )
    proxy = compiled.handler
    assert isinstance(proxy, m.TcpProxy) and proxy.sni_routing
    assert {k: [c.name for c in v] for k, v in proxy.by_sni.items()} == {
        "pay.example.com": ["pay"],
        "a.test": ["ab"],
        "b.test": ["ab"],
    }
    assert [c.name for c in proxy.clusters] == ["blocked"]


def test_without_a_default_chain_nothing_else_passes() -> None:
    proxy = compile_listener(_listener((["a.test"], "a"))).handler
    assert isinstance(proxy, m.TcpProxy) and proxy.clusters == ()


@pytest.mark.parametrize(
    ("chains", "error"),
    [
        (((["*.test"], "a"),), "server_names: wildcards are not supported"),
        (((["a.test"], "a"), (["A.test"], "b")), "'a.test' is repeated"),
        (((["a.test"], "a"), ([], "b"), ([], "c")), "more than one chain without server_names"),
    ],
)
def test_nacked(chains: tuple[tuple[list[str], str], ...], error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        compile_listener(_listener(*chains))


def test_terminating_tls_on_an_sni_chain_is_nacked() -> None:
    lst = _listener((["a.test"], "a"))
    lst.filter_chains[0].transport_socket.name = "envoy.transport_sockets.tls"
    with pytest.raises(ConfigError, match=r"filter_chains\[0\]: SNI routing passes TLS through"):
        compile_listener(lst)
