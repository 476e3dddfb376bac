"""The data-path benchmark suite: Gossamer's sidecar pair against HAProxy and nginx pairs.

    .venv/bin/python -m benchmarks.suite            # what `make bench` runs
    .venv/bin/python -m benchmarks.suite --help

Modules: procs (processes, /proc readings, pinning), peers (nginx upstream, HAProxy and
nginx pairs, the bare Python relay), certs (a throwaway CA), mesh (Gossamer sidecars
configured by a real control plane, or by a static file), load (wrk and the open-loop
latency client), report (markdown, plots, JSON), profile (py-spy under load).
"""
