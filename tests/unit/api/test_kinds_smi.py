"""SMI kinds: TrafficSplit, TrafficTarget, HTTPRouteGroup and SMI's TCPRoute."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from gossamer.api.errors import ApplyError
from gossamer.api.kinds.smi import HTTPRouteGroup, SMITCPRoute, TrafficSplit, TrafficTarget
from gossamer.api.loader import dump_yaml, parse_text, to_document
from gossamer.api.model import Resource
from gossamer.api.registry import resolve

SCENARIOS = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios"


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


# --- The scenario's manifests ------------------------------------------------------------


def scenario_files() -> list[Path]:
    return sorted(SCENARIOS.glob("*.yaml"))


def test_there_are_scenario_manifests() -> None:
    assert scenario_files()


@pytest.mark.parametrize("path", scenario_files(), ids=lambda p: p.name)
def test_scenario_manifests_load_unchanged(path: Path) -> None:
    text = path.read_text()
    resources = parse_text(text, str(path))
    assert resources
    first = [to_document(r) for r in resources]
    assert [to_document(r) for r in parse_text(dump_yaml(first))] == first


def test_bookstore_manifests_mean_what_they_say() -> None:
    split = load_one((SCENARIOS / "bookstore-trafficsplit.yaml").read_text())
    assert isinstance(split, TrafficSplit)
    assert split.root_service_ref() == ("bookstore", "bookstore")
    assert [(b.service, b.weight) for b in split.spec.backends] == [
        ("bookstore", 50),
        ("bookstore-v2", 50),
    ]
    target, group = load((SCENARIOS / "bookstore-traffictarget.yaml").read_text())
    assert isinstance(target, TrafficTarget) and isinstance(group, HTTPRouteGroup)
    assert target.destination_identity() == ("bookstore", "bookstore")
    assert target.source_identities() == [("bookbuyer", "bookbuyer")]
    assert target.spec.rules[0].matches == ["buy-a-book", "books-bought"]
    bought = group.match_named("books-bought")
    assert bought is not None
    assert bought.header_map() == {"user-agent": ".*-http-client/*.*", "client-app": "bookbuyer"}
    assert bought.methods == ["GET"] and not bought.any_method
    # What the user wrote is what is stored: the list of single-key mappings stays a list.
    stored = to_document(group)["spec"]["matches"][0]["headers"]
    assert stored == [{"user-agent": ".*-http-client/*.*"}, {"client-app": "bookbuyer"}]


# --- TrafficSplit ------------------------------------------------------------------------

SPLIT = """
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: bookstore-split, namespace: bookstore}}
spec:
  service: bookstore.bookstore
  backends:
  - {{service: bookstore, weight: 50}}
  - {{service: bookstore-v2, weight: {weight}}}
