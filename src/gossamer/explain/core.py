"""The explanation: source sidecar → listener → route → split → policies → endpoints →
mTLS → authorization at the destination (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from gossamer.api.kinds.policies import Policy
from gossamer.controlplane.controller import MeshController
from gossamer.controlplane.policies.targeting import (
    INBOUND_KINDS,
    OUTBOUND_KINDS,
    selects,
)
from gossamer.controlplane.translate import OUTBOUND_HTTP, MeshTranslator
from gossamer.controlplane.translate.node import InboundPort, ProxyNode
from gossamer.explain.flags import explain_flags
from gossamer.protocols.http1 import ProtocolError, RequestHead, request_parser
from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import (
    CLUSTER,
    ENDPOINT,
    LISTENER,
    ROUTE,
    ConfigError,
    compile_cluster,
    compile_endpoints,
    compile_listener,
    compile_route_configuration,
)
from gossamer.proxy.filters.authz import DEFAULT_DENY, authorizer
from gossamer.proxy.filters.route import CompiledTable, RouteEntry

SYNTHETIC_PORT = 15001  # the HTTP proxy port a synthetic source is given
DEFAULT_ROUTE_TIMEOUT = 15.0  # what compile.py gives a route with none (Envoy's default)


class ExplainError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ExplainRequest:
    source: str  # svc/NAME | workload/NAME
    destination: str  # HOST[:PORT]
    namespace: str = "default"
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    flags: str | None = None


@dataclass
class Explanation:
    source: dict[str, Any]
    destination: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    backends: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "routed"
    summary: str = ""

    def step(self, stage: str, decision: str, detail: str, resource: str | None = None) -> None:
        self.steps.append(
            {"stage": stage, "decision": decision, "detail": detail, "resource": resource}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "source": self.source,
            "destination": self.destination,
            "steps": self.steps,
            "backends": self.backends,
            "outcome": self.outcome,
        }


# --- parsing the request as the sidecar would ---------------------------------------------


class _Head:
    def __init__(self) -> None:
        self.head: RequestHead | None = None

    def on_request_head(self, head: RequestHead) -> None:
        self.head = head

    def on_body(self, data: bytes) -> None:
        pass

    def on_message_complete(self) -> None:
        pass

    def on_upgrade(self, data: bytes) -> None:
        pass


def parse_head(
    method: str, target: str, host: str, headers: Iterable[tuple[str, str]]
) -> RequestHead:
    """The request as the sidecar's own parser reads it (ExplainError 400 if malformed)."""
    lines = [f"{method} {target} HTTP/1.1", f"host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() != "host"]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")
    sink = _Head()
    try:
        request_parser(sink).feed(raw)
    except ProtocolError as exc:
        raise ExplainError(400, f"the request is not valid HTTP: {exc.reason}") from None
    if sink.head is None:
        raise ExplainError(400, "the request is not valid HTTP")
    return sink.head


# --- who is asking ------------------------------------------------------------------------


def _source(
    controller: MeshController, kind: str, namespace: str, name: str
) -> tuple[ProxyNode, bool]:
    """The source's sidecar (connected), or a synthetic one as it would connect."""
    translator = controller.translator
    assert translator is not None
    registry = translator.snapshot.registry
    nodes = sorted(
        (r.node for r in controller.proxies.values() if r.node.kind != "proxyless" and r.streams),
        key=lambda n: (n.outbound_http_port is None, n.id),
    )
    for node in nodes:
        if node.namespace != namespace:
            continue
        if (kind == "workload" and name in (node.workload, node.gateway)) or (
            kind == "service" and node.service == name
        ):
            return node, False
    if kind == "workload":
        info = registry.workloads.get((namespace, name))
        if info is None:
            raise ExplainError(404, f"workload {namespace}/{name} not found")
        return (
            ProxyNode(
                id=f"explain:{namespace}/{name}",
                kind="sidecar",
                namespace=namespace,
                workload=name,
                service=info.labels.get("app", info.service_account),
                labels=dict(info.labels),
                address=info.address,
                service_account=info.service_account,
                outbound_http_port=SYNTHETIC_PORT,
            ),
            True,
        )
    if registry.service(namespace, name) is None:
        raise ExplainError(404, f"service {namespace}/{name} not found")
    return (
        ProxyNode(
            id=f"explain:{namespace}/{name}",
            kind="sidecar",
            namespace=namespace,
            workload=name,
            service=name,
            service_account=name,
            outbound_http_port=SYNTHETIC_PORT,
        ),
        True,
    )


