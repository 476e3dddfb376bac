"""Mesh tracing and access logs reach the sidecar: the translation compiles without a
NACK and carries the settings; the built-in collector is used once its address is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossamer.api.errors import ApplyError
from gossamer.api.loader import load_documents, parse_resources
from gossamer.controlplane.translate import MeshTranslator
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.snapshot import build_snapshot
from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import compile_cluster, compile_listener
from tests.support.golden import load_case

CASE = Path(__file__).parent / "testdata/tracing.input.yaml"


def _hcm(listener: m.Listener) -> m.HttpConnectionManager:
    assert isinstance(listener.handler, m.HttpConnectionManager)
    return listener.handler


def test_the_sidecar_honours_the_translation() -> None:
    resources, nodes = load_case(CASE)
    translator = MeshTranslator(build_snapshot(resources))
    out = translator.for_proxy(nodes[0])
    listeners = {n: compile_listener(x) for n, x in out[e.LISTENER].items()}
    clusters = {n: compile_cluster(x) for n, x in out[e.CLUSTER].items()}
    zipkin = clusters["gossamer:zipkin"]
    assert zipkin.kind == "strict_dns" and zipkin.endpoints[0].port == 9411
    inbound = _hcm(listeners["inbound:41001"])
    assert inbound.tracing == m.Tracing(
        0.1, "gossamer:zipkin", "/api/v2/spans", (("gossamer.version", "v1"),)
    )
    (log,) = inbound.access_logs
    fields = dict(log.fields)
    assert log.path == "/var/log/magnanimo-access.log"  # the Service's, not the Mesh's
    assert fields["source"] == "%DOWNSTREAM_PEER_URI_SAN%"
    assert fields["destination"] == "spiffe://gossamer.local/ns/default/sa/magnanimo"
    assert fields["traceId"] == "%TRACE_ID%" and fields["direction"] == "inbound"
    outbound = _hcm(listeners["outbound:http"])
    assert outbound.tracing is not None and dict(outbound.access_logs[0].fields)["source"] == (
        "spiffe://gossamer.local/ns/default/sa/magnanimo"
    )
    assert _hcm(listeners["outbound:benigno:5000"]).tracing is not None
    assert isinstance(listeners["inbound:41101"].handler, m.TcpProxy)


def test_builtin_collector_once_known_and_nothing_without_tracing() -> None:
    docs = load_documents(
        "apiVersion: gossamer.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\n"
        "spec: {tracing: {}}\n",
        "mesh.yaml",
    )
    resources, nodes = load_case(CASE)
    resources = [r for r in resources if r.KIND != "Mesh"]
    node = nodes[0]
    plain = MeshTranslator(build_snapshot(resources)).for_proxy(node)
    hcm = _hcm(compile_listener(plain[e.LISTENER]["inbound:41001"]))
    assert hcm.tracing is None and hcm.access_logs  # the Service's own logs still apply
    gateway = MeshTranslator(build_snapshot(resources)).for_proxy(nodes[1])
    hcm = _hcm(compile_listener(gateway[e.LISTENER]["gateway:http:18080"]))
    assert hcm.tracing is None and hcm.access_logs == ()  # Mesh defaults: both off
    with_mesh = [*resources, *parse_resources(docs)]
    unknown = MeshTranslator(build_snapshot(with_mesh)).for_proxy(node)
    assert _hcm(compile_listener(unknown[e.LISTENER]["inbound:41001"])).tracing is None
    known = MeshTranslator(build_snapshot(with_mesh), collector=("127.0.0.1", 5681))
    out = known.for_proxy(node)
    hcm = _hcm(compile_listener(out[e.LISTENER]["inbound:41001"]))
    assert hcm.tracing is not None and hcm.tracing.sampling == 1.0
    assert hcm.tracing.collector_cluster == m.BUILTIN_COLLECTOR
    cluster = compile_cluster(out[e.CLUSTER][m.BUILTIN_COLLECTOR])
    assert (cluster.endpoints[0].address, cluster.endpoints[0].port) == ("127.0.0.1", 5681)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{tracing: {sampling: 101}}", "spec.tracing.sampling: must be <= 100"),
        ("{tracing: {backend: jaeger}}", "spec.tracing.backend: must be `builtin`"),
        ("{tracing: {backend: {otlp: 'http://c:4318'}}}", "spec.tracing.backend.otlp: OTLP"),
        ("{tracing: {backend: {zipkin: 'https://z:9411'}}}", "backend.zipkin: must be an http"),
        ("{tracing: {backend: {zipkin: 'http://z/api'}}}", "backend.zipkin: needs a port"),
        ("{tracing: {backend: {}}}", "spec.tracing.backend: needs `zipkin: URL`"),
        ("{tracing: {rate: 5}}", "spec.tracing.rate: unknown field"),
        ("{accessLogs: {enabled: true, path: logs/a}}", "spec.accessLogs.path: must be an abs"),
    ],
)
def test_bad_mesh_settings_are_refused(spec: str, message: str) -> None:
    head = "apiVersion: gossamer.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\n"
    docs = load_documents(f"{head}spec: {spec}\n", "mesh.yaml")
    with pytest.raises(ApplyError, match=message.replace("(", r"\(")) as info:
        parse_resources(docs)
    assert "Mesh default" in str(info.value)
