"""The dashboard in a real browser (Debian's chromium, headless) against a real control plane
running the canary topology with traffic: one mesh and one browser for the whole module.

A control plane without the observability APIs (metrics, traces, tap, explain) is
simulated in the browser (404 "unknown kind", as an older one answers): each part of the
page must then say "not available" cleanly.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gossamer.demo.runner import Demo
from gossamer.demo.scenarios import CANARY
from gossamer.demo.traffic import Driver
from tests.support.browser import VIEWPORT, browser, collect_errors, screenshot
from tests.support.processes import ControlPlane, Process
from tests.support.wait import wait_for
from tests.support.xds_clients import NACK_ERROR

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent.parent
CANARY_90_10 = (ROOT / "examples/canary/canary-90-10.yaml").read_text()
# Every request traced into the control plane's collector (docs/tracing.md).
TRACED_MESH = """
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {tracing: {sampling: 100, backend: builtin}}
"""


@dataclass
class Mesh:
    api: str
    xds: str
    token: str
    demo: Demo


@pytest.fixture(scope="module")
def mesh() -> Iterator[Mesh]:
    demo = Demo(CANARY, out=io.StringIO())
    driver: Driver | None = None
    nacker: Process | None = None
    with tempfile.TemporaryDirectory(prefix="gossamer-dashboard-") as tmp:
        try:
            port = demo.start_mesh(Path(tmp))
            driver = Driver("http", "127.0.0.1", port, CANARY.classify, CANARY.path, max_rate=100)
            driver.start()
            demo._warm_up(driver)
            demo.apply(CANARY_90_10)
            demo.apply(TRACED_MESH)
            xds = json.loads((Path(tmp) / "cp" / "controlplane.json").read_text())["xds"]
            # A sidecar that rejects its listeners: the proxies page must flag it.
            nacker = Process(
                "nacker",
                [sys.executable, "-m", "tests.support.xds_clients", "--xds", xds, "--token",
                 demo.token, "--count", "1", "--prefix", "nacker-", "--nack", "nacker-0"],
                Path(tmp) / "nacker.log",
            ).start()  # fmt: skip
            yield Mesh(demo.api, xds, demo.token, demo)
        finally:
            if nacker is not None:
                nacker.stop()
            if driver is not None:
                driver.stop()
            demo.stop_all()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as b:
        yield b


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = collect_errors(page)
    yield page
    text = page.locator("main").inner_text() if not page.is_closed() else ""
    context.close()
    assert errors == [], f"script errors on the page: {errors}"
    # Values the page failed to format.
    for junk in ("[object Object]", "undefined", "NaN"):
        assert junk not in text, f"{junk!r} on the page:\n{text}"


def open_page(page: Any, mesh: Mesh | str, route: str) -> None:
    api = mesh if isinstance(mesh, str) else mesh.api
    page.goto(f"{api}/#/{route}")
    page.wait_for_selector("body[data-ready=true]")


def test_overview_lists_the_services(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "overview")
    services = page.locator("#services tbody")
    services.get_by_role("link", name="benigno", exact=True).wait_for()
    services.get_by_role("link", name="magnanimo", exact=True).wait_for()
    # Golden metrics for benigno (traffic flows through it all along).
    row = services.locator("tr", has=page.get_by_role("link", name="benigno", exact=True))
    wait_for(lambda: "%" in row.inner_text(), timeout=30, message="benigno's success rate")
    page.locator("#worst").get_by_role("link", name="benigno", exact=True).wait_for()
    cards = page.locator(".cards").inner_text()
    assert "STRICT" in cards  # the mesh's mTLS mode (no Mesh resource: the default)
    assert "root expires in" in cards  # certificate expiry from /api/v1/ca
    screenshot(page, "overview")


def test_a_nacking_proxy_is_flagged(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "proxies")
    row = page.locator('#proxies tr[data-proxy="nacker-0"]')
    row.wait_for()
    wait_for(lambda: row.get_attribute("data-state") == "nacking", timeout=15, message="NACK")
    text = row.inner_text()
    assert "NACKing" in text and NACK_ERROR in text
    # The healthy sidecars are not flagged.
    assert page.locator('#proxies tr[data-proxy="magnanimo"]').get_attribute("data-state") == (
        "connected"
    )
    screenshot(page, "proxies")
    # Overview counts it, and lists it under the proxies needing attention.
    page.get_by_role("link", name="Overview").click()
    page.locator("#attention").get_by_role("link", name="nacker-0").wait_for()
    # Its page shows the NACK and the config dump, searchable.
    page.goto(f"{mesh.api}/#/proxy/magnanimo")
    page.locator("#config-search").fill("benigno")
    page.locator("pre.json mark").first.wait_for()
    screenshot(page, "proxy")


def test_policies_show_yaml(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "policies/HTTPRoute.gateway.networking.k8s.io/default/benigno-canary")
    yaml = page.locator("pre.yaml")
    yaml.wait_for()
    text = yaml.inner_text()
    assert "kind: HTTPRoute" in text and "weight: 90" in text, text
    screenshot(page, "policies")


def test_explain_form_returns_an_explanation(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "policies")
    page.locator("#ex-source").fill("workload/magnanimo")
    page.locator("#ex-dest").fill("benigno:5000")
    page.locator("#ex-path").fill("/hello")
    page.get_by_role("button", name="Explain").click()
    summary = page.locator("#explain-result .summary")
    summary.wait_for()
    assert "routed" in summary.inner_text()
    result = page.locator("#explain-result").inner_text()
    assert "benigno-v1" in result and "benigno-v2" in result and "[object" not in result
    assert page.locator("#explain-result table").first.inner_text().count("\n") >= 2
    screenshot(page, "explain")


def _split_of_last_point(page: Any) -> float | None:
    fig = page.locator('figure[aria-label="Requests per second"]')
    if fig.count() == 0:
        return None
    last = json.loads(fig.get_attribute("data-last") or "{}")
    v1, v2 = last.get("v1") or 0.0, last.get("v2") or 0.0
    return float(v2 / (v1 + v2)) if v1 + v2 > 0 else None


def test_service_chart_follows_the_split(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "service/default/benigno")
    # Configured split from the HTTPRoute, whatever the metrics.
    split = page.locator("table#split")
    split.get_by_text("benigno-v2").wait_for()
    assert "10%" in split.inner_text() and "90%" in split.inner_text()
    # The last point of the requests/s chart: v2's share near the configured 10%
    # (~100 req/s over a 10 s step: 4 standard errors are under 4 points).
    share = wait_for(
        lambda: (s := _split_of_last_point(page)) is not None and abs(s - 0.10) < 0.05 and s,
        timeout=45,
        message="the chart's last point to show the 90/10 split",
    )
    assert share
    # magnanimo calls benigno (through its split's backends).
    page.locator("#inbound").get_by_role("link", name="magnanimo").first.wait_for()
    screenshot(page, "service")


def test_topology_shows_magnanimo_calling_benigno(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "topology")
    page.locator('#edges tr[data-edge="magnanimo>benigno"]').wait_for(timeout=30_000)
    # The graph has the same edge, and a click on a node opens its page.
    assert page.evaluate(
        "() => window.gossamerGraph.edges().some(e => e.source().data('name') === 'magnanimo'"
        " && e.target().data('name') === 'benigno')"
    )
    # Live: the labels follow the metrics stream (every 2 s) without a reload or re-layout.
    labels = "() => window.gossamerGraph.edges().map(e => e.data('label')).join('|')"
    before = page.evaluate(labels)
    wait_for(lambda: page.evaluate(labels) != before, timeout=20, message="edge labels to move")
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    screenshot(page, "topology")
    # A click on a node opens its service's page (so does its link in the table).
    box = page.evaluate(
        "() => { const n = window.gossamerGraph.getElementById('default/benigno');"
        " const p = n.renderedPosition(); const r = document.getElementById('graph')"
        ".getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }"
    )
    page.mouse.click(box[0], box[1])
    page.wait_for_url("**/#/service/default/benigno")
    page.go_back()
    page.locator("#edges").get_by_role("link", name="magnanimo").first.click()
    page.wait_for_url("**/#/service/default/magnanimo")


def test_traces_list_and_waterfall(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "traces")
    # The canary's own traffic, traced by the sidecars and the gateway (the list refreshes
    # every 5 s): ingress -> magnanimo -> benigno.
    rows = page.locator("table#traces tbody tr", has_text="benigno")
    first = rows.filter(has_text="ingress").filter(has_text="magnanimo").first
    first.wait_for(timeout=30_000)
    screenshot(page, "traces")
    first.get_by_role("link").click()
    rows = page.locator(".waterfall .span-row:not(.span-head)")
    rows.nth(2).wait_for()
    services = [r.inner_text().split(" ", 1)[0] for r in rows.locator(".span-name strong").all()]
    assert services[0] == "ingress", services
    assert {"magnanimo", "benigno"} <= set(services), services
    # A span's tags, from the keyboard.
    rows.nth(2).locator("summary").focus()
    page.keyboard.press("Enter")
    assert "http.status_code" in rows.nth(2).locator("dl").inner_text()
    screenshot(page, "trace")


def test_tap_page(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "tap")
    page.locator("#tap-target").select_option("svc/benigno")
    page.get_by_role("button", name="Start").click()
    page.locator("#tap-table tbody tr").first.wait_for(timeout=20_000)
    assert "benigno" in page.locator("#tap-table tbody").inner_text()
    page.get_by_role("button", name="Stop").click()
    screenshot(page, "tap")


def test_a_control_plane_without_the_observability_apis(chromium: Any, mesh: Mesh) -> None:
    """An older control plane (no metrics, traces, tap or explain: its generic resource
    route answers 404 "unknown kind"): each part says "not available", the rest works."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = collect_errors(page)

    def unknown(path: str) -> Any:
        body = json.dumps({"error": f"unknown kind '{path}'; known kinds: ...", "status": 404})
        return lambda route: route.fulfill(status=404, body=body, content_type="application/json")

    for path in ("stats", "traces", "tap", "explain"):
        page.route(f"**/api/v1/{path}**", unknown(path))
    try:
        open_page(page, mesh, "overview")
        page.get_by_text("Golden metrics: not available").wait_for()
        page.locator("#services").get_by_role("link", name="benigno", exact=True).wait_for()
        page.goto(f"{mesh.api}/#/service/default/benigno")
        page.get_by_text("Time series: not available").wait_for()
        page.locator("table#split").get_by_text("benigno-v2").wait_for()  # configured split
        page.goto(f"{mesh.api}/#/topology")
        page.get_by_text("Traffic edges: not available").wait_for()
        page.goto(f"{mesh.api}/#/traces")
        page.get_by_text("Traces: not available").wait_for()
        page.goto(f"{mesh.api}/#/tap")
        page.get_by_role("button", name="Start").click()
        page.get_by_text("Tap: not available").wait_for()
        page.goto(f"{mesh.api}/#/policies")
        page.get_by_role("button", name="Explain").click()
        page.locator("#explain-result").get_by_text("not available").wait_for()
        screenshot(page, "without-observability")
    finally:
        context.close()
    assert errors == []


