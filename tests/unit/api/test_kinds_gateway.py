"""Gateway API kinds: HTTPRoute, GRPCRoute, TCPRoute, Gateway, GatewayClass."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from gossamer.api.errors import ApplyError
from gossamer.api.kinds.gateway import (
    Gateway,
    GatewayClass,
    GRPCRoute,
    HTTPRoute,
    LabelSelector,
    TCPRoute,
)
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


# --- HTTPRoute ---------------------------------------------------------------------------

FULL_HTTPROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: benigno
  namespace: kong-mesh-app
spec:
  parentRefs:
  - group: ""
    kind: Service
    name: benigno
    port: 5000
  - name: edge
    namespace: gateways
    sectionName: http
  hostnames: ["benigno.example.com", "*.example.com"]
  rules:
  - name: canary
    matches:
    - path: {type: PathPrefix, value: /hello}
      headers:
      - {name: x-canary, value: "true"}
      - {type: RegularExpression, name: user-agent, value: ".*curl.*"}
      queryParams:
      - {name: debug, value: "1"}
      method: GET
    - path: {type: Exact, value: /hello/exact}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-route, value: canary}]
        add: [{name: x-trace, value: "1"}]
        remove: [x-internal]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: x-served-by, value: gossamer}]
    - type: RequestMirror
      requestMirror:
        backendRef: {name: benigno-shadow, port: 5000}
        percent: 10
    - type: URLRewrite
      urlRewrite:
        hostname: benigno.internal
        path: {type: ReplaceFullPath, replaceFullPath: /hi}
    backendRefs:
    - name: benigno
      port: 5000
      weight: 90
    - name: benigno-v2
      port: 5000
      weight: 10
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier:
          set: [{name: x-version, value: v2}]
    timeouts: {request: 10s, backendRequest: 2s}
    retry: {codes: [503], attempts: 2, backoff: 100ms}
    sessionPersistence:
      sessionName: sid
      type: Cookie
      absoluteTimeout: 1h
      cookieConfig: {lifetimeType: Permanent}
  - matches:
    - path: {type: RegularExpression, value: "^/v[0-9]+/.*"}
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: example.com, port: 443, statusCode: 301}
  - filters:
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Auth, name: basic}
    - type: CORS
      cors: {allowOrigins: ["https://example.com"], allowMethods: [GET], maxAge: 60}
    backendRefs:
    - {name: benigno, port: 5000}
"""


def test_full_httproute_loads_and_round_trips() -> None:
    route = load_one(FULL_HTTPROUTE)
    assert isinstance(route, HTTPRoute)
    assert route.ref == "HTTPRoute kong-mesh-app/benigno"
    assert route.api_version == "gateway.networking.k8s.io/v1"
    mesh_parent, gateway_parent = route.spec.parent_refs
    assert mesh_parent.is_service and not mesh_parent.is_gateway
    assert gateway_parent.is_gateway and gateway_parent.group == "gateway.networking.k8s.io"
    rule = route.spec.rules[0]
    assert [b.weight for b in rule.backend_refs] == [90, 10]
    assert rule.filters[2].request_mirror is not None
    assert rule.filters[2].request_mirror.ratio == pytest.approx(0.1)
    assert rule.matches[0].headers[0].type == "Exact"
    assert rule.matches[0].headers[1].type == "RegularExpression"
    assert route.spec.rules[1].filters[0].request_redirect is not None
    assert route.spec.rules[1].filters[0].request_redirect.status_code == 301
    assert_round_trip(FULL_HTTPROUTE)


def test_httproute_dump_keeps_only_what_was_written() -> None:
    text = """
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: r}
    spec:
      parentRefs: [{name: edge}]
      rules:
      - backendRefs: [{name: web, port: 80}]
    """
    doc = to_document(load_one(text))
    assert doc["spec"] == {
        "parentRefs": [{"name": "edge"}],
        "rules": [{"backendRefs": [{"name": "web", "port": 80}]}],
    }


