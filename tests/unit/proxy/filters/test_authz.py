"""Authorization, from resources to decisions: TrafficPermission / TrafficTarget are
translated to RBAC filters (control plane), compiled (sidecar config) and evaluated on
identities given directly, as mTLS would give them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from gossamer.api.loader import parse_resources
from gossamer.controlplane.translate import MeshTranslator
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.node import ProxyNode
from gossamer.controlplane.translate.snapshot import build_snapshot
from gossamer.protocols.http1 import RequestHead
from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import ConfigError, compile_listener
from gossamer.proxy.filters.authz import DEFAULT_DENY, Authorizer, authorizer
from gossamer.proxy.filters.stats import Stats, prometheus

BUYER = "spiffe://gossamer.local/ns/bookbuyer/sa/bookbuyer"
THIEF = "spiffe://gossamer.local/ns/bookthief/sa/bookthief"
OPS = "spiffe://gossamer.local/ns/ops/sa/robot"

NODE = {
    "gossamer": {
        "kind": "sidecar",
        "namespace": "bookstore",
        "workload": "bookstore-v1",
        "service": "bookstore",
        "labels": {"app": "bookstore"},
        "inbound": [{"port": 14001, "targetPort": 41001, "inboundPort": 41002}],
    }
}
TCP_NODE = {
    "gossamer": {
        **NODE["gossamer"],
        "inbound": [{"port": 3306, "targetPort": 43306, "inboundPort": 43307, "protocol": "tcp"}],
    }
}

SMI = """
- apiVersion: access.smi-spec.io/v1alpha3
  kind: TrafficTarget
  metadata: {name: bookstore, namespace: bookstore}
  spec:
    destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
    rules:
    - {kind: HTTPRouteGroup, name: routes, matches: [buy-a-book, books-bought]}
    sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
- apiVersion: specs.smi-spec.io/v1alpha4
  kind: HTTPRouteGroup
  metadata: {name: routes, namespace: bookstore}
  spec:
    matches:
    - name: books-bought
      pathRegex: /books-bought
      methods: [GET]
      headers: [{"user-agent": ".*-http-client/*.*"}, {"client-app": "bookbuyer"}]
    - {name: buy-a-book, pathRegex: ".*a-book.*new", methods: [GET]}
    - {name: admin, pathRegex: /admin}
"""
DEFAULT_DENY_MESH = """
- apiVersion: gossamer.io/v1alpha1
  kind: Mesh
  metadata: {name: default}
  spec: {defaultAccess: deny}
"""


def _authorizer(
    docs: str, node: dict[str, Any] = NODE, stats: Stats | None = None
) -> Authorizer | None:
    resources = parse_resources(yaml.safe_load(docs) or [], "test")
    out = MeshTranslator(build_snapshot(resources)).for_proxy(ProxyNode.from_metadata("n", node))
    (listener,) = [lst for name, lst in out[e.LISTENER].items() if name.startswith("inbound:")]
    compiled = compile_listener(listener)
    handler = compiled.handler
    if isinstance(handler, m.TcpProxy):
        filters = list(handler.rbac)
    else:
        filters = [f.config for f in handler.filters if isinstance(f.config, m.RbacFilter)]
    return authorizer(filters, "bookstore/bookstore", stats)


def _head(method: str, path: str, **headers: str) -> RequestHead:
    pairs = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return RequestHead(method.encode(), path.encode(), b"1.1", pairs, None)


def _check(authz: Authorizer | None, identity: str | None, head: RequestHead | None) -> str | None:
    return None if authz is None else authz.check(identity, head, b"bookstore:14001")


def test_no_policy_and_default_allow_means_no_authorizer() -> None:
    assert _authorizer("") is None


def test_default_deny_refuses_everyone() -> None:
    authz = _authorizer(DEFAULT_DENY_MESH)
    assert _check(authz, BUYER, _head("GET", "/")) == DEFAULT_DENY
    assert _check(authz, None, _head("GET", "/")) == DEFAULT_DENY


def test_smi_bookstore_buyer_allowed_on_two_routes_thief_denied() -> None:
    authz = _authorizer(DEFAULT_DENY_MESH + SMI)
    ok = _head("GET", "/books-bought", user_agent="Go-http-client/1.1", client_app="bookbuyer")
    assert _check(authz, BUYER, ok) is None
    assert _check(authz, BUYER, _head("GET", "/buy-a-book/new?x=1")) is None
    # The header conditions of books-bought are all needed.
    assert _check(authz, BUYER, _head("GET", "/books-bought", client_app="bookbuyer"))
    assert _check(authz, BUYER, _head("POST", "/buy-a-book/new")) == DEFAULT_DENY
    # A match the TrafficTarget does not name allows nothing.
    assert _check(authz, BUYER, _head("GET", "/admin")) == DEFAULT_DENY
    assert _check(authz, THIEF, ok) == DEFAULT_DENY
    assert _check(authz, None, ok) == DEFAULT_DENY


PERMISSION = """
- apiVersion: gossamer.io/v1alpha1
  kind: TrafficPermission
  metadata: {name: access, namespace: bookstore}
  spec:
    targetRef: {kind: Service, name: bookstore}
    from:
    - targetRef: {kind: Namespace, name: bookbuyer}
      default:
        action: ALLOW
        rules:
        - methods: [GET]
          paths: [{type: PathPrefix, value: /api}, {type: Exact, value: /healthz}]
        - headers: [{name: X-Debug, type: Present}]
    - targetRef: {kind: Mesh}
      default:
        action: DENY
        rules: [{paths: [{type: RegularExpression, value: "/admin/.*"}]}]
    - targetRef: {kind: ServiceAccount, name: robot, namespace: ops}
      default: {action: ALLOW}
