"""bookbuyer (and bookthief, the same app under another name): `/buy` buys a book at the
bookstore and lists what was bought (the two routes the bookstore's TrafficTarget
allows); `/egress` calls a publisher outside the mesh. Each answers 200 with what
happened, so the demo's traffic shows outcomes (bought from v1/v2, denied, blocked)
rather than errors."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from gossamer.demo.apps.common import serve

NAME = os.environ.get("CLIENT_NAME", "bookbuyer")
BOOKSTORE = os.environ.get("BOOKSTORE_URL", "http://bookstore.bookstore:14001")
PUBLISHER = os.environ.get("PUBLISHER_URL", "http://publisher.example/new-releases")
# The headers the books-bought match of the HTTPRouteGroup asks for.
HEADERS = {"user-agent": "Go-http-client/1.1", "client-app": NAME}


def _call(url: str) -> tuple[int, str, dict[str, str]]:
    # urllib takes $HTTP_PROXY (the sidecar) from the environment.
    request = urllib.request.Request(url, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), {k.lower(): v for k, v in exc.headers.items()}


def buy(path: str, headers: dict[str, str]) -> tuple[int, str]:
    status, body, got = _call(BOOKSTORE + "/buy-a-book/new")
    if status == 200:
        status, listing, got = _call(BOOKSTORE + "/books-bought")
        if status == 200:
            return 200, f"{NAME}: bought from {body.split(':', 1)[0]}; {listing.strip()}\n"
    if status == 403:
        return 200, f"{NAME}: denied ({got.get('x-gossamer-authz', '403')})\n"
    return 200, f"{NAME}: error {status}: {body.strip()[:200]}\n"


def egress(path: str, headers: dict[str, str]) -> tuple[int, str]:
    status, body, got = _call(PUBLISHER)
    if status == 200:
        return 200, f"{NAME}: egress ok: {body.strip()}\n"
    if "x-gossamer-egress" in {k.lower() for k in got}:
        blocked = {k.lower(): v for k, v in got.items()}["x-gossamer-egress"]
        return 200, f"{NAME}: egress {blocked}\n"
    return 200, f"{NAME}: egress error {status}\n"


def main() -> None:
    serve(NAME, {"/buy": buy, "/egress": egress})


if __name__ == "__main__":
    main()