"""


@pytest.mark.parametrize("version", ["v1alpha2", "v1alpha3", "v1alpha4"])
def test_trafficsplit_versions(version: str) -> None:
    text = SPLIT.format(version=version, weight=50)
    split = load_one(text)
    assert isinstance(split, TrafficSplit)
    assert split.total_weight == 100
    assert_round_trip(text)


def test_trafficsplit_negative_weight_message() -> None:
    assert errors(SPLIT.format(version="v1alpha2", weight=-5)) == [
        "TrafficSplit bookstore/bookstore-split: spec.backends[1].weight: must be >= 0, got -5"
    ]


def test_trafficsplit_zero_weight_is_fine_when_another_is_not() -> None:
    split = load_one(SPLIT.format(version="v1alpha2", weight=0))
    assert isinstance(split, TrafficSplit)
    assert split.total_weight == 50


def test_trafficsplit_with_route_group_matches() -> None:
    text = """
    apiVersion: split.smi-spec.io/v1alpha4
    kind: TrafficSplit
    metadata: {name: ab-test}
    spec:
      service: website
      matches:
      - {kind: HTTPRouteGroup, name: ab-test}
      - {kind: TCPRoute, name: db, apiGroup: specs.smi-spec.io}
      backends:
      - {service: website-v1, weight: 0}
      - {service: website-v2, weight: 100}
    """
    split = load_one(text)
    assert isinstance(split, TrafficSplit)
    assert split.root_service_ref() == ("default", "website")
    assert [m.kind for m in split.spec.matches] == ["HTTPRouteGroup", "TCPRoute"]
    assert_round_trip(text)


SPLIT_HEAD = """
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: s, namespace: shop}}
spec:
"""


@pytest.mark.parametrize(
    ("version", "spec", "expected"),
    [
        (
            "v1alpha2",
            "service: web\nbackends: [{service: web-v1, weight: '50'}]",
            "spec.backends[0].weight: expected an integer, got string '50'",
        ),
        (
            "v1alpha2",
            "service: web\nbackends: [{service: web-v1, weight: 0.5}]",
            "spec.backends[0].weight: expected an integer, got number 0.5",
        ),
        (
            "v1alpha2",
            "service: web\nbackends: [{service: web-v1}]",
            "spec.backends[0].weight: required field is missing",
        ),
        (
            "v1alpha2",
            "service: web\nbackends: [{service: web-v1, weight: 1, port: 80}]",
            "spec.backends[0].port: unknown field",
        ),
        (
            "v1alpha2",
            "backends: [{service: web-v1, weight: 1}]",
            "spec.service: required field is missing",
        ),
        (
            "v1alpha2",
            "service: web\nbackends: []",
            "spec.backends: must have at least 1 item(s)",
        ),
        (
            "v1alpha2",
            "service: Web\nbackends: [{service: web-v1, weight: 1}]",
            "spec.service: must be a DNS subdomain (lowercase letters, digits, '-' and '.', at "
            "most 253), got 'Web'",
        ),
        (
            "v1alpha3",
            "service: web\nmatches: [{kind: HTTPRoute, name: a}]\n"
            "backends: [{service: web-v1, weight: 1}]",
            "spec.matches[0].kind: must be one of 'HTTPRouteGroup' or 'TCPRoute', got 'HTTPRoute'",
        ),
        (
            "v1alpha2",
            "service: web\nbackends: [{service: web-v1, weight: 0}, {service: web-v2, weight: 0}]",
            "spec.backends: weights add up to 0; at least one backend needs a weight > 0",
        ),
        (
            "v1alpha2",
            "service: web\nbackends: [{service: web-v1, weight: 1}, {service: web-v1, weight: 2}]",
            "spec.backends[1].service: backend 'web-v1' is listed twice",
        ),
        (
            "v1alpha2",
            "service: web\nmatches: [{kind: HTTPRouteGroup, name: a}]\n"
            "backends: [{service: web-v1, weight: 1}]",
            "spec.matches: not available in split.smi-spec.io/v1alpha2; use v1alpha3 or later",
        ),
    ],
)
def test_trafficsplit_errors(version: str, spec: str, expected: str) -> None:
    text = SPLIT_HEAD.format(version=version) + textwrap.indent(spec, "  ") + "\n"
    assert f"TrafficSplit shop/s: {expected}" in errors(text)


def test_trafficsplit_v1alpha1_is_not_supported() -> None:
    text = SPLIT.format(version="v1alpha1", weight=50)
    assert errors(text) == [
        "TrafficSplit bookstore/bookstore-split: apiVersion: version 'v1alpha1' of "
        "TrafficSplit.split.smi-spec.io is not supported; use one of v1alpha2, v1alpha3, v1alpha4"
    ]


# --- TrafficTarget -----------------------------------------------------------------------

TARGET = """
apiVersion: access.smi-spec.io/{version}
kind: TrafficTarget
metadata: {{name: api-service-api, namespace: default}}
spec:
  destination: {{kind: ServiceAccount, name: api-service, namespace: default, port: 8080}}
  rules:
  - kind: HTTPRouteGroup
    name: api-service-routes
    matches: [api]
  - {{kind: TCPRoute, name: api-tcp}}
  sources:
  - {{kind: ServiceAccount, name: website-service, namespace: default}}
  - {{kind: ServiceAccount, name: payments-service}}