def test_pages_work_without_the_libraries(chromium: Any, mesh: Mesh) -> None:
    """No charts, graph or YAML library installed: tables still show everything."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = collect_errors(page)
    page.route("**/ui/vendor/**", lambda route: route.fulfill(status=404, body="not installed"))
    try:
        open_page(page, mesh, "topology")
        page.get_by_text("graph library not installed").wait_for()
        page.locator("#edges").wait_for()
        page.goto(f"{mesh.api}/#/policies/HTTPRoute/default/benigno-canary")
        assert "weight: 90" in page.locator("pre.yaml").inner_text()  # our own YAML emitter
        page.goto(f"{mesh.api}/#/overview")
        page.locator("#services").get_by_role("link", name="benigno", exact=True).wait_for()
        assert "library missing" in page.locator("#libs").inner_text()
    finally:
        context.close()
    assert errors == []


def test_keyboard_reaches_every_page(page: Any, mesh: Mesh) -> None:
    open_page(page, mesh, "overview")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(20):  # bounded: the nav comes first
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Proxies":
            break
    page.keyboard.press("Enter")
    page.wait_for_url("**/#/proxies")
    page.locator('nav.top a[aria-current="page"]', has_text="Proxies").wait_for()
    page.locator("#proxies").wait_for()


def test_a_reader_token_is_all_it_needs(chromium: Any, tmp_path: Path) -> None:
    """A control plane that wants a token for every read: the page asks for one, works with
    a reader token, and only ever sends GETs."""
    cp = ControlPlane(tmp_path / "cp", "memory://", "--read-access", "token").start()
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        reader = cp.cli("token", "create", "--role", "reader", check=True).stdout.strip()
        page = context.new_page()
        errors = collect_errors(page)
        methods: set[str] = set()
        page.on("request", lambda request: methods.add(request.method))
        open_page(page, cp.api, "overview")
        page.get_by_text("needs a token").wait_for()
        page.get_by_role("button", name="Token").click()
        page.get_by_label("Token", exact=True).fill(reader)
        page.get_by_role("button", name="Save").click()
        page.locator("#services").get_by_text("no services yet").wait_for()
        page.goto(f"{cp.api}/#/policies")
        page.locator("nav.kinds").get_by_role("link", name="HTTPRoute (0)").wait_for()
        page.locator("#live").get_by_text("live", exact=True).wait_for()
        assert methods == {"GET"}, methods
        assert errors == []
    finally:
        context.close()
        cp.stop()


PROMOTE_SMI = """
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: benigno-canary}
spec:
  service: benigno
  backends:
  - {service: benigno-v1, weight: 0}
  - {service: benigno-v2, weight: 100}
