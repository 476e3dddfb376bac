"""Certificate rotation under load: 60-second certificates, 5 minutes of continuous
traffic through two sidecars, at least 4 rotations of each, and not one failed request.

Each renewal closes the client side's idle mTLS connections, so fresh handshakes with
the new certificates happen under load all along (counted below), not just at the start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.support.processes import ControlPlane
from tests.support.proxy import Sidecar, Upstream, free_port, get
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

LOAD_SECONDS = 300
MESH = """
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {name: default}
spec: {mtls: {mode: STRICT, certLifetime: 60s}}
"""


@pytest.mark.timeout(LOAD_SECONDS + 120)
def test_sixty_second_certificates_rotate_under_load_without_a_failure(tmp_path: object) -> None:
    from pathlib import Path

    workdir = Path(str(tmp_path))
    cp = ControlPlane(workdir / "state", "sqlite://").start()
    app = Upstream("benigno").start()
    http_proxy = free_port()
    sidecars: list[Sidecar] = []
    try:
        cp.cli("apply", "-f", "-", input=MESH, check=True)
        for name, args in (
            ("benigno", ("--service", "benigno", "--inbound", f"5000:{app.port}:{free_port()}")),
            ("magnanimo", ("--service", "magnanimo", "--http-proxy-port", str(http_proxy))),
        ):
            sidecars.append(
                Sidecar(
                    workdir,
                    None,
                    *("--xds", cp.xds, "--id", f"{name}-1", *args),
                    name=name,
                    env=cp.env(),
                ).start()
            )
        benigno, magnanimo = sidecars
        wait_for(
            lambda: get(http_proxy, "/hello", host="benigno:5000").status == 200,
            20,
            message="traffic through both sidecars",
        )
        first = benigno.get("/ready").json()["certificate"]
        assert 0 < first["secondsToExpiry"] <= 61  # the Mesh's 60 s lifetime
        handshakes_before = _handshakes(magnanimo)
        started = time.monotonic()
        load = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.loadgen",
                *("--port", str(http_proxy), "--host", "benigno:5000", "--path", "/load"),
                *("--proxy", "--connections", "4", "--duration", str(LOAD_SECONDS)),
                *("--max-requests", "3000000"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        out, _ = load.communicate(timeout=LOAD_SECONDS + 60)
        result = json.loads(out)
        elapsed = time.monotonic() - started
        renewals = {s.name: s.get("/ready").json()["certificate"]["renewals"] for s in sidecars}
        handshakes = _handshakes(magnanimo) - handshakes_before
        print(
            f"rotation under load: {result['requests']} requests in {elapsed:.0f}s, "
            f"errors {result['errors']}, renewals {renewals}, new mTLS handshakes {handshakes}"
        )
        assert result["errors"] == 0, result
        assert result["requests"] > 1000
        # The first certificate plus at least 4 renewals each, during the load.
        assert all(n >= 5 for n in renewals.values()), renewals
        assert handshakes >= 4  # connections were re-made with renewed certificates
        status = json.loads(cp.cli("get", "ca", "-o", "json", check=True).stdout)
        assert status["issued"] >= 10
    finally:
        for sidecar in sidecars:
            sidecar.stop()
        cp.stop()
        app.stop()


def _handshakes(sidecar: Sidecar) -> int:
    cluster = sidecar.stats()["clusters"].get("benigno.default:5000", {})
    return int(cluster.get("upstream_tls_handshakes", 0))