def _destination_node(
    controller: MeshController, workload: str, namespace: str
) -> ProxyNode | None:
    """The destination workload's sidecar, connected or as it would connect."""
    for record in controller.proxies.values():
        node = record.node
        if node.kind != "proxyless" and node.workload == workload and node.namespace == namespace:
            return node
    translator = controller.translator
    assert translator is not None
    info = translator.snapshot.registry.workloads.get((namespace, workload))
    if info is None:
        return None
    return ProxyNode(
        id=f"explain:{namespace}/{workload}",
        kind="sidecar",
        namespace=namespace,
        workload=workload,
        service=info.labels.get("app", info.service_account),
        labels=dict(info.labels),
        address=info.address,
        service_account=info.service_account,
        inbound=tuple(
            InboundPort(p.port, p.target_port, p.inbound_port, p.protocol)
            for p in info.ports
            if p.inbound_port
        ),
    )


# --- compiling what the sidecar gets ------------------------------------------------------


class Config:
    """One proxy's xDS, compiled lazily by the sidecar's compiler."""

    def __init__(self, resources: Mapping[str, Mapping[str, Message]]) -> None:
        self.resources = resources
        self._cache: dict[tuple[str, str], Any] = {}

    def _get(self, type_url: str, name: str, compile_: Callable[[Any], Any]) -> Any:
        key = (type_url, name)
        if key not in self._cache:
            message = self.resources.get(type_url, {}).get(name)
            try:
                self._cache[key] = compile_(message) if message is not None else None
            except ConfigError as exc:
                raise ExplainError(500, f"the sidecar would reject its config: {exc}") from None
        return self._cache[key]

    def listener(self, name: str) -> m.Listener | None:
        result: m.Listener | None = self._get(LISTENER, name, compile_listener)
        return result

    def listeners(self) -> list[str]:
        return sorted(self.resources.get(LISTENER, {}))

    def route_table(self, hcm: m.HttpConnectionManager) -> m.RouteTable | None:
        if hcm.route_table is not None:
            return hcm.route_table
        if hcm.route_config_name is None:
            return None
        result: m.RouteTable | None = self._get(
            ROUTE, hcm.route_config_name, compile_route_configuration
        )
        return result

    def cluster(self, name: str) -> m.Cluster | None:
        result: m.Cluster | None = self._get(CLUSTER, name, compile_cluster)
        return result

    def endpoints(self, cluster: m.Cluster) -> tuple[m.Endpoint, ...]:
        if cluster.kind != "eds":
            return cluster.endpoints
        found = self._get(ENDPOINT, cluster.name, compile_endpoints)
        return tuple(found or ())


# --- policies and the resources they came from --------------------------------------------


def _policy_name(p: Policy) -> str:
    return f"{p.KIND} {p.namespace}/{p.name}"


def _named(named: dict[str, list[str]], kind: str) -> str | None:
    """The policies of a kind that apply, as a step's `resource` (None: none does)."""
    return ", ".join(named.get(kind, [])) or None


def outbound_policies(
    translator: MeshTranslator,
    node: ProxyNode,
    namespace: str,
    service: str,
    port: int | None,
    route_source: str,
) -> dict[str, list[str]]:
    """Kind → the policies (of the source's policy set) with a `to` entry for this
    destination (service, port or route), by the rules translation applies."""
    out: dict[str, list[str]] = {}
    snapshot = translator.snapshot
    for kind in OUTBOUND_KINDS:
        for policy in snapshot.of(kind):
            if not selects(policy, node):
                continue
            for item in policy.entries("to"):
                ref = item.target_ref
                ref_ns = ref.namespace or policy.namespace
                if ref.kind == "Mesh":
                    hit = True
                elif ref.kind == "Service":
                    hit = (ref.name, ref_ns) == (service, namespace) and (
                        ref.port is None or ref.port == port
                    )
                elif ref.kind in ("HTTPRoute", "GRPCRoute"):
                    hit = route_source == f"{ref.kind} {ref_ns}/{ref.name}"
                else:
                    hit = False
                if hit:
                    out.setdefault(kind.KIND, []).append(_policy_name(policy))
                    break
    return out


