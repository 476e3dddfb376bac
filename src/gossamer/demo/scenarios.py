"""The walkthrough scenarios (../shared/scenarios): apps, gateway, and steps with the split
each step must produce. Adding a scenario is adding one `Scenario` here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class App:
    service: str
    name: str
    module: str  # python -m <module>
    port: int
    labels: dict[str, str] = field(default_factory=dict)
    protocol: str = "http"
    env: dict[str, str] = field(default_factory=dict)
    namespace: str = "default"
    # False: a plain process outside the mesh (no sidecar), e.g. an "external" host.
    meshed: bool = True
    # Give its sidecar an admin port the demo reads metrics from (Step.counters).
    admin: bool = False


@dataclass(frozen=True)
class Counter:
    """A sidecar metric that must grow during a step (e.g. denials from bookthief)."""

    app: str  # an App's name (with admin=True)
    metric: str
    match: str  # a substring of the sample's labels
    label: str  # what the demo prints


@dataclass(frozen=True)
class Step:
    title: str
    apply: str = ""  # YAML applied at the start of the step; ${app}_port: an unmeshed app's
    delete: tuple[str, ...] = ()  # "kind/name" deleted at the start of the step
    expect: dict[str, float] = field(default_factory=dict)  # backend → share (sums to 1)
    counters: tuple[Counter, ...] = ()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    apps: tuple[App, ...]
    gateway: str  # YAML of the Gateway (and what exposes the entry point); {port} filled in
    traffic: str  # "http" or "tcp"
    path: str  # several: "a|b" (equal shares)
    classify: Callable[[str], str]
    steps: tuple[Step, ...]
    setup: str = ""  # YAML applied before the apps start


def _benigno(body: str) -> str:
    return "v2" if "Canary Release" in body else "v1"


def _tcp_echo(body: str) -> str:
    return {"one": "v1", "two": "v2"}.get(body.split(" ", 1)[0], "?")


def _version_services(service: str, port: int, protocol: str = "http") -> str:
    return "".join(
        f"""---
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {{name: {service}-{v}}}
spec:
  selector: {{app: {service}, version: {v}}}
  ports: [{{port: {port}, protocol: {protocol}}}]
"""
        for v in ("v1", "v2")
    )


def _traffic_split(w1: int, w2: int) -> str:
    return f"""---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {{name: benigno-canary}}
spec:
  service: benigno
  backends:
  - {{service: benigno-v1, weight: {w1}}}
  - {{service: benigno-v2, weight: {w2}}}
"""


CANARY = Scenario(
    name="canary",
    description="A canary release behind an ingress (the Kong Mesh / Kuma walkthrough): "
    "magnanimo calls benigno; benigno v2 is the canary.",
    apps=(
        App("magnanimo", "magnanimo", "gossamer.demo.apps.magnanimo", 4000),
        App("benigno", "benigno-v1", "gossamer.demo.apps.benigno", 5000, {"version": "v1"}),
        App(
            "benigno",
            "benigno-v2",
            "gossamer.demo.apps.benigno",
            5000,
            {"version": "v2"},
            env={"VERSION": "v2"},
        ),
    ),
    gateway="""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: ingress}}
spec:
  gatewayClassName: gossamer
  listeners: [{{name: http, port: {port}, protocol: HTTP}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: magnanimo
  annotations: {{konghq.com/strip-path: "true"}}
spec:
  rules:
  - http:
      paths:
      - path: /route1
        pathType: Prefix
        backend: {{service: {{name: magnanimo, port: {{number: 4000}}}}}}
""",
    traffic="http",
    path="/route1/hw2",
    classify=_benigno,
    steps=(
        Step("no route: round robin", expect={"v1": 0.5, "v2": 0.5}),
        Step(
            "HTTPRoute 90/10",
            apply=_version_services("benigno", 5000)
            + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: benigno-canary}
spec:
  parentRefs: [{group: "", kind: Service, name: benigno, port: 5000}]
  rules:
  - backendRefs:
    - {name: benigno-v1, port: 5000, weight: 90}
    - {name: benigno-v2, port: 5000, weight: 10}
""",
            expect={"v1": 0.9, "v2": 0.1},
        ),
        Step(
            "SMI TrafficSplit 90/10",
            delete=("httproute/benigno-canary",),
            apply=_traffic_split(90, 10),
            expect={"v1": 0.9, "v2": 0.1},
        ),
        Step(
            "promote the canary: 0/100",
            apply=_traffic_split(0, 100),
            expect={"v1": 0.0, "v2": 1.0},
        ),
    ),
)


