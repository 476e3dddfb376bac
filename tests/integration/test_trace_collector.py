"""The control plane's built-in collector over its REST API: Zipkin v2 spans in (data-plane
tokens may post here and only here), traces listed and fetched as obs-contract.md says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ControlPlane

pytestmark = pytest.mark.integration

T = "5" * 32


@pytest.fixture(scope="module")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    cp = ControlPlane(Path(tmp_path_factory.mktemp("cp")), "memory://").start()
    yield cp
    cp.stop()


def spans() -> list[dict[str, object]]:
    def one(sid: str, parent: str | None, service: str, ts: int) -> dict[str, object]:
        out: dict[str, object] = {
            "traceId": T,
            "id": sid,
            "name": "get /x",
            "kind": "SERVER",
            "timestamp": ts,
            "duration": 50,
            "localEndpoint": {"serviceName": service},
        }
        if parent:
            out["parentId"] = parent
        return out

    return [one("1" * 16, None, "ingress", 100), one("2" * 16, "1" * 16, "benigno", 120)]


def test_post_list_and_fetch(cp: ControlPlane) -> None:
    admin = {"authorization": f"Bearer {cp.token}"}
    r = httpx.post(cp.api + "/api/v1/tokens", json={"service": "benigno"}, headers=admin)
    dataplane = {"authorization": f"Bearer {r.json()['token']}"}
    # A data-plane token may post spans, and still nothing else.
    r = httpx.post(cp.api + "/api/v2/spans", json=spans(), headers=dataplane)
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 2}
    assert httpx.get(cp.api + "/api/v1/meshes", headers=dataplane).status_code == 403
    r = httpx.post(cp.api + "/api/v1/apply", content="{}", headers=dataplane)
    assert r.status_code == 403
    items = httpx.get(cp.api + "/api/v1/traces").json()["items"]
    assert items == [
        {
            "traceId": T,
            "rootService": "ingress",
            "rootName": "get /x",
            "startUs": 100,
            "durationUs": 70,
            "spans": 2,
            "services": ["ingress", "benigno"],
            "error": False,
        }
    ]
    assert httpx.get(cp.api + "/api/v1/traces?service=nobody").json() == {"items": []}
    trace = httpx.get(cp.api + f"/api/v1/traces/{T}").json()
    assert trace["traceId"] == T and [s["id"] for s in trace["spans"]] == ["1" * 16, "2" * 16]
    r = httpx.get(cp.api + "/api/v1/traces/" + "6" * 32)
    assert r.status_code == 404 and "not found" in r.json()["error"]


def test_bad_input_is_refused_with_the_reason(cp: ControlPlane) -> None:
    r = httpx.post(cp.api + "/api/v2/spans", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    bad = spans()
    bad[1]["id"] = "xyz"
    r = httpx.post(cp.api + "/api/v2/spans", json=bad)
    assert r.status_code == 400
    assert r.json()["error"].startswith("spans[1].id: must be 16 lower-hex digits")
    r = httpx.get(cp.api + "/api/v1/traces?limit=0")
    assert r.status_code == 400 and "limit" in r.json()["error"]
    r = httpx.post(cp.api + "/api/v2/spans", json=spans(), headers={"authorization": "Bearer x"})
    assert r.status_code == 401