def inbound_policies(translator: MeshTranslator, node: ProxyNode) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for kind in INBOUND_KINDS:
        for policy in translator.snapshot.of(kind):
            if selects(policy, node) and policy.entries("from"):
                out.setdefault(kind.KIND, []).append(_policy_name(policy))
    return out


def _authz_resource(translator: MeshTranslator, label: str) -> str:
    """`ns/name` of a deciding RBAC policy → the resource kind it came from."""
    if label == DEFAULT_DENY:
        return "Mesh default (defaultAccess: deny)"
    namespace, _, name = label.partition("/")
    for kind_name in ("TrafficPermission", "TrafficTarget"):
        for resources in translator.snapshot.resources.values():
            for r in resources:
                if kind_name == r.KIND and r.namespace == namespace and r.name == name:
                    return f"{kind_name} {namespace}/{name}"
    return label


# --- the explanation ----------------------------------------------------------------------


def _match_text(route: m.Route) -> str:
    match = route.match
    parts = [f"path {match.path_kind} {match.path!r}"]
    if match.regex is not None:
        parts = [f"path regex {match.regex.pattern!r}"]
    for h in match.headers:
        parts.append(f"header {getattr(h, 'name', '?')}")
    for q in match.query:
        parts.append(f"query {getattr(q, 'name', '?')}")
    return ", ".join(parts)


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "none"
    return f"{s * 1000:g}ms" if s < 1 else f"{s:g}s"


def _serving_listener(config: Config, authority: str, gateway: bool) -> str | None:
    """The HTTP listener whose routes serve `authority` (a gateway's listeners face the
    outside world: they are `inbound` to it)."""
    port = authority.rpartition(":")[2] if ":" in authority else ""
    fallback = None
    for name in config.listeners():
        lst = config.listener(name)
        if lst is None or (lst.direction == "inbound" and not gateway):
            continue
        handler = lst.handler
        if not isinstance(handler, m.HttpConnectionManager):
            continue
        table = config.route_table(handler)
        if table is None or table.virtual_host(authority) is None:
            continue
        if port and str(lst.port) == port:
            return name
        fallback = fallback or name
    return fallback