def test_httproute_upstream_defaults() -> None:
    route = load_one(
        """
        apiVersion: gateway.networking.k8s.io/v1beta1
        kind: HTTPRoute
        metadata: {name: r}
        spec:
          parentRefs: [{name: edge}]
          rules:
          - matches: [{headers: [{name: x-a, value: b}]}]
            backendRefs: [{name: web, port: 80}]
          - backendRefs: [{name: web, port: 80}]
          - filters:
            - type: RequestRedirect
              requestRedirect: {hostname: example.com}
        """
    )
    assert isinstance(route, HTTPRoute)
    parent = route.spec.parent_refs[0]
    assert (parent.group, parent.kind) == ("gateway.networking.k8s.io", "Gateway")
    first, second, third = route.spec.rules
    assert first.matches[0].path.type == "PathPrefix"
    assert first.matches[0].path.value == "/"
    assert first.matches[0].headers[0].type == "Exact"
    backend = first.backend_refs[0]
    assert (backend.group, backend.kind, backend.weight) == ("", "Service", 1)
    assert third.filters[0].request_redirect is not None
    assert third.filters[0].request_redirect.status_code == 302
    # A rule without matches matches every request.
    assert len(second.matches) == 1 and second.matches[0].path.value == "/"


def test_httproute_without_rules_gets_the_default_rule() -> None:
    route = load_one(
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: r}
        spec: {parentRefs: [{name: edge}]}
        """
    )
    assert isinstance(route, HTTPRoute)
    assert len(route.spec.rules) == 1
    assert route.spec.rules[0].effective_matches[0].path.type == "PathPrefix"
    assert "rules" not in to_document(route)["spec"]


def test_canary_route_and_prefix_stripping_ingress_route() -> None:
    text = """
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: benigno-canary, namespace: kong-mesh-app}
    spec:
      parentRefs: [{group: "", kind: Service, name: benigno, port: 5000}]
      rules:
      - backendRefs:
        - {name: benigno-v1, port: 5000, weight: 90}
        - {name: benigno-v2, port: 5000, weight: 10}
    ---
    apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: {name: route1, namespace: kong-mesh-app}
    spec:
      parentRefs: [{name: ingress, sectionName: http}]
      rules:
      - matches: [{path: {type: PathPrefix, value: /route1}}]
        filters:
        - type: URLRewrite
          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
        backendRefs: [{name: magnanimo, port: 4000}]
    """
    _canary, strip = load(text)
    assert isinstance(strip, HTTPRoute)
    assert strip.spec.rules[0].filters[0].prefix_replacement() == "/"
    assert_round_trip(text)


ROUTE_HEAD = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: shop}
spec:
"""


