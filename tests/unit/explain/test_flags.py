"""The response flag table of `gossamer explain --flags`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gossamer.explain.flags import FLAGS, explain_flags

IO = Path(__file__).parents[3] / "src" / "gossamer" / "proxy" / "io"


def test_every_flag_the_sidecar_emits_is_explained() -> None:
    emitted: set[str] = set()
    for source in IO.glob("*.py"):
        text = source.read_text()
        emitted |= set(re.findall(r'flag\("([A-Z]+)"\)', text))
        emitted |= set(re.findall(r'_local\([^)]*"([A-Z]{2,4})"', text))
        emitted |= set(re.findall(r'_fail\([^)]*"([A-Z]{2,4})"\)', text))
        emitted |= set(re.findall(r'_upstream_failed\([^)]*"([A-Z]{2,4})"', text, re.S))
    assert emitted, "the grep found nothing: the patterns are stale"
    assert emitted <= set(FLAGS), emitted - set(FLAGS)


def test_explain_flags() -> None:
    [(flag, sentence)] = explain_flags("uh")
    assert flag == "UH" and sentence.startswith("No healthy upstream")
    assert [f for f, _ in explain_flags("UF,UO")] == ["UF", "UO"]
    with pytest.raises(ValueError, match="unknown flag 'ZZ'"):
        explain_flags("ZZ")
