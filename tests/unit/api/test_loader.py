"""Manifest loading: multi-document YAML, JSON, lists, and errors that name things."""

from __future__ import annotations

import pytest

from gossamer.api.errors import ApplyError
from gossamer.api.loader import dump_yaml, load_documents, parse_text, to_document
from gossamer.api.model import parse_duration
from gossamer.api.registry import UnknownKind, resolve

SERVICE = """
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {name: benigno, labels: {team: a}}
spec: {selector: {app: benigno}, ports: [{port: 5000}]}
"""


def test_multi_document_yaml_skips_empty_documents() -> None:
    docs = load_documents("---\n" + SERVICE + "---\n---\n" + SERVICE.replace("benigno", "b2"))
    assert [d["metadata"]["name"] for d in docs] == ["benigno", "b2"]


def test_json_object_list_and_kind_list() -> None:
    one = '{"apiVersion": "gossamer.io/v1alpha1", "kind": "Service", "metadata": {"name": "a"}}'
    assert len(load_documents(one)) == 1
    assert len(load_documents(f"[{one}, {one.replace('a', 'b')}]")) == 2
    listed = f'{{"kind": "List", "items": [{one}]}}'
    assert load_documents(listed)[0]["metadata"]["name"] == "a"


def test_namespace_defaults_and_round_trip() -> None:
    [svc] = parse_text(SERVICE)
    assert svc.namespace == "default"
    doc = to_document(svc)
    assert doc["metadata"] == {"name": "benigno", "namespace": "default", "labels": {"team": "a"}}
    assert parse_text(dump_yaml([doc]))[0] == svc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "input: not valid YAML or JSON"),
        ("- 1\n- 2", "document 1: expected a mapping"),
        ("kind: Service\nmetadata: {name: a}", "Service default/a: apiVersion: required field"),
        (
            "apiVersion: gossamer.io/v1alpha1\nkind: Servise\nmetadata: {name: a}",
            "Servise default/a: kind: unknown kind 'Servise'",
        ),
        (
            "apiVersion: gossamer.io/v9\nkind: Service\nmetadata: {name: a}",
            "version 'v9' of Service.gossamer.io is not supported; use one of v1alpha1",
        ),
        (
            "apiVersion: split.smi-spec.io/v1alpha2\nkind: Service\nmetadata: {name: a}",
            "kind Service is not in apiVersion split.smi-spec.io/v1alpha2; "
            "use gossamer.io/v1alpha1",
        ),
        (
            "apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {name: Bad_Name}",
            "metadata.name: must be a DNS subdomain",
        ),
        (
            "apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {name: a, nmespace: x}",
            "Service default/a: metadata.nmespace: unknown field",
        ),
        (
            "apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
            "spec: {ports: [{port: 70000}]}",
            "Service default/a: spec.ports[0].port: must be <= 65535, got 70000",
        ),
        (
            "apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
            "spec: {ports: [{port: 80, protocol: udp}]}",
            "spec.ports[0].protocol: must be one of 'http', 'http2', 'grpc' or 'tcp', got 'udp'",
        ),
        (
            "apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
            "spec: {ports: [{port: 80}, {port: 80}]}",
            "Service default/a: spec.ports[1].port: port 80 is listed twice",
        ),
        (
            "apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {name: a}\n"
            "spec: {selector: {app: a}, selector: {app: b}}",
            "duplicate key 'selector'",
        ),
    ],
)
def test_errors_name_resource_field_and_reason(text: str, message: str) -> None:
    with pytest.raises(ApplyError) as info:
        parse_text(text)
    assert message in str(info.value)


def test_one_bad_document_fails_the_whole_file_and_reports_every_problem() -> None:
    bad = SERVICE.replace("port: 5000", "port: -1").replace("benigno", "b2")
    worse = SERVICE.replace("benigno", "b3").replace("selector:", "selektor:")
    with pytest.raises(ApplyError) as info:
        parse_text("\n---\n".join([SERVICE, bad, worse]), source="f.yaml")
    lines = str(info.value).splitlines()
    assert lines == [
        "f.yaml: Service default/b2: spec.ports[0].port: must be >= 1, got -1",
        "f.yaml: Service default/b3: spec.selektor: unknown field",
    ]


def test_the_same_object_twice_in_one_file_is_an_error() -> None:
    with pytest.raises(ApplyError, match="appears twice"):
        parse_text(SERVICE + "---\n" + SERVICE)


def test_cluster_scoped_kinds_have_no_namespace() -> None:
    [mesh] = parse_text("apiVersion: gossamer.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}")
    assert mesh.namespace == ""
    assert mesh.ref == "Mesh default"
    assert "namespace" not in to_document(mesh)["metadata"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0), ("5s", 5), ("250ms", 0.25), ("1m30s", 90), ("2h", 7200), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "s", "5 s", "1x", "-1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_resolve_kind_names() -> None:
    assert resolve("svc").kind == "Service"
    assert resolve("Services").kind == "Service"
    assert resolve("service.gossamer.io").kind == "Service"
    assert resolve("MESH").kind == "Mesh"
    with pytest.raises(UnknownKind, match="unknown kind 'frob'"):
        resolve("frob")