def route_errors(spec: str) -> list[str]:
    return errors(ROUTE_HEAD + textwrap.indent(textwrap.dedent(spec), "  "))


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "rules: [{backendRefs: [{name: web, port: 80, weight: '5'}]}]",
            "spec.rules[0].backendRefs[0].weight: expected an integer, got string '5'",
        ),
        (
            "rules: [{backendRefs: [{name: web, port: 80, weight: -1}]}]",
            "spec.rules[0].backendRefs[0].weight: must be >= 0, got -1",
        ),
        (
            "rules: [{backendRefs: [{name: web, port: 80, weight: 1000001}]}]",
            "spec.rules[0].backendRefs[0].weight: must be <= 1000000, got 1000001",
        ),
        (
            "rules: [{backendRefs: [{name: web, port: 80, weigth: 1}]}]",
            "spec.rules[0].backendRefs[0].weigth: unknown field",
        ),
        (
            "rules: [{backendRefs: [{port: 80}]}]",
            "spec.rules[0].backendRefs[0].name: required field is missing",
        ),
        (
            "rules: [{matches: [{path: {type: Prefix, value: /a}}]}]",
            "spec.rules[0].matches[0].path.type: must be one of 'Exact', 'PathPrefix' or "
            "'RegularExpression', got 'Prefix'",
        ),
        (
            "rules: [{matches: [{method: get}]}]",
            "spec.rules[0].matches[0].method: must be one of 'GET', 'HEAD', 'POST', 'PUT', "
            "'DELETE', 'CONNECT', 'OPTIONS', 'TRACE' or 'PATCH', got 'get'",
        ),
        (
            "rules: [{filters: [{type: Rewrite}]}]",
            "spec.rules[0].filters[0].type: must be one of 'RequestHeaderModifier', "
            "'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', "
            "'CORS' or 'ExtensionRef', got 'Rewrite'",
        ),
        (
            "rules: [{matches: [{headers: [{name: 'x y', value: a}]}]}]",
            "spec.rules[0].matches[0].headers[0].name: must be an HTTP header name such as "
            "'x-user', got 'x y'",
        ),
        (
            "hostnames: [Example.com]",
            "spec.hostnames[0]: must be a hostname such as 'example.com' or '*.example.com' "
            "(lowercase letters, digits, '-' and '.'), got 'Example.com'",
        ),
        (
            "parentRefs: [{name: edge, port: 0}]",
            "spec.parentRefs[0].port: must be >= 1, got 0",
        ),
        (
            "rules: []",
            "spec.rules: must have at least 1 item(s)",
        ),
        (
            "rules: [{timeouts: {request: ten seconds}}]",
            "spec.rules[0].timeouts.request: must be a duration such as '500ms', '5s' or "
            "'1m30s', got 'ten seconds'",
        ),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 404}}]}]",
            "spec.rules[0].filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, "
            "307 or 308, got 404",
        ),
    ],
)
def test_httproute_schema_errors(spec: str, expected: str) -> None:
    assert f"HTTPRoute shop/r: {expected}" in route_errors(spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "parentRefs: [{kind: Service, name: web}]",
            'spec.parentRefs[0].group: must be "" (the core API group) when kind is Service; '
            "the default group is gateway.networking.k8s.io",
        ),
        (
            "parentRefs: [{name: edge}, {name: edge}]",
            "spec.parentRefs[1]: parent Gateway 'edge' is listed twice",
        ),
        (
            "parentRefs: [{name: edge}, {name: edge, sectionName: http}]",
            "spec.parentRefs[1]: every reference to parent Gateway 'edge' must set the same of "
            "sectionName and port",
        ),
        (
            "rules: [{backendRefs: [{name: web}]}]",
            "spec.rules[0].backendRefs[0].port: required when the backend is a Service",
        ),
        (
            "rules: [{name: a}, {name: a}]",
            "spec.rules[1].name: rule name 'a' is used twice",
        ),
        (
            "rules: [{matches: [{path: {value: hello}}]}]",
            "spec.rules[0].matches[0].path.value: must be an absolute path starting with '/' "
            "when type is PathPrefix",
        ),
        (
            "rules: [{matches: [{path: {type: Exact, value: /a//b}}]}]",
            "spec.rules[0].matches[0].path.value: must not contain '//' when type is Exact, "
            "got '/a//b'",
        ),
        (
            "rules: [{matches: [{path: {type: RegularExpression, value: '/(a'}}]}]",
            "spec.rules[0].matches[0].path.value: '/(a' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 1",
        ),
        (
            "rules: [{matches: [{headers: [{type: RegularExpression, name: a, value: '['}]}]}]",
            "spec.rules[0].matches[0].headers[0].value: '[' is not a valid regular expression: "
            "unterminated character set at position 0",
        ),
        (
            "rules: [{matches: [{headers: [{name: X-A, value: a}, {name: x-a, value: b}]}]}]",
            "spec.rules[0].matches[0].headers[1].name: header 'x-a' is matched twice",
        ),
        (
            "rules: [{filters: [{type: URLRewrite, requestHeaderModifier: {remove: [a]}}]}]",
            "spec.rules[0].filters[0].urlRewrite: required when type is URLRewrite",
        ),
        (
            "rules: [{filters: [{type: URLRewrite, urlRewrite: {}, "
            "requestHeaderModifier: {remove: [a]}}]}]",
            "spec.rules[0].filters[0].requestHeaderModifier: not allowed when type is URLRewrite",
        ),
        (
            "rules: [{filters: [{type: URLRewrite, urlRewrite: {}}, "
            "{type: URLRewrite, urlRewrite: {}}]}]",
            "spec.rules[0].filters[1].type: a URLRewrite filter may appear only once",
        ),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {}}, "
            "{type: URLRewrite, urlRewrite: {}}]}]",
            "spec.rules[0].filters[1].type: URLRewrite cannot be combined with RequestRedirect",
        ),
        (
            "rules: [{filters: [{type: RequestRedirect, requestRedirect: {}}], "
            "backendRefs: [{name: web, port: 80}]}]",
            "spec.rules[0].backendRefs: not allowed in a rule with a RequestRedirect filter",
        ),
        (
            "rules: [{matches: [{path: {value: /a}}, {path: {value: /b}}], "
            "filters: [{type: URLRewrite, urlRewrite: "
            "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]}]",
            "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch: needs the rule to "
            "have exactly one match, with a PathPrefix path",
        ),
        (
            "rules: [{filters: [{type: URLRewrite, urlRewrite: "
            "{path: {type: ReplaceFullPath, replacePrefixMatch: /}}}]}]",
            "spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: required when type is "
            "ReplaceFullPath",
        ),
        (
            "rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: "
            "{set: [{name: X-A, value: a}], remove: [x-a]}}]}]",
            "spec.rules[0].filters[0].requestHeaderModifier.remove[0]: header 'x-a' already "
            "has an action (set)",
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: "
            "{backendRef: {name: s, port: 80}, percent: 5, fraction: {numerator: 1}}}]}]",
            "spec.rules[0].filters[0].requestMirror.fraction: not allowed together with percent",
        ),
        (
            "rules: [{filters: [{type: RequestMirror, requestMirror: "
            "{backendRef: {name: s, port: 80}, fraction: {numerator: 3, denominator: 2}}}]}]",
            "spec.rules[0].filters[0].requestMirror.fraction.numerator: must be <= denominator "
            "(2), got 3",
        ),
        (
            "rules: [{timeouts: {request: 1s, backendRequest: 2s}}]",
            "spec.rules[0].timeouts.backendRequest: must not be longer than the request timeout "
            "(1s), got '2s'",
        ),
        (
            "rules: [{sessionPersistence: {type: Header, cookieConfig: {}}}]",
            "spec.rules[0].sessionPersistence.cookieConfig: only allowed when type is Cookie",
        ),
        (
            "rules: [{backendRefs: [{name: web, port: 80, filters: ["
            "{type: RequestRedirect, requestRedirect: {}}, "
            "{type: URLRewrite, urlRewrite: {}}]}]}]",
            "spec.rules[0].backendRefs[0].filters[1].type: URLRewrite cannot be combined with "
            "RequestRedirect",
        ),
    ],
)
def test_httproute_semantic_errors(spec: str, expected: str) -> None:
    assert f"HTTPRoute shop/r: {expected}" in route_errors(spec)


