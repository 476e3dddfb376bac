"""Gossamer's inventory kinds: Mesh, Service, Workload and ExternalService."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from gossamer.api.errors import ApplyError
from gossamer.api.kinds.mesh import ExternalService, Mesh, MeshSpec, Service, Workload
from gossamer.api.loader import dump_yaml, parse_resources, parse_text, to_document
from gossamer.api.model import Resource
from gossamer.api.registry import resolve

DOCS = Path(__file__).resolve().parents[3] / "docs" / "resources"

# --- helpers -----------------------------------------------------------------------------

DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def mutate(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of doc with the field at `spec.ports[0].port` set (or deleted)."""
    doc = copy.deepcopy(doc)
    steps: list[str | int] = [
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(path)
    ]
    node: Any = doc
    for step in steps[:-1]:
        node = node[step]
    if value is DELETE:
        del node[steps[-1]]
    else:
        node[steps[-1]] = value
    return doc


def errors_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ApplyError) as info:
        parse_resources([doc])
    return str(info.value).splitlines()


def load(text: str) -> list[Resource]:
    return parse_text(textwrap.dedent(text))


def round_trip(text: str) -> list[dict[str, Any]]:
    first = [to_document(r) for r in load(text)]
    again = [to_document(r) for r in parse_resources(first)]
    assert again == first
    assert [to_document(r) for r in parse_text(dump_yaml(first))] == first
    return first


EXAMPLES: dict[str, str] = {
    "Mesh": """
        apiVersion: gossamer.io/v1alpha1
        kind: Mesh
        metadata:
          name: default
          labels: {env: demo}
        spec:
          mtls:
            mode: PERMISSIVE
            trustDomain: bookstore.example
            certLifetime: 12h
            rootOverlap: 48h
          defaultAccess: deny
          egress: {mode: ALLOW_ANY}
          tracing:
            sampling: 10
            backend: {zipkin: "http://127.0.0.1:9411/api/v2/spans"}
          accessLogs: {enabled: true, path: /var/log/gossamer/access.log}
    """,
    "Service": """
        apiVersion: gossamer.io/v1alpha1
        kind: Service
        metadata:
          name: benigno
          namespace: canary
          labels: {team: greetings}
          annotations: {owner: "greetings@example.com"}
          uid: 3f1c0c7e-0d7e-4c55-9d2b-6a9b5d1c2e01
          generation: 3
          resourceVersion: "42"
          creationTimestamp: "2024-05-01T10:00:00Z"
        spec:
          selector: {app: benigno}
          ports:
            - {name: http, port: 5000, protocol: http}
            - {name: admin, port: 5001, targetPort: 9001, protocol: http2}
            - {name: rpc, port: 5002, protocol: grpc}
            - {port: 5003, protocol: tcp}
    """,
    "Workload": """
        apiVersion: gossamer.io/v1alpha1
        kind: Workload
        metadata:
          name: benigno-v2-1
          namespace: canary
          labels: {app: benigno, version: v2}
        spec:
          address: 127.0.0.1
          serviceAccount: benigno
          zone: east-1
          ports:
            - {name: http, port: 5000, targetPort: 8082, inboundPort: 15006, protocol: http}
            - {name: rpc, port: 5002, targetPort: 8083, protocol: grpc}
    """,
    "ExternalService": """
        apiVersion: gossamer.io/v1alpha1
        kind: ExternalService
        metadata: {name: payments-api, namespace: default}
        spec:
          host: api.payments.example
          port: 443
          protocol: http
          addresses: [127.0.0.1]
          tls:
            originate: true
            sni: api.payments.example
            caCert: "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
            verify: false
    """,
}
KINDS = list(EXAMPLES)


def example(kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(textwrap.dedent(EXAMPLES[kind]))
    return doc


# --- registration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "names", "namespaced"),
    [
        ("Mesh", ("mesh", "meshes", "Mesh", "meshes.gossamer.io"), False),
        ("Service", ("svc", "services", "service"), True),
        ("Workload", ("wl", "workloads", "workload"), True),
        ("ExternalService", ("es", "ext", "externalservices", "externalservice"), True),
    ],
)
def test_kind_is_registered_under_every_name(
    kind: str, names: tuple[str, ...], namespaced: bool
) -> None:
    for name in names:
        info = resolve(name)
        assert (info.group, info.kind, info.versions) == ("gossamer.io", kind, ("v1alpha1",))
        assert info.namespaced is namespaced


def test_service_is_ambiguous_only_if_another_group_defines_it() -> None:
    # `svc` and `services` must keep meaning this Service even when other kinds exist.
    assert resolve("svc").model is Service


