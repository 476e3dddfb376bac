"""The upstream and the peers, configured as ../shared/bench/README.md fixes them.

Upstream: nginx, one worker, `return 200 "hello\\n"` on `/`, static 1 KiB and 64 KiB files.
HAProxy pair: nbthread 1 each, HTTP or TCP mode, optionally TLS between the hops with
client certificates. nginx pair: one worker each, upstream keepalive; TCP with the stream
module; optionally TLS between the hops with client certificates.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.suite.procs import NotAvailable, Topology, free_port, pin, wait_port

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
BODIES = {"1k": 1024, "64k": 65536}


def nginx_conf(work: Path, name: str, body: str, stream: bool = False) -> Path:
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    load = f"load_module {STREAM_MODULE};\n" if stream else ""
    conf.write_text(
        f"""{load}daemon off;
master_process off;
worker_processes 1;
pid {d / "nginx.pid"};
error_log {d / "error.log"} warn;
events {{ worker_connections 4096; }}
{body}
"""
    )
    return conf


def start_nginx(conf: Path, core: str | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*pin(core), "nginx", "-p", str(conf.parent), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


HTTP_COMMON = """
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
"""


def upstream(work: Path, core: str | None) -> tuple[subprocess.Popen[bytes], int]:
    """The nginx upstream every topology ends at: `/` says hello, `/1k` and `/64k` are
    static bodies of that size."""
    port = free_port()
    files = work / "upstream" / "files"
    files.mkdir(parents=True, exist_ok=True)
    for name, size in BODIES.items():
        (files / name).write_bytes(b"x" * size)
    body = (
        "http {"
        + HTTP_COMMON.format(d=work / "upstream")
        + f"""  default_type application/octet-stream;
  server {{ listen 127.0.0.1:{port};
    location = / {{ return 200 "hello\\n"; }}
    location / {{ root {files}; }} }}
}}"""
    )
    proc = start_nginx(nginx_conf(work, "upstream", body), core)
    wait_port(port, proc=proc)
    return proc, port


def _tls_paths(pki: dict[str, Path]) -> tuple[str, str, str, str, str]:
    return (
        str(pki["ca"]),
        str(pki["a.crt"]),
        str(pki["a.key"]),
        str(pki["b.crt"]),
        str(pki["b.key"]),
    )


def nginx_pair(
    work: Path, up: int, core: str | None, pki: dict[str, Path] | None = None, tcp: bool = False
) -> Topology:
    """client -> nginx A -> nginx B -> upstream; `pki`: TLS with client certificates
    between A and B; `tcp`: the stream module (L4) instead of HTTP."""
    if tcp and not STREAM_MODULE.exists():
        raise NotAvailable(
            "nginx's stream module is not installed (scripts/install-debian-deps.sh bench)"
        )
    a, b = free_port(), free_port()
    label = "nginx-tcp" if tcp else ("nginx-tls" if pki else "nginx")
    topo = Topology(label, a, tls=pki is not None)
    for hop, listen, target in (("b", b, up), ("a", a, b)):
        name = f"{label}-{hop}"
        if tcp:
            body = f"""stream {{ upstream up {{ server 127.0.0.1:{target}; }}
  server {{ listen 127.0.0.1:{listen}; proxy_pass up; }} }}"""
        else:
            scheme, proxy_tls, listen_tls = "http", "", ""
            if pki is not None:
                ca, a_crt, a_key, b_crt, b_key = _tls_paths(pki)
                if hop == "a":
                    scheme = "https"
                    proxy_tls = f"""proxy_ssl_certificate {a_crt};
      proxy_ssl_certificate_key {a_key}; proxy_ssl_trusted_certificate {ca};
      proxy_ssl_verify on; proxy_ssl_name b; proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;"""
                else:
                    listen_tls = f""" ssl; ssl_certificate {b_crt};
    ssl_certificate_key {b_key}; ssl_client_certificate {ca}; ssl_verify_client on"""
            body = (
                "http {"
                + HTTP_COMMON.format(d=work / name)
                + f"""  upstream up {{ server 127.0.0.1:{target}; keepalive 64;
    keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{listen}{listen_tls};
    location / {{ proxy_pass {scheme}://up; proxy_http_version 1.1;
      proxy_set_header Connection ""; {proxy_tls} }} }}
}}"""
            )
        proc = start_nginx(nginx_conf(work, name, body, stream=tcp), core)
        topo.procs.append(proc)
        topo.proxies[hop] = proc.pid
        wait_port(listen, proc=proc)
    return topo


def haproxy_pair(
    work: Path, up: int, core: str | None, pki: dict[str, Path] | None = None, tcp: bool = False
) -> Topology:
    """client -> HAProxy A -> HAProxy B -> upstream, one thread each; `pki`: TLS with
    client certificates between A and B; `tcp`: mode tcp."""
    a, b = free_port(), free_port()
    label = "haproxy-tcp" if tcp else ("haproxy-tls" if pki else "haproxy")
    topo = Topology(label, a, tls=pki is not None)
    for hop, listen, target in (("b", b, up), ("a", a, b)):
        bind_tls = server_tls = ""
        if pki is not None:
            if hop == "a":
                server_tls = (
                    f" ssl crt {pki['a.pem']} ca-file {pki['ca']} verify required"
                    " sni str(b) alpn http/1.1"
                )
            else:
                bind_tls = f" ssl crt {pki['b.pem']} ca-file {pki['ca']} verify required"
        cfg = work / f"{label}-{hop}.cfg"
        cfg.write_text(
            f"""global
  nbthread 1
  maxconn 8000
defaults
  mode {"tcp" if tcp else "http"}
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
frontend f
  bind 127.0.0.1:{listen}{bind_tls}
  default_backend b
backend b
  server s1 127.0.0.1:{target}{server_tls}
"""
        )
        proc = subprocess.Popen(
            [*pin(core), "haproxy", "-f", str(cfg), "-db"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        topo.procs.append(proc)
        topo.proxies[hop] = proc.pid
        wait_port(listen, proc=proc)
    return topo


def bare_pair(up: int, core: str | None) -> Topology:
    """The floor: a bare uvloop + httptools relay pair (benchmarks/suite/bare.py)."""
    a, b = free_port(), free_port()
    topo = Topology("bare", a)
    for hop, listen, target in (("b", b, up), ("a", a, b)):
        proc = subprocess.Popen(
            [*pin(core), sys.executable, "-m", "benchmarks.suite.bare", str(listen), str(target)],
            cwd=Path(__file__).resolve().parents[2],
        )
        topo.procs.append(proc)
        topo.proxies[hop] = proc.pid
        wait_port(listen, proc=proc)
    return topo


def direct(up: int) -> Topology:
    """No proxy: the client talks to the upstream (the baseline for added latency)."""
    return Topology("direct", up)