def test_httproute_timeout_zero_disables_the_limit() -> None:
    load(ROUTE_HEAD + "  rules: [{timeouts: {request: 0s, backendRequest: 5s}}]\n")


def test_httproute_reports_every_problem_at_once() -> None:
    lines = route_errors(
        """
        parentRefs: [{kind: Service, name: web}]
        rules: [{backendRefs: [{name: web}]}, {name: a}, {name: a}]
        """
    )
    assert len(lines) == 3


def test_httproute_versions() -> None:
    for version in ("v1beta1", "v1"):
        load(f"apiVersion: gateway.networking.k8s.io/{version}\nkind: HTTPRoute\n"
             "metadata: {name: r}\nspec: {}\n")  # fmt: skip
    assert errors(
        "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: HTTPRoute\n"
        "metadata: {name: r}\nspec: {}\n"
    ) == [
        "HTTPRoute default/r: apiVersion: version 'v1alpha2' of "
        "HTTPRoute.gateway.networking.k8s.io is not supported; use one of v1beta1, v1"
    ]


def test_httproute_needs_a_spec() -> None:
    assert errors(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
    ) == ["HTTPRoute default/r: spec: required field is missing"]


# --- GRPCRoute ---------------------------------------------------------------------------

FULL_GRPCROUTE = """
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: greeter, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: greeter, port: 50051}]
  hostnames: [greeter.demo]
  rules:
  - matches:
    - method: {service: helloworld.Greeter, method: SayHello}
      headers: [{name: x-canary, value: "1"}]
    - method: {type: RegularExpression, service: "helloworld\\\\..*"}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-grpc, value: "1"}]}
    backendRefs:
    - {name: greeter-v1, port: 50051, weight: 80}
    - name: greeter-v2
      port: 50051
      weight: 20
      filters:
      - type: ResponseHeaderModifier
        responseHeaderModifier: {set: [{name: x-version, value: v2}]}
  - backendRefs: [{name: greeter-v1, port: 50051}]
"""


