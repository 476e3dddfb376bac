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


@dataclass(frozen=True)
class Step:
    title: str
    apply: str = ""  # YAML applied at the start of the step
    delete: tuple[str, ...] = ()  # "kind/name" deleted at the start of the step
    expect: dict[str, float] = field(default_factory=dict)  # backend → share (sums to 1)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    apps: tuple[App, ...]
    gateway: str  # YAML of the Gateway (and what exposes the entry point); {port} filled in
    traffic: str  # "http" or "tcp"
    path: str
    classify: Callable[[str], str]
    steps: tuple[Step, ...]


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

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (CANARY, TCP_ECHO)}
