"""Every policy golden case's output is accepted by the sidecar's compiler (no NACK), and
the compiled config carries what the policy said."""

from __future__ import annotations

from pathlib import Path

import pytest

from gossamer.controlplane.translate import MeshTranslator
from gossamer.controlplane.translate import envoy as e
from gossamer.controlplane.translate.snapshot import build_snapshot
from gossamer.proxy.config import model as m
from gossamer.proxy.config.compile import (
    compile_cluster,
    compile_listener,
    compile_route_configuration,
)
from tests.support.golden import load_case

HERE = Path(__file__).parent
RESILIENCE = (
    "retrypolicy",
    "timeoutpolicy",
    "circuitbreakerpolicy",
    "healthcheckpolicy",
    "loadbalancerpolicy",
    "faultinjectionpolicy",
    "ratelimitpolicy",
)
CASES = sorted(c for p in RESILIENCE for c in (HERE / p).glob("testdata/*.input.yaml"))


def _compiled(case: Path) -> dict[str, dict[str, object]]:
    resources, nodes = load_case(case)
    translator = MeshTranslator(build_snapshot(resources))
    out: dict[str, dict[str, object]] = {}
    for node in nodes:
        res = translator.for_proxy(node)
        out[node.id] = {
            **{n: compile_listener(x) for n, x in res[e.LISTENER].items()},
            **{n: compile_route_configuration(x) for n, x in res[e.ROUTE].items()},
            **{n: compile_cluster(x) for n, x in res[e.CLUSTER].items()},
        }
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.parent.parent.name for c in CASES])
def test_sidecar_accepts_the_translation(case: Path) -> None:
    assert _compiled(case)


def _routes(table: object, vh_name: str) -> list[m.Route]:
    assert isinstance(table, m.RouteTable)
    return [r for vh in table.virtual_hosts if vh.name == vh_name for r in vh.routes]


def test_retry_policy_reaches_the_sidecar() -> None:
    compiled = _compiled(HERE / "retrypolicy/testdata/mesh-and-service.input.yaml")
    web = _routes(compiled["client-1"]["outbound:http"], "web.default:80")
    post, default = web[0].action, web[-1].action
    assert isinstance(post, m.RouteAction) and isinstance(default, m.RouteAction)
    assert post.retry is not None and post.retry.methods is None  # non-idempotent allowed
    retry = default.retry
    assert retry is not None and retry.methods is not None
    assert retry.methods.fullmatch("GET") and not retry.methods.fullmatch("POST")
    assert (retry.num_retries, retry.per_try_timeout) == (3, 0.5)
    assert retry.retriable_status_codes == {409}
    assert (retry.budget, retry.budget_percent, retry.min_retries_per_second) == (True, 25, 5)
    api = _routes(compiled["web-1"]["outbound:http"], "api.default:8080")[0].action
    assert isinstance(api, m.RouteAction) and api.retry is not None
    assert not api.retry.budget and api.retry.max_body_bytes == 65536
    # client-1 is not selected by the web-callers policy: its budget is on.
    api = _routes(compiled["client-1"]["outbound:http"], "api.default:8080")[0].action
    assert isinstance(api, m.RouteAction) and api.retry is not None and api.retry.budget


def test_cluster_policies_reach_the_sidecar() -> None:
    compiled = _compiled(HERE / "circuitbreakerpolicy/testdata/limits-and-outliers.input.yaml")
    web = compiled["client-1"]["web.default:80"]
    assert isinstance(web, m.Cluster)
    assert web.circuit_breaker == m.CircuitBreaker(100, 10, 50, 5)
    assert web.outlier is not None and web.outlier.consecutive_5xx is None
    assert web.outlier.consecutive_gateway_errors == 4
    api_client = compiled["client-1"]["api.default:8080"]
    api_web = compiled["web-1"]["api.default:8080"]
    assert isinstance(api_client, m.Cluster) and isinstance(api_web, m.Cluster)
    assert api_client.outlier is not None and api_client.outlier.consecutive_5xx == 3
    assert api_web.outlier is None


def test_inbound_filters_reach_the_sidecar() -> None:
    fault = _compiled(HERE / "faultinjectionpolicy/testdata/delay-and-abort.input.yaml")
    listener = fault["web-1"]["inbound:18000"]
    assert isinstance(listener, m.Listener)
    assert isinstance(listener.handler, m.HttpConnectionManager)
    config = listener.handler.filters[0].config
    assert isinstance(config, m.FaultConfig)
    assert (config.abort_status, config.abort_fraction) == (503, 0.505)
    assert (config.delay, config.delay_fraction) == (2.0, 0.1)
    assert config.headers[0].name == "x-chaos"
    assert "inbound:18000" not in fault["client-1"]
    limit = _compiled(HERE / "ratelimitpolicy/testdata/local-bucket.input.yaml")
    listener = limit["web-1"]["inbound:18000"]
    assert isinstance(listener, m.Listener)
    assert isinstance(listener.handler, m.HttpConnectionManager)
    rl = listener.handler.filters[0].config
    assert rl == m.LocalRateLimitConfig(10, 10, 1.0, 429, (("x-limited-by", "gossamer"),), True)


def test_health_checks_reach_the_sidecar() -> None:
    compiled = _compiled(HERE / "healthcheckpolicy/testdata/http-tcp-grpc.input.yaml")
    web = compiled["client-1"]["web.default:80"]
    assert isinstance(web, m.Cluster) and web.health_check is not None
    hc = web.health_check
    assert (hc.kind, hc.path, hc.method, hc.headers) == (
        "http",
        "/healthz",
        "HEAD",
        (("x-probe", "1"),),
    )
    assert (hc.interval, hc.timeout, hc.healthy_threshold, hc.unhealthy_threshold) == (2, 0.5, 2, 3)
    assert hc.expected_statuses == ((200, 201), (204, 205))
    api = compiled["client-1"]["api.default:8080"]
    assert isinstance(api, m.Cluster) and api.health_check is not None
    assert (api.health_check.send, api.health_check.receive) == (b"ping", b"pong")
    api = compiled["web-1"]["api.default:8080"]
    assert isinstance(api, m.Cluster) and api.health_check is not None
    assert (api.health_check.kind, api.health_check.grpc_service) == ("grpc", "api.v1.Api")


def test_connection_limit_reaches_the_sidecar() -> None:
    compiled = _compiled(HERE / "ratelimitpolicy/testdata/tcp-connections.input.yaml")
    listener = compiled["db-1"]["inbound:25432"]
    assert isinstance(listener, m.Listener) and isinstance(listener.handler, m.TcpProxy)
    assert listener.connection_limit == m.LocalRateLimitConfig(5, 5, 1.0)


def test_tcp_idle_timeouts_reach_the_sidecar() -> None:
    compiled = _compiled(HERE / "timeoutpolicy/testdata/tcp.input.yaml")
    out = compiled["client-1"]["outbound:db:5432"]
    inbound = compiled["db-1"]["inbound:25432"]
    assert isinstance(out, m.Listener) and isinstance(out.handler, m.TcpProxy)
    assert isinstance(inbound, m.Listener) and isinstance(inbound.handler, m.TcpProxy)
    assert (out.handler.idle_timeout, inbound.handler.idle_timeout) == (30.0, 120.0)