def test_full_grpcroute_loads_and_round_trips() -> None:
    route = load_one(FULL_GRPCROUTE)
    assert isinstance(route, GRPCRoute)
    method = route.spec.rules[0].matches[0].method
    assert method is not None and method.type == "Exact"
    assert route.spec.rules[1].matches == []
    assert_round_trip(FULL_GRPCROUTE)


def test_grpcroute_v1alpha2_is_accepted() -> None:
    route = load_one(
        "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: GRPCRoute\n"
        "metadata: {name: g}\nspec: {rules: [{backendRefs: [{name: g, port: 50051}]}]}\n"
    )
    assert route.api_version == "gateway.networking.k8s.io/v1alpha2"


GRPC_HEAD = """
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: g, namespace: demo}
spec:
"""


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "rules: [{matches: [{method: {}}]}]",
            "spec.rules[0].matches[0].method: needs service or method (or both)",
        ),
        (
            "rules: [{matches: [{method: {service: 'hello world'}}]}]",
            "spec.rules[0].matches[0].method.service: must be a gRPC service name such as "
            "'helloworld.Greeter', got 'hello world'",
        ),
        (
            "rules: [{matches: [{method: {method: Say.Hello}}]}]",
            "spec.rules[0].matches[0].method.method: must be a gRPC method name such as "
            "'SayHello', got 'Say.Hello'",
        ),
        (
            "rules: [{matches: [{method: {type: RegularExpression, method: '('}}]}]",
            "spec.rules[0].matches[0].method.method: '(' is not a valid regular expression: "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            "rules: [{matches: [{method: {type: Prefix, method: Say}}]}]",
            "spec.rules[0].matches[0].method.type: must be one of 'Exact' or "
            "'RegularExpression', got 'Prefix'",
        ),
        (
            "rules: [{filters: [{type: URLRewrite}]}]",
            "spec.rules[0].filters[0].type: must be one of 'RequestHeaderModifier', "
            "'ResponseHeaderModifier', 'RequestMirror' or 'ExtensionRef', got 'URLRewrite'",
        ),
        (
            "rules: [{filters: [{type: RequestMirror}]}]",
            "spec.rules[0].filters[0].requestMirror: required when type is RequestMirror",
        ),
        (
            "rules: [{backendRefs: [{name: g}]}]",
            "spec.rules[0].backendRefs[0].port: required when the backend is a Service",
        ),
        (
            "rules: [{timeouts: {request: 1s}}]",
            "spec.rules[0].timeouts: unknown field",
        ),
    ],
)
def test_grpcroute_errors(spec: str, expected: str) -> None:
    text = GRPC_HEAD + textwrap.indent(spec, "  ") + "\n"
    assert f"GRPCRoute demo/g: {expected}" in errors(text)