def _tcp_route(*backends: tuple[str, int]) -> str:
    refs = "\n".join(f"    - {{name: {n}, port: 9000, weight: {w}}}" for n, w in backends)
    return f"""---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: tcp-echo}}
spec:
  parentRefs: [{{name: ingress, sectionName: tcp}}]
  rules:
  - backendRefs:
{refs}
"""


TCP_ECHO = Scenario(
    name="tcp-echo",
    description="Weighted TCP routing through an ingress gateway (the Istio walkthrough).",
    apps=(
        App(
            "tcp-echo",
            "tcp-echo-v1",
            "gossamer.demo.apps.tcp_echo",
            9000,
            {"version": "v1"},
            "tcp",
            {"VERSION": "v1"},
        ),
        App(
            "tcp-echo",
            "tcp-echo-v2",
            "gossamer.demo.apps.tcp_echo",
            9000,
            {"version": "v2"},
            "tcp",
            {"VERSION": "v2"},
        ),
    ),
    gateway="""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: ingress}}
spec:
  gatewayClassName: gossamer
  listeners: [{{name: tcp, port: {port}, protocol: TCP}}]
"""
    + _version_services("tcp-echo", 9000, "tcp").replace("{", "{{").replace("}", "}}")
    + """---
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {{name: tcp-echo}}
spec:
  selector: {{app: tcp-echo}}
  ports: [{{port: 9000, protocol: tcp}}]
"""
    + _tcp_route(("tcp-echo", 1)).replace("{", "{{").replace("}", "}}"),
    traffic="tcp",
    path="",
    classify=_tcp_echo,
    steps=(
        Step(
            "unrouted: balanced",
            expect={"v1": 0.5, "v2": 0.5},
        ),
        Step("TCPRoute: all to v1", apply=_tcp_route(("tcp-echo-v1", 100)), expect={"v1": 1.0}),
        Step(
            "TCPRoute 80/20",
            apply=_tcp_route(("tcp-echo-v1", 80), ("tcp-echo-v2", 20)),
            expect={"v1": 0.8, "v2": 0.2},
        ),
    ),
)


def _bookstore(body: str) -> str:
    """What one probe saw: "buyer v1", "thief denied", "egress blocked"..."""
    who, _, what = body.partition(": ")
    who = {"bookbuyer": "buyer", "bookthief": "thief"}.get(who, who)
    if what.startswith("egress "):
        return "egress " + what.split(" ", 2)[1].rstrip(":")
    if what.startswith("bought from bookstore-"):
        return f"{who} {what.split(';', 1)[0].rsplit('-', 1)[-1]}"
    return f"{who} {what.split(' ', 1)[0]}"


def _bookstore_split(v1: int, v2: int) -> str:
    return f"""---
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {{name: bookstore-split, namespace: bookstore}}
spec:
  service: bookstore.bookstore
  backends:
  - {{service: bookstore, weight: {v1}}}
  - {{service: bookstore-v2, weight: {v2}}}
"""


def _ingress_route(client: str) -> str:
    return f"""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{{{name: {client}, namespace: {client}}}}}
spec:
  parentRefs: [{{{{name: ingress, namespace: default}}}}]
  rules:
  - matches: [{{{{path: {{{{type: PathPrefix, value: /{client}}}}}}}}}]
    filters:
    - type: URLRewrite
      urlRewrite: {{{{path: {{{{type: ReplacePrefixMatch, replacePrefixMatch: /}}}}}}}}
    backendRefs: [{{{{name: {client}, port: 8080}}}}]
---
apiVersion: gossamer.io/v1alpha1
kind: TrafficPermission
metadata: {{{{name: {client}-from-ingress, namespace: {client}}}}}
spec:
  targetRef: {{{{kind: Service, name: {client}}}}}
  from:
  - targetRef: {{{{kind: Mesh}}}}  # the ingress: these are the demo's own endpoints
    default: {{{{action: ALLOW}}}}
"""


def _traffic_target(destination: str, sources: str, group: bool) -> str:
    rules = (
        "  - kind: HTTPRouteGroup\n    name: bookstore-service-routes\n"
        "    matches: [buy-a-book, books-bought]"
        if group
        else "  - {kind: HTTPRouteGroup, name: restock}"
    )
    namespace = "bookstore" if group else "bookwarehouse"
    return f"""---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {{name: {destination}, namespace: {namespace}}}
spec:
  destination: {{kind: ServiceAccount, name: {destination}, namespace: {namespace}}}
  rules:
{rules}
  sources:
{sources}
"""