# --- full examples -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_full_example_round_trips(kind: str) -> None:
    (doc,) = round_trip(EXAMPLES[kind])
    written = example(kind)
    assert doc["kind"] == kind and doc["apiVersion"] == "gossamer.io/v1alpha1"
    assert doc["spec"] == written["spec"]  # what was written, no defaults added
    assert doc["metadata"]["name"] == written["metadata"]["name"]


def test_examples_parse_to_typed_objects() -> None:
    (mesh,) = load(EXAMPLES["Mesh"])
    assert isinstance(mesh, Mesh)
    assert mesh.spec.mtls is not None and mesh.spec.mtls.mode == "PERMISSIVE"
    assert mesh.spec.tracing is not None and mesh.spec.tracing.sampling == 10.0
    assert mesh.ref == "Mesh default" and mesh.namespace == ""

    (svc,) = load(EXAMPLES["Service"])
    assert isinstance(svc, Service)
    assert svc.ref == "Service canary/benigno"
    assert [(p.port, p.target_port, p.protocol) for p in svc.spec.ports] == [
        (5000, None, "http"),
        (5001, 9001, "http2"),
        (5002, None, "grpc"),
        (5003, None, "tcp"),
    ]
    assert svc.metadata.resource_version == "42"

    (wl,) = load(EXAMPLES["Workload"])
    assert isinstance(wl, Workload)
    assert wl.metadata.labels == {"app": "benigno", "version": "v2"}
    assert wl.spec.ports[0].inbound_port == 15006 and wl.spec.ports[1].inbound_port is None

    (es,) = load(EXAMPLES["ExternalService"])
    assert isinstance(es, ExternalService)
    assert es.spec.tls is not None and es.spec.tls.originate and not es.spec.tls.verify


def test_mesh_has_no_namespace() -> None:
    doc = mutate(example("Mesh"), "metadata.namespace", "elsewhere")
    (mesh,) = parse_resources([doc])
    assert mesh.namespace == ""
    assert "namespace" not in to_document(mesh)["metadata"]


def test_defaults() -> None:
    (mesh,) = load(
        """
        apiVersion: gossamer.io/v1alpha1
        kind: Mesh
        metadata: {name: default}
        """
    )
    assert isinstance(mesh, Mesh)
    assert mesh.spec == MeshSpec()
    assert mesh.spec.default_access == "allow"
    assert to_document(mesh) == {
        "apiVersion": "gossamer.io/v1alpha1",
        "kind": "Mesh",
        "metadata": {"name": "default"},
    }
    (svc, wl, es) = load(
        """
        apiVersion: gossamer.io/v1alpha1
        kind: Service
        metadata: {name: benigno}
        ---
        apiVersion: gossamer.io/v1alpha1
        kind: Workload
        metadata: {name: benigno-1}
        spec:
          ports: [{port: 5000, targetPort: 8080}]
        ---
        apiVersion: gossamer.io/v1alpha1
        kind: ExternalService
        metadata: {name: httpbin}
        spec: {host: httpbin.org, port: 80}
        """
    )
    assert isinstance(svc, Service) and isinstance(wl, Workload)
    assert isinstance(es, ExternalService)
    assert svc.namespace == "default" and svc.spec.selector == {} and svc.spec.ports == []
    assert wl.spec.address == "127.0.0.1" and wl.spec.ports[0].protocol == "http"
    assert wl.spec.service_account is None and wl.spec.zone is None
    assert es.spec.protocol == "http" and es.spec.tls is None


def test_status_is_accepted_and_dropped() -> None:
    doc = example("Service")
    doc["status"] = {"endpoints": 3}
    (svc,) = parse_resources([doc])
    assert "status" not in to_document(svc)


def test_ipv6_workload_address() -> None:
    (wl,) = parse_resources([mutate(example("Workload"), "spec.address", "fd00::12")])
    assert isinstance(wl, Workload) and wl.spec.address == "fd00::12"


# --- invalid documents -------------------------------------------------------------------