# --- TCPRoute ----------------------------------------------------------------------------

TCP_ECHO = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ingress, namespace: istio-io-tcp-traffic-shifting}
spec:
  gatewayClassName: gossamer
  listeners:
  - name: tcp
    port: 31400
    protocol: TCP
    allowedRoutes:
      kinds: [{kind: TCPRoute}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tcp-echo, namespace: istio-io-tcp-traffic-shifting}
spec:
  parentRefs: [{name: ingress, sectionName: tcp}]
  rules:
  - backendRefs:
    - {name: tcp-echo-v1, port: 9000, weight: 80}
    - {name: tcp-echo-v2, port: 9000, weight: 20}
"""


def test_tcp_echo_gateway_and_route() -> None:
    gateway, route = load(TCP_ECHO)
    assert isinstance(gateway, Gateway) and isinstance(route, TCPRoute)
    assert [b.weight for b in route.spec.rules[0].backend_refs] == [80, 20]
    kinds = gateway.spec.listeners[0].allowed_routes.kinds
    assert (kinds[0].group, kinds[0].kind) == ("gateway.networking.k8s.io", "TCPRoute")
    assert_round_trip(TCP_ECHO)


TCP_HEAD = """
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: demo}
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("spec: {parentRefs: [{name: gw}]}", "spec.rules: required field is missing"),
        ("spec: {rules: []}", "spec.rules: must have at least 1 item(s)"),
        (
            "spec: {rules: [{backendRefs: []}]}",
            "spec.rules[0].backendRefs: must have at least 1 item(s)",
        ),
        (
            "spec: {rules: [{backendRefs: [{name: a, port: 9000, filters: []}]}]}",
            "spec.rules[0].backendRefs[0].filters: unknown field",
        ),
        (
            "spec: {rules: [{backendRefs: [{name: a}]}]}",
            "spec.rules[0].backendRefs[0].port: required when the backend is a Service",
        ),
    ],
)
def test_tcproute_errors(body: str, expected: str) -> None:
    assert f"TCPRoute demo/t: {expected}" in errors(TCP_HEAD + body + "\n")


def test_tcproute_v1_is_not_a_version() -> None:
    text = TCP_HEAD.replace("v1alpha2", "v1") + "spec: {rules: [{backendRefs: [{name: a}]}]}\n"
    assert errors(text) == [
        "TCPRoute demo/t: apiVersion: version 'v1' of TCPRoute.gateway.networking.k8s.io is "
        "not supported; use one of v1alpha2"
    ]


# --- Gateway -----------------------------------------------------------------------------

FULL_GATEWAY = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: gateways}
spec:
  gatewayClassName: gossamer
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    hostname: "*.example.com"
    allowedRoutes:
      namespaces:
        from: Selector
        selector:
          matchLabels: {expose: "true"}
          matchExpressions: [{key: env, operator: In, values: [prod]}]
  - name: https
    port: 443
    protocol: HTTPS
    hostname: shop.example.com
    tls:
      mode: Terminate
      certificateRefs: [{name: shop-cert}]
      options: {gossamer.io/min-version: "1.2"}
    allowedRoutes: {namespaces: {from: All}}
  - name: tls
    port: 8443
    protocol: TLS
    tls: {mode: Passthrough}
  - name: tcp
    port: 31400
    protocol: TCP
  - name: udp
    port: 5353
    protocol: UDP
  addresses:
  - value: 127.0.0.1
  - {type: Hostname, value: edge.example.com}
  infrastructure:
    labels: {team: edge}