"""


@pytest.mark.parametrize("version", ["v1alpha2", "v1alpha3"])
def test_traffictarget_loads_and_round_trips(version: str) -> None:
    text = TARGET.format(version=version)
    target = load_one(text)
    assert isinstance(target, TrafficTarget)
    assert target.spec.destination.port == 8080
    assert target.spec.rules[1].matches == []  # every match of the route
    assert target.source_identities() == [
        ("default", "website-service"),
        ("default", "payments-service"),
    ]
    assert_round_trip(text)


def test_traffictarget_v1alpha1_top_level_layout_is_moved_under_spec() -> None:
    text = """
    apiVersion: access.smi-spec.io/v1alpha1
    kind: TrafficTarget
    metadata: {name: path-specific, namespace: default}
    destination: {kind: ServiceAccount, name: service-a, namespace: default, port: 8080}
    specs:
    - kind: HTTPRouteGroup
      name: the-routes
      matches: [metrics]
    sources:
    - {kind: ServiceAccount, name: prometheus, namespace: default}
    """
    target = load_one(text)
    assert isinstance(target, TrafficTarget)
    assert target.spec.rules[0].name == "the-routes"
    doc = to_document(target)
    assert doc["apiVersion"] == "access.smi-spec.io/v1alpha1"
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    assert doc["spec"]["rules"] == [
        {"kind": "HTTPRouteGroup", "name": "the-routes", "matches": ["metrics"]}
    ]
    assert_round_trip(text)


def test_traffictarget_v1alpha1_layout_errors_name_the_spec_path() -> None:
    text = """
    apiVersion: access.smi-spec.io/v1alpha1
    kind: TrafficTarget
    metadata: {name: t}
    destination: {kind: Pod, name: service-a}
    specs: []
    sources: []
    """
    assert errors(text) == [
        "TrafficTarget default/t: spec.destination.kind: must be one of 'ServiceAccount', got 'Pod'"
    ]


TARGET_HEAD = """
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: t, namespace: shop}
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "spec: {rules: [], sources: []}",
            "spec.destination: required field is missing",
        ),
        (
            "spec: {destination: {kind: ServiceAccount, name: a}, sources: []}",
            "spec.rules: required field is missing",
        ),
        (
            "spec: {destination: {kind: Service, name: a}, rules: [], sources: []}",
            "spec.destination.kind: must be one of 'ServiceAccount', got 'Service'",
        ),
        (
            "spec: {destination: {kind: ServiceAccount, name: a, port: 0}, rules: [], sources: []}",
            "spec.destination.port: must be >= 1, got 0",
        ),
        (
            "spec: {destination: {kind: ServiceAccount, name: a}, sources: [],"
            " rules: [{kind: HTTPRoute, name: r}]}",
            "spec.rules[0].kind: must be one of 'HTTPRouteGroup', 'TCPRoute' or 'UDPRoute', "
            "got 'HTTPRoute'",
        ),
        (
            "spec: {destination: {kind: ServiceAccount, name: a}, sources: [],"
            " rules: [{kind: HTTPRouteGroup, name: r, matches: metrics}]}",
            "spec.rules[0].matches: expected a list, got string 'metrics'",
        ),
        (
            "spec: {destination: {kind: ServiceAccount, name: a}, rules: [],"
            " sources: [{kind: ServiceAccount}]}",
            "spec.sources[0].name: required field is missing",
        ),
        (
            "spec: {destination: {kind: ServiceAccount, name: a}, rules: [], sources: [],"
            " specs: []}",
            "spec.specs: unknown field",
        ),
        (
            "destination: {kind: ServiceAccount, name: a}\nrules: []\nsources: []",
            "destination: unknown field",
        ),
    ],
)
def test_traffictarget_errors(body: str, expected: str) -> None:
    assert f"TrafficTarget shop/t: {expected}" in errors(TARGET_HEAD + body + "\n")


# --- HTTPRouteGroup ----------------------------------------------------------------------

ROUTE_GROUP = """
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: the-routes, namespace: default}
spec:
  matches:
  - name: android-insiders
    headers:
      user-agent: ".*Android.*"
      Cookie: "^(.*?;)?(type=insider)(;.*)?$"
  - name: metrics
    pathRegex: "/metrics"
    methods: [GET, HEAD]
  - name: everything
    pathRegex: ".*"
    methods: ["*"]
"""


