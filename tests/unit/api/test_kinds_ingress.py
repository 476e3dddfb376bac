"""Kubernetes Ingress (networking.k8s.io/v1)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from gossamer.api.errors import ApplyError
from gossamer.api.kinds.ingress import Ingress
from gossamer.api.loader import dump_yaml, parse_text, to_document
from gossamer.api.model import Resource
from gossamer.api.registry import resolve


def load(text: str) -> list[Resource]:
    return parse_text(textwrap.dedent(text))


def load_one(text: str) -> Resource:
    (resource,) = load(text)
    return resource


def errors(text: str) -> list[str]:
    with pytest.raises(ApplyError) as info:
        load(text)
    return str(info.value).splitlines()


def assert_round_trip(text: str) -> None:
    first = [to_document(r) for r in load(text)]
    again = [to_document(r) for r in parse_text(dump_yaml(first))]
    assert again == first


FULL_INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: kong-mesh-app
  namespace: kong-mesh-app
  annotations:
    konghq.com/strip-path: "true"
spec:
  ingressClassName: gossamer
  defaultBackend:
    service:
      name: magnanimo
      port: {number: 4000}
  tls:
  - hosts: [shop.example.com, "*.example.com"]
    secretName: shop-tls
  rules:
  - http:
      paths:
      - path: /route1
        pathType: Prefix
        backend:
          service:
            name: magnanimo
            port: {number: 4000}
  - host: shop.example.com
    http:
      paths:
      - path: /exact
        pathType: Exact
        backend:
          service:
            name: benigno
            port: {name: http}
      - pathType: ImplementationSpecific
        backend:
          resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: static-assets}
  - host: "*.example.com"
"""


def test_full_ingress_loads_and_round_trips() -> None:
    ingress = load_one(FULL_INGRESS)
    assert isinstance(ingress, Ingress)
    assert ingress.ref == "Ingress kong-mesh-app/kong-mesh-app"
    assert ingress.metadata.annotations == {"konghq.com/strip-path": "true"}
    first = ingress.spec.rules[0]
    assert first.host is None and first.http is not None
    route1 = first.http.paths[0]
    assert (route1.effective_path, route1.match_type) == ("/route1", "Prefix")
    assert route1.backend.service is not None
    assert route1.backend.service.port.number == 4000
    second = ingress.spec.rules[1].http
    assert second is not None
    exact, anything = second.paths
    assert exact.match_type == "Exact"
    assert exact.backend.service is not None and exact.backend.service.port.name == "http"
    # ImplementationSpecific is served as a prefix; no path means "/".
    assert (anything.effective_path, anything.match_type) == ("/", "Prefix")
    assert anything.backend.resource is not None
    assert anything.backend.resource.kind == "StorageBucket"
    assert ingress.spec.tls[0].secret_name == "shop-tls"
    assert_round_trip(FULL_INGRESS)


def test_minimal_ingress_with_only_a_default_backend() -> None:
    text = """
    apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: all}
    spec:
      defaultBackend: {service: {name: web, port: {number: 80}}}
    """
    ingress = load_one(text)
    assert to_document(ingress)["spec"] == {
        "defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}
    }