# fmt: off
INVALID: list[tuple[str, str, Any, str, str]] = [
    # (kind, field to change, new value, reported path, reason)
    # wrong types
    ("Mesh", "spec.mtls.certLifetime", 24, "spec.mtls.certLifetime",
     "expected a string, got integer 24"),
    ("Mesh", "spec.accessLogs.enabled", "yes", "spec.accessLogs.enabled",
     "expected true or false, got string 'yes'"),
    ("Mesh", "spec.tracing.sampling", "10%", "spec.tracing.sampling",
     "expected a number, got string '10%'"),
    ("Service", "spec.ports[0].port", "5000", "spec.ports[0].port",
     "expected an integer, got string '5000'"),
    ("Service", "spec.selector.app", 1, "spec.selector.app", "expected a string, got integer 1"),
    ("Service", "spec.ports", {"port": 5000}, "spec.ports", "expected a list, got a mapping"),
    ("Workload", "spec.ports[0].targetPort", 8082.0, "spec.ports[0].targetPort",
     "expected an integer, got number 8082.0"),
    ("Workload", "spec.address", 2130706433, "spec.address",
     "expected a string, got integer 2130706433"),
    ("ExternalService", "spec.addresses", "127.0.0.1", "spec.addresses",
     "expected a list, got string '127.0.0.1'"),
    ("ExternalService", "spec.tls.verify", "false", "spec.tls.verify",
     "expected true or false, got string 'false'"),
    ("Mesh", "spec.mtls.certLifetime", "1 day", "spec.mtls.certLifetime",
     "must be a duration such as '500ms', '5s' or '1m30s', got '1 day'"),
    # unknown fields
    ("Mesh", "spec.egres", {}, "spec.egres", "unknown field"),
    ("Mesh", "spec.mtls.enabled", True, "spec.mtls.enabled", "unknown field"),
    ("Service", "spec.type", "ClusterIP", "spec.type", "unknown field"),
    ("Service", "spec.ports[0].nodePort", 30000, "spec.ports[0].nodePort", "unknown field"),
    ("Workload", "spec.hostname", "box", "spec.hostname", "unknown field"),
    ("ExternalService", "spec.tls.insecure", True, "spec.tls.insecure", "unknown field"),
    ("Service", "metadata.label", {}, "metadata.label", "unknown field"),
    ("Service", "extra", 1, "extra", "unknown field"),
    # missing required fields
    ("Service", "metadata.name", DELETE, "metadata.name", "required field is missing"),
    ("Service", "spec.ports[0].port", DELETE, "spec.ports[0].port", "required field is missing"),
    ("Workload", "spec", DELETE, "spec", "required field is missing"),
    ("Workload", "spec.ports", DELETE, "spec.ports", "required field is missing"),
    ("Workload", "spec.ports[0].targetPort", DELETE, "spec.ports[0].targetPort",
     "required field is missing"),
    ("ExternalService", "spec.host", DELETE, "spec.host", "required field is missing"),
    ("ExternalService", "spec.port", DELETE, "spec.port", "required field is missing"),
    # empty, negative and out-of-range values
    ("Workload", "spec.ports", [], "spec.ports", "must have at least 1 item(s)"),
    ("ExternalService", "spec.host", "", "spec.host", "must be at least 1 character(s) long"),
    ("Service", "spec.ports[0].port", 0, "spec.ports[0].port", "must be >= 1, got 0"),
    ("Service", "spec.ports[1].targetPort", 65536, "spec.ports[1].targetPort",
     "must be <= 65535, got 65536"),
    ("Workload", "spec.ports[0].inboundPort", -1, "spec.ports[0].inboundPort",
     "must be >= 1, got -1"),
    ("ExternalService", "spec.port", -443, "spec.port", "must be >= 1, got -443"),
    ("Mesh", "spec.tracing.sampling", -1, "spec.tracing.sampling", "must be >= 0, got -1"),
    ("Mesh", "spec.tracing.sampling", 100.5, "spec.tracing.sampling",
     "must be <= 100, got 100.5"),
    # bad enums
    ("Mesh", "spec.mtls.mode", "strict", "spec.mtls.mode",
     "must be one of 'STRICT', 'PERMISSIVE' or 'DISABLED', got 'strict'"),
    ("Mesh", "spec.defaultAccess", "DENY", "spec.defaultAccess",
     "must be one of 'allow' or 'deny', got 'DENY'"),
    ("Mesh", "spec.egress.mode", "ALLOW_ALL", "spec.egress.mode",
     "must be one of 'REGISTRY_ONLY' or 'ALLOW_ANY', got 'ALLOW_ALL'"),
    ("Mesh", "spec.tracing.backend", "jaeger", "spec.tracing.backend",
     "must be `builtin` or `{zipkin: URL}`, got 'jaeger'"),
    ("Service", "spec.ports[0].protocol", "HTTP", "spec.ports[0].protocol",
     "must be one of 'http', 'http2', 'grpc' or 'tcp', got 'HTTP'"),
    ("Workload", "spec.ports[0].protocol", "udp", "spec.ports[0].protocol",
     "must be one of 'http', 'http2', 'grpc' or 'tcp', got 'udp'"),
    ("ExternalService", "spec.protocol", "https", "spec.protocol",
     "must be one of 'http', 'tls' or 'tcp', got 'https'"),
    # names
    ("Service", "metadata.name", "Benigno", "metadata.name",
     "must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253), "
     "got 'Benigno'"),
    ("Service", "metadata.namespace", "can.ary", "metadata.namespace",
     "must be a DNS label (lowercase letters, digits and '-', at most 63), got 'can.ary'"),
    ("Workload", "metadata.labels", {"version": "v2!"}, "metadata.labels",
     "label 'version' has an invalid value 'v2!'"),
    ("Workload", "spec.serviceAccount", "Benigno_SA", "spec.serviceAccount",
     "must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253), "
     "got 'Benigno_SA'"),
    ("Mesh", "spec.mtls.trustDomain", "Bookstore", "spec.mtls.trustDomain",
     "must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253), "
     "got 'Bookstore'"),
    # cross-field rules
    ("Service", "spec.ports[1].port", 5000, "spec.ports[1].port", "port 5000 is listed twice"),
    ("Service", "spec.ports[1].name", "http", "spec.ports[1].name", "name 'http' is used twice"),
    ("Workload", "spec.ports[1].port", 5000, "spec.ports[1].port", "port 5000 is listed twice"),
    ("Workload", "spec.address", "localhost", "spec.address",
     "must be an IP address, got 'localhost'"),
    ("Workload", "spec.address", "10.0.0.300", "spec.address",
     "must be an IP address, got '10.0.0.300'"),
    ("ExternalService", "spec.protocol", "tls", "spec.tls.originate",
     "only possible when protocol is http"),
    ("ExternalService", "spec.protocol", "tcp", "spec.tls.originate",
     "only possible when protocol is http"),
]
# fmt: on


