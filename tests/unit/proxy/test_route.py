"""Route matching against a RouteTable: domains, all match kinds, actions."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from gossamer.protocols.http1 import RequestHead
from gossamer.proxy.config import model as m
from gossamer.proxy.filters.route import DIRECT, FORWARD, REDIRECT, CompiledTable, HeaderPlan
from tests.unit.proxy.builders import forward, route, table


def head(path: str = "/", method: str = "GET", **headers: str) -> RequestHead:
    fields = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return RequestHead(method.encode(), path.encode(), b"1.1", fields, None)


def matched(t: CompiledTable, h: RequestHead, authority: str = "svc") -> str | None:
    entry = t.route(h, authority.encode())
    return entry.name if entry else None


def test_domain_lookup_order() -> None:
    r = [route("r", forward("c"))]
    t = CompiledTable(
        table(
            "t",
            ("exact", ["api.example.com", "api.example.com:8080"], [route("exact", forward("c"))]),
            ("suffix-long", ["*.b.example.com"], [route("suffix-long", forward("c"))]),
            ("suffix", ["*.example.com"], [route("suffix", forward("c"))]),
            ("prefix", ["api.*"], [route("prefix", forward("c"))]),
            ("default", ["*"], r),
        )
    )
    assert matched(t, head(), "api.example.com") == "exact"
    assert matched(t, head(), "API.Example.com") == "exact"  # case-insensitive
    assert matched(t, head(), "api.example.com:8080") == "exact"
    assert matched(t, head(), "x.b.example.com") == "suffix-long"  # longest suffix first
    assert matched(t, head(), "x.example.com") == "suffix"
    assert matched(t, head(), "api.other.org") == "prefix"  # after every suffix
    assert matched(t, head(), "elsewhere") == "r"
    # Cached lookups give the same answers.
    assert matched(t, head(), "x.example.com") == "suffix"


def test_no_virtual_host_no_route() -> None:
    t = CompiledTable(table("t", ("only", ["benigno:5000", "benigno"], [route("r", forward("c"))])))
    assert matched(t, head(), "benigno:5000") == "r"
    assert matched(t, head(), "benigno") == "r"
    assert matched(t, head(), "magnanimo:5000") is None


def test_path_match_kinds_and_order() -> None:
    t = CompiledTable(
        table(
            "t",
            (
                "vh",
                ["*"],
                [
                    route("exact", forward("c"), "/exact", "exact"),
                    route("sep", forward("c"), "/api", "path_separated_prefix"),
                    route("regex", forward("c"), r"/items/\d+", "regex"),
                    route("nocase", forward("c"), "/CaSe", case_sensitive=False),
                    route("prefix", forward("c"), "/pre"),
                    route("catchall", forward("c")),
                ],
            ),
        )
    )
    assert matched(t, head("/exact")) == "exact"
    assert matched(t, head("/exact?q=1")) == "exact"  # the query is not part of the path
    assert matched(t, head("/exact/more")) == "catchall"
    assert matched(t, head("/api")) == "sep"
    assert matched(t, head("/api/v1")) == "sep"
    assert matched(t, head("/apiv1")) == "catchall"  # a separated prefix needs the "/"
    assert matched(t, head("/items/42")) == "regex"
    assert matched(t, head("/items/42x")) == "catchall"  # regex: full match
    assert matched(t, head("/case/x")) == "nocase"
    assert matched(t, head("/prefix")) == "prefix"


def test_header_query_and_grpc_matchers() -> None:
    sm = m.StringMatch
    t = CompiledTable(
        table(
            "t",
            (
                "vh",
                ["*"],
                [
                    route(
                        "v2",
                        forward("v2"),
                        headers=[m.HeaderMatch("x-version", sm("exact", "v2"))],
                    ),
                    route(
                        "post-only",
                        forward("c"),
                        headers=[m.HeaderMatch(":method", sm("exact", "POST"))],
                    ),
                    route(
                        "beta",
                        forward("c"),
                        query=[m.QueryMatch("beta", sm("present"))],
                    ),
                    route(
                        "not-mobile",
                        forward("c"),
                        "/ua",
                        headers=[
                            m.HeaderMatch("user-agent", sm("contains", "mobile", invert=True))
                        ],
                    ),
                    route(
                        "regex-header",
                        forward("c"),
                        headers=[
                            m.HeaderMatch("x-id", sm("regex", "", regex=re.compile(r"[a-f]+")))
                        ],
                    ),
                    route("grpc", forward("c"), grpc=True),
                    route("rest", forward("c")),
                ],
            ),
        )
    )
    assert matched(t, head(X_Version="v2")) == "v2"
    assert matched(t, head(X_Version="v1")) == "rest"
    assert matched(t, head(method="POST")) == "post-only"
    assert matched(t, head("/x?beta")) == "beta"
    assert matched(t, head("/x?alpha=1&beta=yes")) == "beta"
    assert matched(t, head("/ua", User_Agent="desktop")) == "not-mobile"
    assert matched(t, head("/ua", User_Agent="a mobile b")) == "rest"
    assert matched(t, head(X_Id="abc")) == "regex-header"
    assert matched(t, head(X_Id="abz")) == "rest"
    assert matched(t, head(Content_Type="application/grpc+proto")) == "grpc"


def test_weighted_pick_follows_cumulative() -> None:
    t = CompiledTable(table("t", ("vh", ["*"], [route("split", forward(("v1", 90), ("v2", 10)))])))
    entry = t.route(head(), b"svc")
    assert entry is not None and entry.kind == FORWARD
    rng = random.Random(4)
    got = Counter(entry.cluster_names[entry.pick(rng)] for _ in range(20000))
    assert got["v1"] / 20000 == pytest.approx(0.9, abs=0.01)


def test_rewrites_and_redirects() -> None:
    rx = (re.compile(r"^/old/(\w+)$"), r"/new/\1")
    t = CompiledTable(
        table(
            "t",
            (
                "vh",
                ["*"],
                [
                    route(
                        "prefix", forward("c", prefix_rewrite="/v2/", host_rewrite="b.io"), "/v1/"
                    ),
                    route("regex", forward("c", regex_rewrite=rx), "/old/"),
                    route("direct", m.DirectResponse(418, b"teapot\n"), "/tea"),
                    route(
                        "redirect", m.Redirect(301, "https", None, None, None, "/moved/"), "/here/"
                    ),
                ],
            ),
        )
    )
    e = t.route(head("/v1/items?x=1"), b"a")
    assert e is not None and e.upstream_path(b"/v1/items?x=1") == b"/v2/items?x=1"
    assert e.host_rewrite == b"b.io"
    e = t.route(head("/old/thing"), b"a")
    assert e is not None and e.upstream_path(b"/old/thing?q") == b"/new/thing?q"
    e = t.route(head("/tea"), b"a")
    assert e is not None and e.kind == DIRECT and e.direct_status == 418
    h = head("/here/x?y=1")
    e = t.route(h, b"a:8080")
    assert e is not None and e.kind == REDIRECT
    assert e.redirect_location(h, b"a:8080") == b"https://a:8080/moved/x?y=1"


def test_header_plan_merges_levels_least_specific_wins() -> None:
    route_level = m.HeaderMutation(("x-drop",), (("x-a", "route"),), (("x-add", "1"),))
    vh_level = m.HeaderMutation((), (("x-a", "vh"), ("x-b", "vh")), (("x-add", "2"),))
    plan = HeaderPlan((route_level, vh_level), ("x-table",))
    assert dict(plan.set) == {b"x-a": b"vh", b"x-b": b"vh"}
    assert plan.add == ((b"x-add", b"1"), (b"x-add", b"2"))
    assert plan.remove == {b"x-drop", b"x-table"}
    assert HeaderPlan(()).empty
