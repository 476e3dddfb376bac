from __future__ import annotations

import pytest

from gossamer.core.selectors import Selector


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier in (a,b)", {"tier": "c"}, False),
        ("tier notin (a,b)", {"tier": "c"}, True),
        ("tier notin (a,b)", {}, True),
        ("canary", {"canary": ""}, True),
        ("!canary", {"canary": "x"}, False),
        ("app=web,version!=v1", {"app": "web", "version": "v2"}, True),
        ("app=web,tier in (a,b),!x", {"app": "web", "tier": "a"}, True),
        ("", {"anything": "goes"}, True),
    ],
)
def test_selector_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert Selector.parse(text).matches(labels) is expected


def test_invalid_term_is_named() -> None:
    with pytest.raises(ValueError, match="'a=b=c'"):
        Selector.parse("x=y,a=b=c")


def test_from_labels_is_equality_on_every_pair() -> None:
    sel = Selector.from_labels({"app": "benigno", "version": "v2"})
    assert sel.matches({"app": "benigno", "version": "v2", "extra": "1"})
    assert not sel.matches({"app": "benigno"})
