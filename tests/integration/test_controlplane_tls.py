"""The control plane's API and xDS over TLS (--tls-auto: a certificate from its own CA)."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.processes import ControlPlane
from tests.support.proxy import Sidecar, Upstream, free_port, get
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def test_api_and_xds_over_tls_with_an_auto_issued_certificate(tmp_path: Path) -> None:
    cp = ControlPlane(tmp_path / "state", "memory://", "--tls-auto").start()
    app = Upstream("benigno").start()
    sidecar: Sidecar | None = None
    try:
        assert cp.api.startswith("https://")
        bundle = json.loads((tmp_path / "state" / "controlplane.json").read_text())["caBundle"]
        verify = ssl.create_default_context(cafile=bundle)
        assert httpx.get(cp.api + "/api/v1/version", verify=verify).status_code == 200
        # Plain HTTP to the TLS port gets no API answer; an unverified client is refused.
        with pytest.raises(httpx.HTTPError):
            httpx.get(cp.api.replace("https://", "http://") + "/api/v1/version", timeout=3)
        with pytest.raises(httpx.ConnectError):
            httpx.get(cp.api + "/api/v1/version", timeout=3)
        # The CLI and a sidecar find the bundle through the state dir.
        assert cp.cli("get", "svc", check=True).returncode == 0
        port = free_port()
        sidecar = Sidecar(
            tmp_path,
            None,
            *("--xds", cp.xds, "--id", "benigno-1", "--service", "benigno"),
            *("--inbound", f"5000:{app.port}:{free_port()}", "--http-proxy-port", str(port)),
            name="benigno",
            env=cp.env(),
        ).start()
        wait_for(lambda: get(port, "/x", host="benigno:5000").status == 200, 20)
        ready = sidecar.get("/ready").json()
        assert ready["xds"]["connected"] and ready["certificate"]["identity"]
        # A plaintext gRPC client cannot speak to the xDS port.
        probe = subprocess.run(
            ["curl", "-s", "--http2-prior-knowledge", f"http://{cp.xds}/"],
            capture_output=True,
            timeout=10,
        )
        assert probe.returncode != 0 or not probe.stdout.startswith(b"HTTP")
    finally:
        if sidecar is not None:
            sidecar.stop()
        cp.stop()
        app.stop()