HEAD = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
"""


def one_path(path: str) -> str:
    return f"spec:\n  rules:\n  - http:\n      paths:\n      - {path}\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            one_path("{path: /, backend: {service: {name: web, port: {number: 80}}}}"),
            "spec.rules[0].http.paths[0].pathType: required field is missing",
        ),
        (
            one_path(
                "{path: /, pathType: PathPrefix, "
                "backend: {service: {name: web, port: {number: 80}}}}"
            ),
            "spec.rules[0].http.paths[0].pathType: must be one of 'Exact', 'Prefix' or "
            "'ImplementationSpecific', got 'PathPrefix'",
        ),
        (
            one_path(
                "{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: '80'}}}}"
            ),
            "spec.rules[0].http.paths[0].backend.service.port.number: expected an integer, "
            "got string '80'",
        ),
        (
            one_path("{path: /, pathType: Prefix, backend: {serviceName: web, servicePort: 80}}"),
            "spec.rules[0].http.paths[0].backend.serviceName: unknown field",
        ),
        (
            one_path("{path: /, pathType: Prefix, backend: {service: {name: web}}}"),
            "spec.rules[0].http.paths[0].backend.service.port: required field is missing",
        ),
        (
            one_path(
                "{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 0}}}}"
            ),
            "spec.rules[0].http.paths[0].backend.service.port.number: must be >= 1, got 0",
        ),
        (
            one_path(
                "{path: /, pathType: Prefix, backend: {service: {name: web, port: {name: HTTP}}}}"
            ),
            "spec.rules[0].http.paths[0].backend.service.port.name: must be a port name such as "
            "'http' (at most 15 lowercase letters, digits and '-', with at least one letter), "
            "got 'HTTP'",
        ),
        (
            one_path(
                "{path: /, pathType: Prefix, "
                "backend: {service: {name: web, port: {name: http, number: 80}}}}"
            ),
            "spec.rules[0].http.paths[0].backend.service.port: give either name or number, "
            "not both",
        ),
        (
            one_path("{path: /, pathType: Prefix, backend: {service: {name: web, port: {}}}}"),
            "spec.rules[0].http.paths[0].backend.service.port: needs a name or a number",
        ),
        (
            one_path("{path: /, pathType: Prefix, backend: {}}"),
            "spec.rules[0].http.paths[0].backend.service: required (or resource)",
        ),
        (
            one_path(
                "{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}, "
                "resource: {kind: Bucket, name: b}}}"
            ),
            "spec.rules[0].http.paths[0].backend: give either service or resource, not both",
        ),
        (
            one_path(
                "{path: route1, pathType: Prefix, "
                "backend: {service: {name: web, port: {number: 80}}}}"
            ),
            "spec.rules[0].http.paths[0].path: must be an absolute path starting with '/', "
            "got 'route1'",
        ),
        (
            one_path("{pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}"),
            "spec.rules[0].http.paths[0].path: required when pathType is Exact",
        ),
        (
            one_path(
                "{path: /a/../b, pathType: Prefix, "
                "backend: {service: {name: web, port: {number: 80}}}}"
            ),
            "spec.rules[0].http.paths[0].path: must not contain '/../', got '/a/../b'",
        ),
        (
            "spec: {rules: [{host: 10.0.0.1}], defaultBackend: "
            "{service: {name: web, port: {number: 80}}}}\n",
            "spec.rules[0].host: must be a DNS name, not an IP address, got '10.0.0.1'",
        ),
        (
            "spec: {rules: [{host: Shop.Example.com}], defaultBackend: "
            "{service: {name: web, port: {number: 80}}}}\n",
            "spec.rules[0].host: must be a DNS name such as 'shop.example.com' or "
            "'*.example.com' (lowercase letters, digits, '-' and '.'), got 'Shop.Example.com'",
        ),
        (
            "spec: {rules: [{http: {paths: []}}]}\n",
            "spec.rules[0].http.paths: must have at least 1 item(s)",
        ),
        ("spec: {tls: [{secretName: t}]}\n", "spec: needs rules or a defaultBackend"),
        ("spec: {backend: {serviceName: web, servicePort: 80}}\n", "spec.backend: unknown field"),
        ("status: {}\n", "spec: required field is missing"),
    ],
)
def test_ingress_errors(body: str, expected: str) -> None:
    assert f"Ingress shop/web: {expected}" in errors(HEAD + body)


def test_ingress_v1beta1_is_refused_with_the_version_to_use() -> None:
    text = HEAD.replace("networking.k8s.io/v1", "networking.k8s.io/v1beta1") + "spec: {}\n"
    assert errors(text) == [
        "Ingress shop/web: apiVersion: version 'v1beta1' of Ingress.networking.k8s.io is not "
        "supported; use one of v1"
    ]


@pytest.mark.parametrize("name", ["ing", "ingress", "ingresses", "Ingress"])
def test_ingress_names_resolve(name: str) -> None:
    info = resolve(name)
    assert (info.group, info.kind) == ("networking.k8s.io", "Ingress")


# --- The documentation's examples --------------------------------------------------------

DOCS = Path(__file__).resolve().parents[3] / "docs" / "resources"


@pytest.mark.parametrize("page", ["ingress.md"])
def test_documented_examples_load(page: str) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)
    assert examples
    for example in examples:
        assert_round_trip(example)
