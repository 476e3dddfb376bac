"""Gossamer topologies.

`mesh_pair`: the real mesh hop, set up exactly as users do: `gossamer controlplane run`,
then two `gossamer proxy run` sidecars registered as workloads. The inbound sidecar
(service `bench`) fronts the upstream on an HTTP port (80) and a TCP port (9000); the
outbound sidecar (service `bench-client`) has explicit outbound listeners for both. The
Mesh says whether the hop is mutual TLS (STRICT, the default) or plaintext (DISABLED).

`static_pair`: the same two hops from static `--config` files, no control plane (what
benchmarks/http_pair.py uses for quick hot-path checks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.suite.procs import ROOT, NotAvailable, Topology, free_port, pin, wait_port

GOSSAMER = [sys.executable, "-m", "gossamer"]
HCM = (
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
    ".HttpConnectionManager"
)
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

RESOURCES = """
apiVersion: gossamer.io/v1alpha1
kind: Mesh
metadata: {{name: default}}
spec:
  mtls: {{mode: {mode}}}
  defaultAccess: allow
---
apiVersion: gossamer.io/v1alpha1
kind: Service
metadata: {{name: bench}}
spec:
  selector: {{app: bench}}
  ports:
  - {{name: http, port: 80, protocol: http}}
  - {{name: tcp, port: 9000, protocol: tcp}}