def test_httproutegroup_mapping_headers() -> None:
    group = load_one(ROUTE_GROUP)
    assert isinstance(group, HTTPRouteGroup)
    android = group.match_named("android-insiders")
    assert android is not None
    assert android.header_map() == {
        "user-agent": ".*Android.*",
        "cookie": "^(.*?;)?(type=insider)(;.*)?$",
    }
    assert android.any_method and android.path_regex is None
    everything = group.match_named("everything")
    assert everything is not None and everything.any_method
    metrics = group.match_named("metrics")
    assert metrics is not None and metrics.header_map() == {}
    assert group.match_named("nothing") is None
    # The mapping form stays a mapping.
    assert to_document(group)["spec"]["matches"][0]["headers"] == {
        "user-agent": ".*Android.*",
        "Cookie": "^(.*?;)?(type=insider)(;.*)?$",
    }
    assert_round_trip(ROUTE_GROUP)


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2"])
def test_httproutegroup_old_top_level_layout(version: str) -> None:
    headers = "  headers: [{user-agent: '.*Firefox.*'}]\n" if version == "v1alpha2" else ""
    text = (
        f"apiVersion: specs.smi-spec.io/{version}\nkind: HTTPRouteGroup\n"
        "metadata: {name: the-routes}\nmatches:\n- name: metrics\n  pathRegex: /metrics\n"
        "  methods: [GET]\n" + headers
    )
    group = load_one(text)
    assert isinstance(group, HTTPRouteGroup)
    assert group.spec.matches[0].name == "metrics"
    assert "matches" in to_document(group)["spec"]
    assert_round_trip(text)


@pytest.mark.parametrize("version", ["v1alpha3", "v1alpha4"])
def test_httproutegroup_spec_layout(version: str) -> None:
    load(ROUTE_GROUP.replace("v1alpha4", version))


RG_HEAD = """
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: g, namespace: shop}
spec:
  matches:
"""


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        (
            "- {name: a, pathRegex: '/(a'}",
            "spec.matches[0].pathRegex: '/(a' is not a valid regular expression: missing ), "
            "unterminated subpattern at position 1",
        ),
        (
            "- {name: a, headers: [{user-agent: '*Firefox'}]}",
            "spec.matches[0].headers[0].user-agent: '*Firefox' is not a valid regular "
            "expression: nothing to repeat at position 0",
        ),
        (
            "- {name: a, headers: {user-agent: '(x'}}",
            "spec.matches[0].headers.user-agent: '(x' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            "- {name: a, methods: [FETCH]}",
            "spec.matches[0].methods[0]: must be one of '*', 'GET', 'HEAD', 'PUT', 'POST', "
            "'DELETE', 'CONNECT', 'OPTIONS', 'TRACE' or 'PATCH', got 'FETCH'",
        ),
        (
            "- {name: a, methods: GET}",
            "spec.matches[0].methods: expected a list, got string 'GET'",
        ),
        (
            "- {pathRegex: /a}",
            "spec.matches[0].name: required field is missing",
        ),
        (
            "- {name: a, headers: user-agent}",
            "spec.matches[0].headers: expected a mapping, got string 'user-agent'",
        ),
        (
            "- {name: a, headers: [{x-a: 1}]}",
            "spec.matches[0].headers[0].x-a: expected a string, got integer 1",
        ),
        (
            "- {name: a, headers: [{x-a: a}, {X-A: b}]}",
            "spec.matches[0].headers[1].X-A: header 'X-A' is given twice",
        ),
        (
            "- {name: a, headers: [{}]}",
            "spec.matches[0].headers[0]: must name at least one header",
        ),
        (
            "- {name: a}\n- {name: a}",
            "spec.matches[1].name: match name 'a' is used twice",
        ),
        (
            "- {name: a, path: /a}",
            "spec.matches[0].path: unknown field",
        ),
    ],
)
def test_httproutegroup_errors(matches: str, expected: str) -> None:
    text = RG_HEAD + textwrap.indent(matches, "  ") + "\n"
    assert f"HTTPRouteGroup shop/g: {expected}" in errors(text)


def test_httproutegroup_headers_did_not_exist_in_v1alpha1() -> None:
    text = """
    apiVersion: specs.smi-spec.io/v1alpha1
    kind: HTTPRouteGroup
    metadata: {name: g}
    matches:
    - {name: a, headers: {user-agent: x}}
    """
    assert errors(text) == [
        "HTTPRouteGroup default/g: spec.matches[0].headers: not available in "
        "specs.smi-spec.io/v1alpha1; use v1alpha2 or later"
    ]


def test_httproutegroup_needs_matches() -> None:
    text = "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: g}\n"
    assert errors(text) == ["HTTPRouteGroup default/g: spec: required field is missing"]


# --- TCPRoute (SMI) ----------------------------------------------------------------------


