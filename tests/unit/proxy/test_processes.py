"""Process-level properties that need no network: what a worker imports."""

from __future__ import annotations

import subprocess
import sys


def test_worker_imports_no_grpc_and_no_protobuf() -> None:
    code = (
        "import sys, gossamer.proxy.worker, gossamer.proxy.runtime; "
        "bad = [m for m in sys.modules if m.startswith(('grpc', 'google.protobuf', 'envoy', "
        "'yaml', 'pydantic', 'click', 'httpx', 'gossamer.proxy.config.compile'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_pickles_for_workers() -> None:
    import pickle

    from gossamer.proxy.static import compile_document, parse_document
    from tests.unit.proxy.test_static import YAML

    config = compile_document(parse_document(YAML))
    assert pickle.loads(pickle.dumps(config)) == config