"""


def test_full_gateway_loads_and_round_trips() -> None:
    gateway = load_one(FULL_GATEWAY)
    assert isinstance(gateway, Gateway)
    http, https, tls, tcp, _ = gateway.spec.listeners
    assert http.allowed_routes.namespaces.from_ == "Selector"
    assert tcp.allowed_routes.namespaces.from_ == "Same"  # the upstream default
    assert https.tls is not None and https.tls.certificate_refs[0].kind == "Secret"
    assert tls.tls is not None and tls.tls.mode == "Passthrough"
    assert gateway.spec.addresses[0].type == "IPAddress"
    selector = http.allowed_routes.namespaces.selector
    assert selector is not None
    assert selector.to_selector().matches({"expose": "true", "env": "prod"})
    assert not selector.to_selector().matches({"expose": "true", "env": "dev"})
    doc = to_document(gateway)
    assert doc["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["from"] == "Selector"
    assert "allowedRoutes" not in doc["spec"]["listeners"][3]
    assert_round_trip(FULL_GATEWAY)


def test_gateway_v1beta1_is_accepted() -> None:
    load(FULL_GATEWAY.replace("gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"))


GATEWAY_HEAD = """
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: gateways}
spec:
  gatewayClassName: gossamer
"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "  listeners: [{name: x, port: 80, protocol: SCTP}]",
            "spec.listeners[0].protocol: must be one of 'HTTP', 'HTTPS', 'TLS', 'TCP' or 'UDP', "
            "got 'SCTP'",
        ),
        ("  listeners: []", "spec.listeners: must have at least 1 item(s)"),
        (
            "  listeners: [{name: x, port: 80}]",
            "spec.listeners[0].protocol: required field is missing",
        ),
        (
            "  listeners: [{name: x, port: 70000, protocol: HTTP}]",
            "spec.listeners[0].port: must be <= 65535, got 70000",
        ),
        (
            "  listeners: [{name: x, port: '80', protocol: HTTP}]",
            "spec.listeners[0].port: expected an integer, got string '80'",
        ),
        (
            "  listeners: [{name: X, port: 80, protocol: HTTP}]",
            "spec.listeners[0].name: must be a DNS subdomain (lowercase letters, digits, '-' "
            "and '.', at most 253), got 'X'",
        ),
        (
            "  listeners: [{name: x, port: 80, protocol: HTTP, "
            "allowedRoutes: {namespaces: {from: Any}}}]",
            "spec.listeners[0].allowedRoutes.namespaces.from: must be one of 'All', 'Same' or "
            "'Selector', got 'Any'",
        ),
        (
            "  listeners: [{name: x, port: 80, protocol: HTTP, tls: {mode: Terminate}}]",
            "spec.listeners[0].tls: not allowed when protocol is HTTP",
        ),
        (
            "  listeners: [{name: x, port: 443, protocol: HTTPS}]",
            "spec.listeners[0].tls: required when protocol is HTTPS",
        ),
        (
            "  listeners: [{name: x, port: 443, protocol: HTTPS, tls: {mode: Passthrough}}]",
            "spec.listeners[0].tls.mode: must be Terminate when protocol is HTTPS",
        ),
        (
            "  listeners: [{name: x, port: 443, protocol: HTTPS, tls: {}}]",
            "spec.listeners[0].tls.certificateRefs: required when tls mode is Terminate",
        ),
        (
            "  listeners: [{name: x, port: 9000, protocol: TCP, hostname: a.example.com}]",
            "spec.listeners[0].hostname: not allowed when protocol is TCP",
        ),
        (
            "  listeners: [{name: x, port: 80, protocol: HTTP, "
            "allowedRoutes: {namespaces: {from: Selector}}}]",
            "spec.listeners[0].allowedRoutes.namespaces.selector: required when from is Selector",
        ),
        (
            "  listeners: [{name: x, port: 80, protocol: HTTP}, "
            "{name: x, port: 81, protocol: HTTP}]",
            "spec.listeners[1].name: listener name 'x' is used twice",
        ),
        (
            "  listeners: [{name: a, port: 80, protocol: HTTP}, "
            "{name: b, port: 80, protocol: HTTP}]",
            "spec.listeners[1]: another listener already has port 80, protocol HTTP",
        ),
        (
            "  listeners: [{name: a, port: 80, protocol: HTTP}]\n  addresses: [{value: nope}]",
            "spec.addresses[0].value: must be an IP address, got 'nope'",
        ),
        (
            "  listeners: [{name: a, port: 80, protocol: HTTP}]\n  addresses: [{type: IP}]",
            "spec.addresses[0].type: must be one of 'IPAddress', 'Hostname', 'NamedAddress' or "
            "a domain-prefixed type such as 'example.com/custom', got 'IP'",
        ),
    ],
)
def test_gateway_errors(body: str, expected: str) -> None:
    assert f"Gateway gateways/edge: {expected}" in errors(GATEWAY_HEAD + body + "\n")