_BOOKSTORE_ACCESS = (
    """---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: bookstore-service-routes, namespace: bookstore}
spec:
  matches:
  - name: books-bought
    pathRegex: /books-bought
    methods: [GET]
    headers:
    - "user-agent": ".*-http-client/*.*"
    - "client-app": "bookbuyer"
  - name: buy-a-book
    pathRegex: ".*a-book.*new"
    methods: [GET]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: restock, namespace: bookwarehouse}
spec:
  matches: [{name: restock, pathRegex: /restock, methods: [GET]}]
"""
    + _traffic_target(
        "bookstore", "  - {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}", True
    )
    + _traffic_target(
        "bookstore-v2", "  - {kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}", True
    )
    + _traffic_target(
        "bookwarehouse",
        "  - {kind: ServiceAccount, name: bookstore, namespace: bookstore}\n"
        "  - {kind: ServiceAccount, name: bookstore-v2, namespace: bookstore}",
        False,
    )
)

_THIEF_COUNTED = (
    Counter(
        "bookstore-v1",
        "gossamer_authz_denied_total",
        'source="spiffe://gossamer.local/ns/bookthief/sa/bookthief"',
        "bookstore-v1's sidecar denied bookthief",
    ),
)
THIRD = 1 / 3

BOOKSTORE = Scenario(
    name="bookstore",
    description="Access control, traffic split and egress (the Open Service Mesh walkthrough): "
    "bookbuyer and bookthief call the bookstore in a default-deny mesh.",
    setup="""
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {defaultAccess: deny}
""",
    apps=(
        App(
            "bookbuyer",
            "bookbuyer",
            "gossamer.demo.apps.bookbuyer",
            8080,
            namespace="bookbuyer",
            env={
                "CLIENT_NAME": "bookbuyer",
                "PUBLISHER_URL": "http://publisher.example:${publisher_port}/new-releases",
            },
        ),
        App(
            "bookthief",
            "bookthief",
            "gossamer.demo.apps.bookbuyer",
            8080,
            namespace="bookthief",
            env={"CLIENT_NAME": "bookthief"},
        ),
        App(
            "bookstore",
            "bookstore-v1",
            "gossamer.demo.apps.bookstore",
            14001,
            {"version": "v1"},
            namespace="bookstore",
            env={"VERSION": "v1"},
            admin=True,
        ),
        App(
            "bookstore-v2",
            "bookstore-v2",
            "gossamer.demo.apps.bookstore",
            14001,
            {"version": "v2"},
            namespace="bookstore",
            env={"VERSION": "v2"},
        ),
        App(
            "bookwarehouse",
            "bookwarehouse",
            "gossamer.demo.apps.bookwarehouse",
            14001,
            namespace="bookwarehouse",
        ),
        App("publisher", "publisher", "gossamer.demo.apps.publisher", 0, meshed=False),
    ),
    gateway="""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: ingress}}
spec:
  gatewayClassName: gossamer
  listeners:
  - {{name: http, port: {port}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}
"""
    + _ingress_route("bookbuyer")
    + _ingress_route("bookthief"),
    traffic="http",
    path="/bookbuyer/buy|/bookthief/buy|/bookbuyer/egress",
    classify=_bookstore,
    steps=(
        Step(
            "default deny: nothing passes",
            expect={"buyer denied": THIRD, "thief denied": THIRD, "egress blocked": THIRD},
        ),
        Step(
            "TrafficTarget: bookbuyer allowed on two routes",
            apply=_BOOKSTORE_ACCESS,
            expect={"buyer v1": THIRD, "thief denied": THIRD, "egress blocked": THIRD},
            counters=_THIEF_COUNTED,
        ),
        Step(
            "TrafficSplit 50/50",
            apply=_bookstore_split(50, 50),
            expect={
                "buyer v1": THIRD / 2,
                "buyer v2": THIRD / 2,
                "thief denied": THIRD,
                "egress blocked": THIRD,
            },
            counters=_THIEF_COUNTED,
        ),
        Step(
            "TrafficSplit 0/100",
            apply=_bookstore_split(0, 100),
            expect={"buyer v2": THIRD, "thief denied": THIRD, "egress blocked": THIRD},
        ),
        Step(
            "egress: ExternalService publisher.example",
            apply="""
apiVersion: gossamer.io/v1alpha1
kind: ExternalService
metadata: {name: publisher}
spec: {host: publisher.example, port: ${publisher_port}, addresses: [127.0.0.1]}
""",
            expect={"buyer v2": THIRD, "thief denied": THIRD, "egress ok": THIRD},
        ),
    ),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (CANARY, TCP_ECHO, BOOKSTORE)}
