"""The real control-plane process driven by the real CLI (issue: foundation)."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.processes import ControlPlane

pytestmark = pytest.mark.integration

SCENARIOS = Path(__file__).parent.parent / "fixtures" / "scenarios"

VALID_SERVICE = """
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {name: innocent, namespace: bookstore}
spec: {selector: {app: innocent}, ports: [{port: 80}]}
---
"""

BAD_MANIFESTS = {
    "wrong-type": (
        """
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s1, namespace: bookstore}
spec:
  service: bookstore
  backends: [{service: bookstore, weight: fifty}]
""",
        "TrafficSplit bookstore/s1: spec.backends[0].weight: expected an integer, "
        "got string 'fifty'",
    ),
    "negative-weight": (
        """
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: bookstore-split, namespace: bookstore}
spec:
  service: bookstore
  backends: [{service: bookstore, weight: 50}, {service: bookstore-v2, weight: -5}]
""",
        "TrafficSplit bookstore/bookstore-split: spec.backends[1].weight: must be >= 0, got -5",
    ),
    "unknown-field": (
        """
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: s3, namespace: bookstore}
spec:
  service: bookstore
  backends: [{service: bookstore, weight: 1}]
  weigths: {}
""",
        "TrafficSplit bookstore/s3: spec.weigths: unknown field",
    ),
    "no-destination": (
        """