def test_gateway_needs_a_class() -> None:
    text = GATEWAY_HEAD.replace("  gatewayClassName: gossamer\n", "") + "  listeners: []\n"
    lines = errors(text)
    assert "Gateway gateways/edge: spec.gatewayClassName: required field is missing" in lines


# --- GatewayClass ------------------------------------------------------------------------


def test_gatewayclass_is_cluster_scoped() -> None:
    text = """
    apiVersion: gateway.networking.k8s.io/v1
    kind: GatewayClass
    metadata: {name: gossamer}
    spec:
      controllerName: gossamer.io/gateway-controller
      description: Gossamer's gateway
      parametersRef: {group: gossamer.io, kind: Mesh, name: default}
    """
    gateway_class = load_one(text)
    assert isinstance(gateway_class, GatewayClass)
    assert gateway_class.ref == "GatewayClass gossamer"
    assert "namespace" not in to_document(gateway_class)["metadata"]
    assert_round_trip(text)


def test_gatewayclass_controller_name_must_be_a_path() -> None:
    text = """
    apiVersion: gateway.networking.k8s.io/v1
    kind: GatewayClass
    metadata: {name: gossamer}
    spec: {controllerName: gossamer}
    """
    (line,) = errors(text)
    # The loader names a cluster-scoped object that failed the schema by its name alone or
    # with the default namespace; the field path and the reason are what matter here.
    assert line.startswith("GatewayClass ")
    assert line.endswith(
        "gossamer: spec.controllerName: must be a domain-prefixed path such as "
        "'gossamer.io/gateway-controller', got 'gossamer'"
    )


# --- Helpers and names -------------------------------------------------------------------


def test_label_selector_operators() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchExpressions": [
                {"key": "tier", "operator": "NotIn", "values": ["db"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "app", "operator": "Exists"},
            ]
        }
    ).to_selector()
    assert selector.matches({"app": "web", "tier": "front"})
    assert not selector.matches({"app": "web", "tier": "db"})
    assert not selector.matches({"app": "web", "canary": "yes"})
    assert not selector.matches({"tier": "front"})


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("httproute", "HTTPRoute"),
        ("httproutes", "HTTPRoute"),
        ("hr", "HTTPRoute"),
        ("grpcroutes", "GRPCRoute"),
        ("gr", "GRPCRoute"),
        ("gtw", "Gateway"),
        ("gateways", "Gateway"),
        ("gc", "GatewayClass"),
        ("gatewayclasses", "GatewayClass"),
        ("tcproute", "TCPRoute"),
        ("TCPRoute", "TCPRoute"),
        ("tcproutes.gateway.networking.k8s.io", "TCPRoute"),
    ],
)
def test_gateway_api_names_resolve(name: str, kind: str) -> None:
    info = resolve(name)
    assert (info.group, info.kind) == ("gateway.networking.k8s.io", kind)


# --- The documentation's examples --------------------------------------------------------

DOCS = Path(__file__).resolve().parents[3] / "docs" / "resources"


@pytest.mark.parametrize(
    "page", ["httproute.md", "grpcroute.md", "tcproute.md", "gateway.md", "gatewayclass.md"]
)
def test_documented_examples_load(page: str) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)
    assert examples
    for example in examples:
        assert_round_trip(example)