def _ids() -> list[str]:
    return [f"{k}:{f}={v!r}" if v is not DELETE else f"{k}:-{f}" for k, f, v, _, _ in INVALID]


@pytest.mark.parametrize(("kind", "field", "value", "path", "reason"), INVALID, ids=_ids())
def test_invalid_field_is_reported(
    kind: str, field: str, value: Any, path: str, reason: str
) -> None:
    doc = mutate(example(kind), field, value)
    lines = errors_of(doc)
    assert f"{ref_in_errors(doc)}: {path}: {reason}" in lines, lines


def ref_in_errors(doc: dict[str, Any]) -> str:
    """How errors name a document: by kind and name as written, else by position."""
    meta = doc["metadata"]
    if "name" not in meta:
        return f"{doc['kind']} (document 1)"
    if doc["kind"] == "Mesh":
        return f"Mesh {meta['name']}"
    return f"{doc['kind']} {meta.get('namespace', 'default')}/{meta['name']}"


def test_schema_and_semantic_errors_name_a_mesh_alike() -> None:
    assert errors_of(mutate(example("Mesh"), "spec.defaultAccess", "DENY")) == [
        "Mesh default: spec.defaultAccess: must be one of 'allow' or 'deny', got 'DENY'"
    ]


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    doc = example("Workload")
    doc = mutate(doc, "spec.address", "benigno.local")
    doc = mutate(doc, "spec.ports[1].port", 5000)
    assert errors_of(doc) == [
        "Workload canary/benigno-v2-1: spec.address: must be an IP address, got 'benigno.local'",
        "Workload canary/benigno-v2-1: spec.ports[1].port: port 5000 is listed twice",
    ]


def test_one_bad_document_refuses_the_whole_file() -> None:
    good = example("Service")
    bad = mutate(example("Workload"), "spec.ports", [])
    with pytest.raises(ApplyError) as info:
        parse_resources([good, bad])
    assert [e.ref for e in info.value.errors] == ["Workload canary/benigno-v2-1"]


# --- the documentation's examples are real -----------------------------------------------

PAGES = ["mesh", "service", "workload", "externalservice"]
_FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def doc_examples(page: str) -> list[tuple[str, str | None]]:
    """(manifest, expected error text or None) for each manifest on a docs page: a manifest
    directly followed by a ```text block is an example of an error."""
    text = (DOCS / f"{page}.md").read_text()
    blocks = [(m.group(1), m.group(2)) for m in _FENCE.finditer(text)]
    out: list[tuple[str, str | None]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "yaml" and "apiVersion:" in body:
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            expected = following[1].strip() if following and following[0] == "text" else None
            out.append((body, expected))
    return out


def _doc_cases() -> list[Any]:
    cases = []
    for page in PAGES:
        for index, (manifest, expected) in enumerate(doc_examples(page)):
            cases.append(pytest.param(manifest, expected, id=f"{page}-{index}"))
    return cases


@pytest.mark.parametrize(("manifest", "expected"), _doc_cases())
def test_docs_example_behaves_as_documented(manifest: str, expected: str | None) -> None:
    if expected is None:
        round_trip(manifest)
    else:
        with pytest.raises(ApplyError) as info:
            parse_text(manifest)
        assert str(info.value) == expected


@pytest.mark.parametrize("page", PAGES)
def test_docs_page_has_a_valid_example_and_an_error(page: str) -> None:
    examples = doc_examples(page)
    assert any(expected is None for _, expected in examples)
    assert any(expected is not None for _, expected in examples)