kind: TrafficTarget
apiVersion: access.smi-spec.io/v1alpha3
metadata: {name: t1, namespace: bookstore}
spec:
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
""",
        "TrafficTarget bookstore/t1: spec.destination: required field is missing",
    ),
}


def test_scenario_manifests_apply_list_and_survive_a_restart(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    applied = control_plane.cli("apply", "-f", str(SCENARIOS), check=True)
    assert "TrafficSplit bookstore/bookstore-split created" in applied.stdout
    assert "TrafficTarget bookstore/bookstore created" in applied.stdout
    assert "HTTPRouteGroup bookstore/bookstore-service-routes created" in applied.stdout

    listed = control_plane.cli("get", "ts", "-A", "-o", "yaml", check=True)
    [split] = list(yaml.safe_load_all(listed.stdout))
    assert split["metadata"]["name"] == "bookstore-split"
    assert split["spec"]["backends"] == [
        {"service": "bookstore", "weight": 50},
        {"service": "bookstore-v2", "weight": 50},
    ]

    before = {
        kind: control_plane.cli("get", kind, "-A", "-o", "json", check=True).stdout
        for kind in ("ts", "tt", "httproutegroups")
    }
    assert control_plane.stop() == 0
    control_plane.start()
    for kind, text in before.items():
        assert control_plane.cli("get", kind, "-A", "-o", "json", check=True).stdout == text

    table = control_plane.cli("get", "trafficsplit", "-n", "bookstore", check=True).stdout
    assert "bookstore-split" in table and "bookstore=50,bookstore-v2=50" in table


@pytest.mark.parametrize("case", sorted(BAD_MANIFESTS))
def test_bad_manifest_exits_1_names_the_field_and_stores_nothing(
    control_plane: ControlPlane, tmp_path: Path, case: str
) -> None:
    text, message = BAD_MANIFESTS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(VALID_SERVICE + text)
    result = control_plane.cli("apply", "-f", str(path))
    assert result.returncode == 1
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    listed = control_plane.cli("get", "all", "-A", "-o", "json", check=True).stdout
    assert listed.strip() == "" or json.loads(listed)["items"] == []


def test_the_server_refuses_bad_documents_too(control_plane: ControlPlane) -> None:
    text, message = BAD_MANIFESTS["negative-weight"]
    response = httpx.post(
        control_plane.api + "/api/v1/apply",
        content=VALID_SERVICE + text,
        headers={
            "content-type": "application/yaml",
            "authorization": f"Bearer {control_plane.token}",
        },
    )
    assert response.status_code == 422
    assert message in response.json()["error"]
    assert (
        response.json()["details"]["errors"][0]["problems"][0]["path"] == "spec.backends[1].weight"
    )


def test_writes_need_the_token_and_the_token_file_is_private(control_plane: ControlPlane) -> None:
    token_file = control_plane.state_dir / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    doc = {"documents": [yaml.safe_load(VALID_SERVICE.split("---")[0])]}
    url = control_plane.api + "/api/v1/apply"
    assert httpx.post(url, json=doc).status_code == 401
    assert httpx.post(url, json=doc, headers={"authorization": "Bearer wrong"}).status_code == 401
    no_token = control_plane.api + "/api/v1/namespaces/bookstore/services/innocent"
    assert httpx.delete(no_token).status_code == 401
    ok = httpx.post(url, json=doc, headers={"authorization": f"Bearer {control_plane.token}"})
    assert ok.status_code == 200
    # reads from loopback are open by default
    assert httpx.get(control_plane.api + "/api/v1/services").status_code == 200
    # the CLI without any token fails with the server's reason
    result = control_plane.cli("--token", "nope", "delete", "svc", "innocent", "-n", "bookstore")
    assert result.returncode == 1
    assert "bearer token" in result.stderr


def test_reads_can_require_a_token(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "cp", "memory://", "--read-access", "token").start()
    try:
        assert httpx.get(cp.api + "/api/v1/services").status_code == 401
        headers = {"authorization": f"Bearer {cp.token}"}
        assert httpx.get(cp.api + "/api/v1/services", headers=headers).status_code == 200
        assert httpx.get(cp.api + "/healthz").status_code == 200
    finally:
        cp.stop()


def test_watch_streams_changes_in_order(control_plane: ControlPlane, tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    opened = threading.Event()

    def follow() -> None:
        with httpx.stream(
            "GET", control_plane.api + "/api/v1/watch?fromRevision=0", timeout=30
        ) as response:
            event = ""
            for line in response.iter_lines():
                opened.set()
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    body = json.loads(line.split(":", 1)[1])
                    seen.append((event, body["object"]["metadata"]["name"]))
                    if len(seen) == 3:
                        return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    opened.wait(10)
    manifest = tmp_path / "svc.yaml"
    manifest.write_text(VALID_SERVICE)
    control_plane.cli("apply", "-f", str(manifest), check=True)
    manifest.write_text(VALID_SERVICE.replace("port: 80", "port: 81"))
    control_plane.cli("apply", "-f", str(manifest), check=True)
    control_plane.cli("delete", "-f", str(manifest), check=True)
    thread.join(20)
    assert seen == [("ADDED", "innocent"), ("MODIFIED", "innocent"), ("DELETED", "innocent")]


def test_sigterm_shuts_down_cleanly(control_plane: ControlPlane) -> None:
    discovery = control_plane.state_dir / "controlplane.json"
    assert discovery.exists()
    assert control_plane.stop() == 0
    assert not discovery.exists()
    assert "control plane stopped" in control_plane.output()


def test_openapi_and_health(control_plane: ControlPlane) -> None:
    spec = httpx.get(control_plane.api + "/openapi.json").json()
    assert "/api/v1/apply" in spec["paths"]
    assert httpx.get(control_plane.api + "/readyz").json() == {"status": "ready"}
    kinds = {k["kind"] for k in httpx.get(control_plane.api + "/api/v1/kinds").json()}
    assert {"TrafficSplit", "HTTPRoute", "Ingress", "RetryPolicy", "Mesh"} <= kinds


def test_dashboard_address_and_inventory_page(control_plane: ControlPlane) -> None:
    url = control_plane.cli("dashboard", check=True).stdout.strip()
    assert url == control_plane.api + "/"
    page = httpx.get(url)
    assert page.status_code == 200
    assert "<title>Gossamer</title>" in page.text and "/ui/app.js" in page.text
