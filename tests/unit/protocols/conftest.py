"""Every HTTP/1 test runs against every parser backend."""

from __future__ import annotations

import pytest

from gossamer.protocols.http1 import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