"""


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


def _through(port: int) -> bool:
    status, body = _get(f"http://127.0.0.1:{port}/", timeout=2)
    return status == 200 and body == b"hello\n"


@dataclass
class Mesh:
    """A control plane with the two sidecars; `http` and `tcp` are the two topologies."""

    http: Topology
    tcp: Topology
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    admin: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        # Sidecars first (they would otherwise reconnect), then the control plane.
        for topo in (self.http,):
            topo.stop()
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def _mtls_active(admin: str) -> bool:
    """Whether the outbound sidecar originates TLS to the mesh hop (mTLS landed and on)."""
    _, body = _get(f"http://{admin}/config_dump")
    clusters = json.loads(body).get("clusters", {})
    items = clusters.values() if isinstance(clusters, dict) else clusters
    return any(isinstance(c, dict) and c.get("tls") for c in items)


def mesh_pair(
    work: Path,
    up: int,
    proxy_core: str | None,
    cp_core: str | None,
    mtls: bool,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    label: str = "",
) -> Mesh:
    label = label or ("gossamer-mtls" if mtls else "gossamer")
    d = work / label
    d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOSSAMER_STATE_DIR": str(d / "state")}
    cp_log = open(d / "controlplane.log", "wb")  # noqa: SIM115 - lives as long as the process
    cp = subprocess.Popen(
        [
            *pin(cp_core),
            *GOSSAMER,
            "controlplane",
            "run",
            "--store",
            "memory://",
            "--api-port",
            "0",
            "--xds-port",
            "0",
            "--log-level",
            "warning",
        ],
        stdout=cp_log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    procs = [cp]
    http = Topology(label, free_port())
    tcp = Topology(f"{label}-tcp", free_port())
    mesh = Mesh(http, tcp, procs)
    try:
        discovery = d / "state" / "controlplane.json"

        def started() -> dict[str, Any] | None:
            if cp.poll() is not None:
                raise RuntimeError(f"control plane exited: {(d / 'controlplane.log').read_text()}")
            info: dict[str, Any] = json.loads(discovery.read_text())
            if info.get("pid") != cp.pid:
                return None
            return info if _get(info["api"] + "/healthz")[0] == 200 else None

        info = _wait(started, 30, "the control plane")
        apply = subprocess.run(
            [*GOSSAMER, "apply", "-f", "-"],
            input=RESOURCES.format(mode="STRICT" if mtls else "DISABLED"),
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )
        if apply.returncode != 0:
            raise RuntimeError(f"gossamer apply: {apply.stdout}{apply.stderr}")
        b_http, b_tcp = free_port(), free_port()
        sidecars = (
            (
                "b",
                "bench-1",
                [
                    "--service",
                    "bench",
                    "--inbound",
                    f"80:{up}:{b_http}",
                    "--inbound",
                    f"9000:{up}:{b_tcp}:tcp",
                ],
                b_http,
            ),
            (
                "a",
                "bench-client-1",
                [
                    "--service",
                    "bench-client",
                    "--outbound",
                    f"bench:80={http.port}",
                    "--outbound",
                    f"bench:9000={tcp.port}",
                ],
                http.port,
            ),
        )
        for hop, node, args, port in sidecars:
            ready = d / f"{hop}.ready"
            log = open(d / f"sidecar-{hop}.log", "wb")  # noqa: SIM115 - lives as long as the process
            proc = subprocess.Popen(
                [
                    *pin(proxy_core),
                    *GOSSAMER,
                    "proxy",
                    "run",
                    "--xds",
                    info["xds"],
                    "--id",
                    node,
                    *args,
                    "--workers",
                    str(workers),
                    "--ready-file",
                    str(ready),
                    "--log-level",
                    "warning",
                    *extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )
            http.procs.append(proc)
            http.proxies[hop] = proc.pid
            wait_port(port, 30, proc)
            mesh.admin[hop] = json.loads(ready.read_text())["admin"]
        tcp.proxies = dict(http.proxies)
        _wait(lambda: _through(http.port), 30, f"{label}: HTTP through both sidecars")
        _wait(lambda: _through(tcp.port), 30, f"{label}: TCP through both sidecars")
        active = _mtls_active(mesh.admin["a"])
        if mtls and not active:
            raise NotAvailable("mTLS not landed: the sidecars do not originate TLS")
        if not mtls and active:
            raise RuntimeError("Mesh mtls.mode DISABLED, yet the sidecars use TLS")
        http.tls = tcp.tls = active
        return mesh
    except BaseException:
        mesh.stop()
        raise


# --- static config: no control plane --------------------------------------------------


def sidecar_config(
    name: str,
    listen: int,
    target: int,
    direction: str,
    telemetry: tuple[int, Path, str] | None = None,
) -> dict[str, Any]:
    """`telemetry`: (collector port, access log directory, mode): mode "all" traces every
    request (Zipkin JSON to that port) and writes an access log line for each; "tracing"
    only traces, "sampled" traces 1% of new traces, "logs" only writes access logs."""
    hcm: dict[str, Any] = {
        "@type": HCM,
        "stat_prefix": name,
        "http_filters": [{"name": "router", "typed_config": {"@type": ROUTER}}],
        "route_config": {
            "name": name,
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "next"}}],
                }
            ],
        },
    }
    clusters = [_cluster("next", target)]
    if telemetry is not None:
        collector, logs, mode = telemetry
        hcm["tracing"] = {
            "random_sampling": {"value": 1 if mode == "sampled" else 100},
            "provider": {
                "name": "envoy.tracers.zipkin",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                    "collector_cluster": "collector",
                    "collector_endpoint": "/api/v2/spans",
                    "collector_endpoint_version": "HTTP_JSON",
                },
            },
        }
        hcm["access_log"] = [
            {
                "name": "file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3"
                    ".FileAccessLog",
                    "path": str(logs / f"{name}-access.log"),
                    "log_format": {"json_format": ACCESS_LOG_FORMAT},
                },
            }
        ]
        clusters.append(_cluster("collector", collector))
        if mode in ("tracing", "sampled"):
            del hcm["access_log"]
        if mode == "logs":
            del hcm["tracing"]
    return {
        "listeners": [
            {
                "name": name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
                "traffic_direction": direction,
                "filter_chains": [{"filters": [{"name": "hcm", "typed_config": hcm}]}],
            }
        ],
        "clusters": clusters,
    }


ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "traceId": "%TRACE_ID%",
    "method": "%REQ(:METHOD)%",
    "authority": "%REQ(:AUTHORITY)%",
    "path": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "flags": "%RESPONSE_FLAGS%",
    "durationMs": "%DURATION%",
    "bytesSent": "%BYTES_SENT%",
    "upstream": "%UPSTREAM_HOST%",
}


def _cluster(name: str, port: int) -> dict[str, Any]:
    endpoint = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
        },
    }


def static_pair(
    work: Path,
    up: int,
    core: str | None,
    workers: int,
    env: dict[str, str] | None = None,
    telemetry: str | None = None,
) -> Topology:
    """The gossamer pair; `telemetry`: tracing and/or access logs on both sidecars (see
    sidecar_config; spans go to the upstream, an nginx that answers the POSTs 200)."""
    a, b = free_port(), free_port()
    topo = Topology("gossamer", a)
    tel = (up, work, telemetry) if telemetry else None
    for hop, name, listen, target, direction in (
        ("b", "inbound", b, up, "INBOUND"),
        ("a", "outbound", a, b, "OUTBOUND"),
    ):
        tag = f"{name}-tel" if telemetry else name
        path = work / f"gossamer-{tag}.json"
        path.write_text(json.dumps(sidecar_config(name, listen, target, direction, tel)))
        ready = work / f"gossamer-{tag}.ready"
        log = open(work / f"gossamer-{tag}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [
                *pin(core),
                *GOSSAMER,
                "proxy",
                "run",
                "--config",
                str(path),
                "--admin-port",
                "0",
                "--ready-file",
                str(ready),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        topo.procs.append(proc)
        topo.proxies[hop] = proc.pid
        wait_port(listen, proc=proc)
        admin = json.loads(ready.read_text())["admin"]
        _wait(lambda admin=admin: _get(f"http://{admin}/ready")[0] == 200, 20, f"{name} ready")
    return topo
