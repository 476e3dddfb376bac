"""Golden tests of the timeoutpolicy translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from protoc_gen_validate.validator import validate

from tests.support.golden import check_golden

CASES = sorted((Path(__file__).parent / "testdata").glob("*.input.yaml"))
ONLY: tuple[str, ...] = ("routes", "clusters", "listeners")


@pytest.mark.parametrize("case", CASES, ids=[c.name.split(".")[0] for c in CASES])
def test_golden(case: Path, update_golden: bool) -> None:
    resources = check_golden(case, update_golden, only=ONLY)
    for items in resources.values():
        for message in items.values():
            validate(message)
