"""The control plane serves the dashboard: its page and files without a token (they hold no
data), the npm libraries from where `make web` installed them, nothing else."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gossamer.controlplane.http.ui import VENDOR, vendor_available
from tests.support.processes import ControlPlane

pytestmark = pytest.mark.integration


def test_page_files_and_libraries(control_plane: ControlPlane) -> None:
    api = control_plane.api
    page = httpx.get(api + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/app.js" type="module">' in page.text
    for name, ctype in (("app.js", "text/javascript"), ("lib.js", "text/javascript"),
                        ("style.css", "text/css")):  # fmt: skip
        r = httpx.get(f"{api}/ui/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype), name
    installed = vendor_available()
    for name in VENDOR:
        r = httpx.get(f"{api}/ui/vendor/{name}")
        assert r.status_code == (200 if installed[name] else 404), (name, r.text)
    assert all(installed.values()), "run `make web`: the browser libraries are missing"
    # Nothing outside the dashboard's files is reachable.
    for path in ("/ui/vendor/uPlot.cjs.js", "/ui/../api.py", "/ui/%2e%2e/api.py", "/ui/x/.hidden",
                 "/ui/ui.py", "/ui/nope.js"):  # fmt: skip
        r = httpx.get(api + path)
        assert r.status_code == 404, path
        assert "api.py" not in r.text or "no dashboard file" in r.text


def test_files_need_no_token_but_data_does(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "cp", "memory://", "--read-access", "token").start()
    try:
        assert httpx.get(cp.api + "/").status_code == 200
        assert httpx.get(cp.api + "/ui/app.js").status_code == 200
        assert httpx.get(cp.api + "/api/v1/proxies").status_code == 401
        auth = {"authorization": f"Bearer {cp.token}"}
        assert httpx.get(cp.api + "/api/v1/proxies", headers=auth).status_code == 200
    finally:
        cp.stop()