def explain(
    controller: MeshController,
    req: ExplainRequest,
    health: Callable[[], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    translator = controller.translator
    if translator is None:
        raise ExplainError(503, "the control plane has not computed the mesh yet")
    kind, sep, name = req.source.partition("/")
    kinds = {"svc": "service", "service": "service", "workload": "workload", "wl": "workload"}
    if not sep or not name or kind not in kinds:
        raise ExplainError(400, f"source: expected svc/NAME or workload/NAME, got {req.source!r}")
    kind = kinds[kind]
    host, _, port_text = (
        req.destination.rpartition(":")
        if ":" in req.destination
        else (
            req.destination,
            "",
            "",
        )
    )
    if not host or (port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536)):
        raise ExplainError(400, f"destination: expected HOST[:PORT], got {req.destination!r}")
    if not req.path.startswith("/"):
        raise ExplainError(400, f"path: must start with '/', got {req.path!r}")
    if not req.method.isalpha():
        raise ExplainError(400, f"method: not an HTTP method: {req.method!r}")
    flags = None
    if req.flags:
        try:
            flags = explain_flags(req.flags)
        except ValueError as exc:
            raise ExplainError(400, f"flags: {exc}") from None

    node, synthetic = _source(controller, kind, req.namespace, name)
    mtls = translator.mtls
    identity = controller.identity_of(node) if mtls.enabled else None
    authority = req.destination
    method = req.method.upper()
    ex = Explanation(
        source={
            "kind": kind,
            "namespace": req.namespace,
            "name": name,
            "proxy": None if synthetic else node.id,
            "synthetic": synthetic,
            "workload": node.workload,
            "identity": identity,
        },
        destination={
            "authority": authority,
            "method": method,
            "path": req.path,
            "headers": {k: v for k, v in req.headers},
        },
    )
    _walk(controller, translator, node, synthetic, identity, req, ex, health)
    if flags is not None:
        for flag, sentence in flags:
            ex.step("flags", flag, sentence)
    if not ex.summary:
        ex.summary = f"{method} {authority}{req.path} from {kind} {name}: {ex.outcome}."
    return ex.to_dict()


def _walk(
    controller: MeshController,
    translator: MeshTranslator,
    node: ProxyNode,
    synthetic: bool,
    identity: str | None,
    req: ExplainRequest,
    ex: Explanation,
    health: Callable[[], list[dict[str, Any]]] | None,
) -> None:
    method = req.method.upper()
    authority = req.destination
    what = f"{method} {authority}{req.path}"
    config = Config(translator.for_proxy(node))
    who = (
        f"a sidecar of {ex.source['kind']} {req.namespace}/{ex.source['name']} as it would be "
        "configured (no such sidecar is connected)"
        if synthetic
        else f"{'gateway' if node.kind == 'gateway' else 'sidecar'} {node.id}"
    )

    # 1. The listener the app's request arrives on.
    explicit = f"outbound:{authority}"
    listener_name = None
    via = ""
    if explicit in config.listeners():
        listener_name, via = explicit, "the explicit outbound port for this host:port"
    elif OUTBOUND_HTTP in config.listeners():
        listener_name, via = OUTBOUND_HTTP, "the HTTP proxy listener (the app's HTTP_PROXY)"
    else:
        # A gateway: the HTTP listener whose routes serve this authority (its port).
        listener_name = _serving_listener(config, authority, node.kind == "gateway")
        via = "the gateway listener serving this host"
    listener = config.listener(listener_name) if listener_name else None
    if listener is None:
        ex.outcome = "no-listener"
        ex.step(
            "listener",
            "none",
            f"{who} has no outbound listener for {authority}: it has no HTTP proxy port "
            f"and no explicit outbound port for it (listeners: "
            f"{', '.join(config.listeners()) or 'none'}).",
        )
        ex.summary = f"{what} would not reach the mesh: {who} has no listener for it."
        return
    ex.step(
        "listener",
        listener_name or "",
        f"{who} receives the request on {listener.name} ({listener.address}:{listener.port}), "
        f"{via}.",
    )
    handler = listener.handler
    if not isinstance(handler, m.HttpConnectionManager):
        ex.outcome = "tcp"
        clusters = ", ".join(f"{c.name} ({c.weight})" for c in handler.clusters)
        ex.step(
            "route",
            "tcp",
            f"this port carries TCP, not HTTP: bytes are relayed to {clusters} unparsed.",
        )
        ex.summary = f"{authority} is a TCP service: the request is relayed as bytes."
        return

    # 2. The route, by the sidecar's own table and parser.
    table = config.route_table(handler)
    target = f"http://{authority}{req.path}" if handler.forward_proxy else req.path
    head = parse_head(method, target, authority, req.headers)
    request_authority = head.authority or head.host or b""
    compiled = CompiledTable(table) if table is not None else None
    vh = compiled.find(request_authority) if compiled is not None else None
    if compiled is None or vh is None:
        ex.outcome = "no-route"
        hosts = sorted({d for v in (table.virtual_hosts if table else ()) for d in v.domains})
        shown = ", ".join(hosts[:12]) + (" ..." if len(hosts) > 12 else "")
        ex.step(
            "route",
            "no virtual host",
            f"no virtual host of route table {table.name if table else '-'} serves "
            f"{authority} (hosts: {shown or 'none'}); the sidecar answers 404 with flag NR.",
        )
        ex.summary = f"{what} is not routed: no service of the mesh answers to {authority}."
        return
    entry = vh.match(head, request_authority)
    if entry is None:
        ex.outcome = "no-route"
        routes = "; ".join(
            f"{r.name} ({_match_text(r)}, from {r.metadata.get('source', '-')})"
            for r in vh.vh.routes
        )
        ex.step(
            "route",
            "no route",
            f"virtual host {vh.name} serves {authority} but none of its routes matches "
            f"{method} {req.path} (routes: {routes or 'none'}); the sidecar answers 404 "
            "with flag NR.",
        )
        ex.summary = f"{what} is not routed: no route of {vh.name} matches it."
        return
    route = entry.route
    source = route.metadata.get("source") or None
    ex.step(
        "route",
        route.name or "(unnamed)",
        f"virtual host {vh.name} (domains {', '.join(vh.vh.domains[:6])}) matched "
        f"{authority}; route {route.name!r} matched ({_match_text(route)}).",
        source,
    )
    action = route.action
    if isinstance(action, m.DirectResponse):
        ex.outcome = "direct-response"
        body = action.body.decode(errors="replace").strip()[:200]
        ex.step(
            "route",
            f"direct response {action.status}",
            f"answered by the sidecar: {body!r}.",
            source,
        )
        ex.summary = f"{what} is answered by the sidecar itself with {action.status}."
        return
    if isinstance(action, m.Redirect):
        ex.outcome = "redirect"
        ex.step(
            "route", f"redirect {action.status}", "the sidecar answers with a redirect.", source
        )
        ex.summary = f"{what} is redirected ({action.status})."
        return

    # 3. The split and the backends.
    total = action.total_weight or sum(c.weight for c in action.clusters) or 1
    backends: list[tuple[m.WeightedCluster, m.Cluster | None]] = [
        (c, config.cluster(c.name)) for c in action.clusters
    ]
    if len(action.clusters) > 1:
        shares = ", ".join(f"{c.name} {100 * c.weight / total:g}%" for c in action.clusters)
        ex.step(
            "split",
            shares,
            f"each request picks one backend at random by weight: {shares}.",
            source,
        )
    health_by_address: dict[str, dict[str, Any]] = {}
    if health is not None:
        for item in health():
            health_by_address[
                f"{item['service']}.{item['namespace']}:{item['port']}|{item['address']}"
            ] = item
    healthy_total = 0
    weighted_healthy = 0
    dest_endpoint: m.Endpoint | None = None
    dest_cluster: m.Cluster | None = None
    for wc, cluster in backends:
        if cluster is None:
            ex.backends.append(
                {
                    "service": wc.name,
                    "cluster": wc.name,
                    "weight": wc.weight,
                    "healthyEndpoints": 0,
                    "endpoints": [],
                }
            )
            continue
        eps = config.endpoints(cluster)
        listed = []
        healthy = 0
        for ep in eps:
            report = health_by_address.get(f"{cluster.name}|{ep.address}:{ep.port}")
            ok = ep.healthy and (report is None or report.get("health") != "failing")
            healthy += ok
            listed.append(
                {
                    "address": f"{ep.address}:{ep.port}",
                    "workload": ep.workload or None,
                    "version": ep.labels.get("version"),
                    "zone": ep.zone or None,
                    "healthy": ok,
                    "checks": report.get("checks") if report else None,
                }
            )
            if ok and dest_endpoint is None:
                dest_endpoint, dest_cluster = ep, cluster
        healthy_total += healthy
        if wc.weight > 0:
            weighted_healthy += healthy
        ex.backends.append(
            {
                "service": cluster.metadata.get("service") or cluster.name,
                "namespace": cluster.metadata.get("namespace"),
                "cluster": cluster.name,
                "weight": wc.weight,
                "share": wc.weight / total,
                "healthyEndpoints": healthy,
                "endpoints": listed,
            }
        )
    missing = [wc.name for wc, c in backends if c is None]
    if missing:
        ex.outcome = "cluster-not-found"
        ex.step(
            "endpoints",
            "no cluster",
            f"the route sends to {', '.join(missing)}, which the sidecar does not have: it "
            "answers 503 with flag NC.",
            source,
        )
        ex.summary = f"{what} fails: the route's backend {missing[0]} does not exist."
        return

    # 4. Policies that apply, and where they came from.
    first = backends[0][1]
    assert first is not None
    service = first.metadata.get("service", "")
    namespace = first.metadata.get("namespace", req.namespace)
    port = int(authority.rpartition(":")[2]) if ":" in authority else None
    named = outbound_policies(translator, node, namespace, service, port, source or "")
    retry = entry.retry
    if retry is not None:
        ex.step(
            "policy",
            f"retry: up to {retry.num_retries} on {','.join(sorted(retry.retry_on))}",
            f"per-try timeout {_fmt_seconds(retry.per_try_timeout)}, backoff "
            f"{_fmt_seconds(retry.base_interval)}..{_fmt_seconds(retry.max_interval)}"
            + (", within the retry budget" if retry.budget else ""),
            ", ".join(named.get("RetryPolicy", [])) or source,
        )
    if entry.timeout:
        timeouts = ", ".join(named.get("TimeoutPolicy", []))
        default = not timeouts and entry.timeout == DEFAULT_ROUTE_TIMEOUT
        ex.step(
            "policy",
            f"timeout: {_fmt_seconds(entry.timeout)}",
            "the whole exchange must complete within it, else 504 with flag UT"
            + (
                " (the default route timeout: no TimeoutPolicy or route timeout sets one)."
                if default
                else "."
            ),
            timeouts or (None if default else source),
        )
    for _, cluster in backends:
        assert cluster is not None
        cb = cluster.circuit_breaker
        if cb != m.CircuitBreaker() or "CircuitBreakerPolicy" in named:
            ex.step(
                "policy",
                f"circuit breaker on {cluster.name}",
                f"max {cb.max_connections} connections, {cb.max_pending_requests} pending, "
                f"{cb.max_requests} active requests; beyond: 503 with flag UO.",
                _named(named, "CircuitBreakerPolicy"),
            )
        if cluster.outlier is not None:
            od = cluster.outlier
            ex.step(
                "policy",
                f"outlier detection on {cluster.name}",
                f"ejects an endpoint after {od.consecutive_5xx} consecutive 5xx for "
                f"{_fmt_seconds(od.base_ejection_time)} (at most {od.max_ejection_percent:g}%).",
                _named(named, "CircuitBreakerPolicy"),
            )
        if cluster.health_check is not None:
            hc = cluster.health_check
            ex.step(
                "policy",
                f"active health check on {cluster.name}",
                f"{hc.kind} {hc.path if hc.kind == 'http' else ''} every "
                f"{_fmt_seconds(hc.interval)}; {hc.unhealthy_threshold} failures mark an "
                "endpoint unhealthy.",
                _named(named, "HealthCheckPolicy"),
            )
        if cluster.lb_policy != "round_robin" or "LoadBalancerPolicy" in named:
            ex.step(
                "policy",
                f"load balancer on {cluster.name}: {cluster.lb_policy}",
                "how one endpoint of the backend is chosen.",
                _named(named, "LoadBalancerPolicy"),
            )

    # 5. Endpoints.
    if weighted_healthy == 0:
        ex.outcome = "no-healthy-endpoints"
        names = ", ".join(b["service"] for b in ex.backends)
        count = sum(len(b["endpoints"]) for b in ex.backends)
        why = (
            "it has no endpoints at all (no workload matches its selector, or none is running)"
            if count == 0
            else f"all {count} endpoints are unhealthy"
        )
        ex.step(
            "endpoints",
            "no healthy endpoint",
            f"{names}: {why}; the sidecar answers 503 with flag UH.",
        )
        ex.summary = f"{what} fails with 503 (UH): {names} has no healthy endpoint."
        return
    ex.step(
        "endpoints",
        f"{healthy_total} healthy",
        "; ".join(
            f"{b['service']}: {b['healthyEndpoints']} of {len(b['endpoints'])} healthy"
            for b in ex.backends
        )
        + ".",
    )

    # 6. mTLS toward the endpoint.
    assert dest_cluster is not None and dest_endpoint is not None
    tls = dest_cluster.tls
    uses_tls = tls is not None and (
        dest_cluster.tls_match is None
        or all(dest_endpoint.socket_match.get(k) == v for k, v in dest_cluster.tls_match.items())
    )
    mode = translator.mtls.mode
    if uses_tls and tls is not None:
        peer = ", ".join(tls.verify_san_uris) or tls.verify_hostname or "any certificate"
        ex.step(
            "mtls",
            f"mTLS ({mode})",
            f"the sidecar originates mTLS to {dest_endpoint.address}:{dest_endpoint.port} "
            f"as {identity or 'its identity'} and requires the peer to be {peer}.",
        )
    else:
        ex.step(
            "mtls",
            f"plaintext ({mode})",
            f"the request goes to {dest_endpoint.address}:{dest_endpoint.port} in plaintext"
            + (" (the endpoint has no sidecar)" if mode != "DISABLED" else " (mTLS is disabled)")
            + "; the destination cannot verify the caller's identity.",
        )
        identity = None if not uses_tls else identity

    # 7. Authorization at the destination's inbound listener.
    if not _authorize(
        controller, translator, dest_endpoint, dest_cluster, identity, entry, head, req, ex
    ):
        return
    ex.outcome = "routed"
    where = ", ".join(f"{b['service']} ({100 * b['share']:g}%)" for b in ex.backends if b["weight"])
    ex.summary = f"{what} is routed by {source or route.name} to {where}."


def _authorize(
    controller: MeshController,
    translator: MeshTranslator,
    ep: m.Endpoint,
    cluster: m.Cluster,
    identity: str | None,
    entry: RouteEntry,
    head: RequestHead,
    req: ExplainRequest,
    ex: Explanation,
) -> bool:
    """False when the destination denies the request (the outcome is set)."""
    namespace = cluster.metadata.get("namespace", req.namespace)
    dest = _destination_node(controller, ep.workload, namespace) if ep.workload else None
    if dest is None:
        ex.step(
            "authz", "not checked", "the endpoint has no sidecar of the mesh: no authorization."
        )
        return True
    config = Config(translator.for_proxy(dest))
    inbound = None
    for name in config.listeners():
        lst = config.listener(name)
        if lst is not None and lst.direction == "inbound" and lst.port == ep.port:
            inbound = lst
            break
    if inbound is None or not isinstance(inbound.handler, m.HttpConnectionManager):
        ex.step(
            "authz",
            "not checked",
            f"no inbound HTTP listener of {dest.workload} on port {ep.port} in its config.",
        )
        return True
    rbac = [f.config for f in inbound.handler.filters if isinstance(f.config, m.RbacFilter)]
    checker = authorizer(rbac, f"{namespace}/{dest.service}")
    upstream_path = entry.upstream_path(head.path) if entry.rewrites else None
    inbound_head = parse_head(
        head.method.decode(),
        (upstream_path or head.path).decode("latin-1"),
        req.destination,
        req.headers,
    )
    authority = inbound_head.host or b""
    caller = identity or "an unauthenticated caller"
    policies = inbound_policies(translator, dest)
    for kind_name in ("FaultInjectionPolicy", "RateLimitPolicy"):
        if kind_name in policies:
            ex.step(
                "policy",
                f"{kind_name} at the destination",
                f"{dest.workload}'s inbound side applies it to incoming requests.",
                ", ".join(policies[kind_name]),
            )
    if checker is None:
        ex.step(
            "authz",
            "allowed",
            f"no TrafficPermission or TrafficTarget restricts {dest.service} and the Mesh "
            "allows by default: the request is accepted.",
        )
        return True
    refused = checker.check(identity, inbound_head, authority)
    if refused is None:
        shadow = checker.check_shadow(identity, inbound_head, authority) if checker.shadow else None
        detail = f"{dest.workload}'s sidecar allows {caller} to {req.method.upper()} {req.path}"
        if shadow is not None:
            detail += f" (a shadow policy, {_authz_resource(translator, shadow)}, would deny it)"
        ex.step("authz", "allowed", detail + ".")
        return True
    resource = _authz_resource(translator, refused)
    ex.outcome = "denied"
    ex.step(
        "authz",
        "denied",
        f"{dest.workload}'s sidecar refuses {caller} for {req.method.upper()} {req.path}: "
        f"{resource} decides; the caller gets 403 with flag RBAC.",
        resource,
    )
    ex.summary = (
        f"{req.method.upper()} {req.destination}{req.path} is denied at {dest.service} by "
        f"{resource}."
    )
    return False