"""


@pytest.mark.parametrize(
    ("identity", "method", "path", "headers", "expected"),
    [
        (BUYER, "GET", "/api", {}, None),
        (BUYER, "GET", "/api/books", {}, None),
        (BUYER, "GET", "/apis", {}, "bookstore/access"),  # whole segments only
        (BUYER, "POST", "/api", {}, "bookstore/access"),
        (BUYER, "GET", "/healthz", {}, None),
        (BUYER, "GET", "/healthz/x", {}, "bookstore/access"),
        (BUYER, "DELETE", "/x", {"x_debug": ""}, None),
        (OPS, "DELETE", "/anything", {}, None),
        (OPS, "GET", "/admin/users", {}, "bookstore/access"),  # DENY wins over ALLOW
        (THIEF, "GET", "/api", {}, "bookstore/access"),  # the allow list closes the rest
        (None, "GET", "/api", {}, "bookstore/access"),
    ],
)
def test_permission_rules(
    identity: str | None, method: str, path: str, headers: dict[str, str], expected: str | None
) -> None:
    authz = _authorizer(PERMISSION)
    assert _check(authz, identity, _head(method, path, **headers)) == expected


def test_deny_only_permission_leaves_others_to_the_default() -> None:
    docs = """
- apiVersion: gossamer.io/v1alpha1
  kind: TrafficPermission
  metadata: {name: no-thief, namespace: bookstore}
  spec:
    from:
    - targetRef: {kind: ServiceAccount, name: bookthief, namespace: bookthief}
      default: {action: DENY}
"""
    authz = _authorizer(docs)
    assert _check(authz, THIEF, _head("GET", "/")) == "bookstore/no-thief"
    assert _check(authz, BUYER, _head("GET", "/")) is None
    assert _check(authz, None, _head("GET", "/")) is None
    assert _check(_authorizer(DEFAULT_DENY_MESH + docs), BUYER, _head("GET", "/")) == DEFAULT_DENY


def test_shadow_counts_without_denying() -> None:
    docs = """
- apiVersion: gossamer.io/v1alpha1
  kind: TrafficPermission
  metadata: {name: try-no-writes, namespace: bookstore}
  spec:
    mode: shadow
    from:
    - targetRef: {kind: Mesh}
      default: {action: DENY, rules: [{methods: [POST]}]}
"""
    stats = Stats()
    authz = _authorizer(docs, stats=stats)
    assert authz is not None
    post = _head("POST", "/orders")
    assert authz.check(BUYER, post, b"") is None
    assert authz.check_shadow(BUYER, post, b"") == "bookstore/try-no-writes"
    assert authz.check_shadow(BUYER, _head("GET", "/orders"), b"") is None
    authz.count(True, BUYER)
    authz.count(False, None)
    text = prometheus(stats.snapshot())
    labels = f'source="{BUYER}",destination="bookstore/bookstore"'
    assert f"gossamer_authz_shadow_denied_total{{{labels}}} 1" in text
    assert (
        'gossamer_authz_denied_total{source="unauthenticated",destination="bookstore/bookstore"} 1'
        in text
    )


def test_tcp_rules_fail_closed() -> None:
    docs = """
- apiVersion: gossamer.io/v1alpha1
  kind: TrafficPermission
  metadata: {name: db, namespace: bookstore}
  spec:
    from:
    - targetRef: {kind: Namespace, name: bookbuyer}
      default: {action: ALLOW, rules: [{methods: [GET]}]}
    - targetRef: {kind: Namespace, name: ops}
      default: {action: ALLOW}
    - targetRef: {kind: Namespace, name: bookthief}
      default: {action: DENY, rules: [{methods: [GET]}]}
"""
    authz = _authorizer(docs, TCP_NODE)
    assert _check(authz, OPS, None) is None
    assert _check(authz, BUYER, None) == "bookstore/db"  # its ALLOW needs HTTP: never on TCP
    assert _check(authz, THIEF, None) == "bookstore/db"  # its DENY applies whatever the rules


def test_unsupported_rbac_is_nacked_with_its_path() -> None:
    from envoy.config.rbac.v3 import rbac_pb2
    from envoy.extensions.filters.http.rbac.v3 import rbac_pb2 as http_rbac_pb2
    from envoy.extensions.filters.network.http_connection_manager.v3 import (
        http_connection_manager_pb2 as hcm_pb2,
    )

    config = http_rbac_pb2.RBAC(rules=rbac_pb2.RBAC(action=rbac_pb2.RBAC.LOG))
    flt = hcm_pb2.HttpFilter(name="envoy.filters.http.rbac", typed_config=e.pack(config))
    hcm = e.http_connection_manager("x", rds="x", filters=[flt])
    with pytest.raises(ConfigError, match=r"http_filters\[0\]\.rules\.action: only ALLOW and DENY"):
        compile_listener(e.http_listener("x", "127.0.0.1", 1, e.INBOUND, hcm))
    config = http_rbac_pb2.RBAC(
        rules=rbac_pb2.RBAC(
            policies={"p": rbac_pb2.Policy(principals=[rbac_pb2.Principal(direct_remote_ip={})])}
        )
    )
    flt = hcm_pb2.HttpFilter(name="envoy.filters.http.rbac", typed_config=e.pack(config))
    hcm = e.http_connection_manager("x", rds="x", filters=[flt])
    with pytest.raises(ConfigError, match="direct_remote_ip: field not supported"):
        compile_listener(e.http_listener("x", "127.0.0.1", 1, e.INBOUND, hcm))
