"""Benchmarks: the data-path suite (`python -m benchmarks.suite`), http_pair.py, xds_scale.py."""