def test_smi_tcproute_with_ports() -> None:
    text = """
    apiVersion: specs.smi-spec.io/v1alpha4
    kind: TCPRoute
    metadata: {name: mysql}
    spec:
      matches:
        ports: [3306, 6446]
    """
    route = load_one(text)
    assert isinstance(route, SMITCPRoute)
    assert route.ports == [3306, 6446]
    assert_round_trip(text)


@pytest.mark.parametrize("version", ["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"])
def test_smi_tcproute_without_spec(version: str) -> None:
    text = f"apiVersion: specs.smi-spec.io/{version}\nkind: TCPRoute\nmetadata: {{name: tcp}}\n"
    route = load_one(text)
    assert isinstance(route, SMITCPRoute)
    assert route.ports == []
    assert "spec" not in to_document(route)
    assert_round_trip(text)


TCP_HEAD = """
apiVersion: specs.smi-spec.io/{version}
kind: TCPRoute
metadata: {{name: t, namespace: db}}
"""


@pytest.mark.parametrize(
    ("version", "body", "expected"),
    [
        (
            "v1alpha3",
            "spec: {matches: {ports: [3306]}}",
            "spec.matches: not available in specs.smi-spec.io/v1alpha3; use v1alpha4 or later",
        ),
        (
            "v1alpha4",
            "spec: {matches: {ports: [3306, 3306]}}",
            "spec.matches.ports[1]: port 3306 is listed twice",
        ),
        (
            "v1alpha4",
            "spec: {matches: {ports: [0]}}",
            "spec.matches.ports[0]: must be >= 1, got 0",
        ),
        (
            "v1alpha4",
            "spec: {matches: {ports: ['3306']}}",
            "spec.matches.ports[0]: expected an integer, got string '3306'",
        ),
    ],
)
def test_smi_tcproute_errors(version: str, body: str, expected: str) -> None:
    text = TCP_HEAD.format(version=version) + body + "\n"
    assert f"TCPRoute db/t: {expected}" in errors(text)


def test_smi_tcproute_matches_is_a_mapping() -> None:
    text = TCP_HEAD.format(version="v1alpha4") + "spec: {matches: [{ports: [3306]}]}\n"
    (line,) = errors(text)
    assert line.startswith("TCPRoute db/t: spec.matches: expected a mapping, got a list")


def test_both_tcproutes_in_one_file() -> None:
    text = """
    apiVersion: specs.smi-spec.io/v1alpha4
    kind: TCPRoute
    metadata: {name: tcp}
    ---
    apiVersion: gateway.networking.k8s.io/v1alpha2
    kind: TCPRoute
    metadata: {name: tcp}
    spec:
      rules: [{backendRefs: [{name: tcp-echo, port: 9000}]}]
    """
    smi, gateway_api = load(text)
    assert smi.GROUP == "specs.smi-spec.io"
    assert gateway_api.GROUP == "gateway.networking.k8s.io"


# --- Names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "group", "kind"),
    [
        ("ts", "split.smi-spec.io", "TrafficSplit"),
        ("trafficsplits", "split.smi-spec.io", "TrafficSplit"),
        ("TrafficSplit", "split.smi-spec.io", "TrafficSplit"),
        ("tt", "access.smi-spec.io", "TrafficTarget"),
        ("traffictargets", "access.smi-spec.io", "TrafficTarget"),
        ("hrg", "specs.smi-spec.io", "HTTPRouteGroup"),
        ("htr", "specs.smi-spec.io", "HTTPRouteGroup"),
        ("httproutegroups", "specs.smi-spec.io", "HTTPRouteGroup"),
        ("tcproute", "gateway.networking.k8s.io", "TCPRoute"),
        ("tcproutes", "gateway.networking.k8s.io", "TCPRoute"),
        ("tcproute.specs.smi-spec.io", "specs.smi-spec.io", "TCPRoute"),
        ("tcproutes.specs.smi-spec.io", "specs.smi-spec.io", "TCPRoute"),
    ],
)
def test_smi_names_resolve(name: str, group: str, kind: str) -> None:
    info = resolve(name)
    assert (info.group, info.kind) == (group, kind)


# --- The documentation's examples --------------------------------------------------------

DOCS = Path(__file__).resolve().parents[3] / "docs" / "resources"


@pytest.mark.parametrize(
    "page", ["trafficsplit.md", "traffictarget.md", "httproutegroup.md", "smi-tcproute.md"]
)
def test_documented_examples_load(page: str) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)
    assert examples
    for example in examples:
        assert_round_trip(example)