"""


def test_the_service_page_follows_a_promotion_live(page: Any, mesh: Mesh) -> None:
    """Last in the module (it changes the mesh): the canary is promoted with an SMI
    TrafficSplit while the page is open; the configured split and then the chart follow,
    with no reload."""
    open_page(page, mesh, "service/default/benigno")
    split = page.locator("table#split")
    split.get_by_text("HTTPRoute benigno-canary").first.wait_for()
    mesh.demo.delete("httproute/benigno-canary")
    mesh.demo.apply(PROMOTE_SMI)
    split.get_by_text("TrafficSplit benigno-canary").first.wait_for()
    rows = {r.split("\t")[1]: r for r in split.locator("tbody tr").all_inner_texts()}
    assert "0%" in rows["v1"] and "100%" in rows["v2"], rows
    wait_for(
        lambda: (s := _split_of_last_point(page)) is not None and s > 0.95,
        timeout=60,
        message="the chart's last point to show the promotion",
    )
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    screenshot(page, "service-promoted")


def test_the_page_rides_out_a_control_plane_restart(chromium: Any, tmp_path: Path) -> None:
    """The streams reconnect by themselves: a Service applied after a restart shows up
    without a reload."""
    cp = ControlPlane(tmp_path / "cp").start()
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        open_page(page, cp.api, "overview")
        page.locator("#live").get_by_text("live", exact=True).wait_for()
        cp.restart()
        cp.cli("apply", "-f", "-", input=(
            "apiVersion: gossamer.io/v1alpha1\nkind: Service\nmetadata: {name: after}\n"
            "spec: {selector: {app: after}}\n"
        ), check=True)  # fmt: skip
        page.locator("#services").get_by_role("link", name="after").wait_for(timeout=20_000)
        page.locator("#live").get_by_text("live", exact=True).wait_for()
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    finally:
        context.close()
        cp.stop()
