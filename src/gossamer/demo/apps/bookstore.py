"""bookstore (v1 or v2, $VERSION): `/buy-a-book/new` sells a book and restocks it from
the bookwarehouse; `/books-bought` says how many this instance sold."""

from __future__ import annotations

import itertools
import os
import urllib.error
import urllib.request

from gossamer.demo.apps.common import serve, trace_headers

NAME = f"bookstore-{os.environ.get('VERSION', 'v1')}"
WAREHOUSE = os.environ.get("WAREHOUSE_URL", "http://bookwarehouse.bookwarehouse:14001/restock")


def main() -> None:
    sold = itertools.count(1)
    total = [0]

    def buy(path: str, headers: dict[str, str]) -> tuple[int, str]:
        try:
            request = urllib.request.Request(WAREHOUSE, headers=trace_headers(headers))
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            return 502, f"{NAME}: could not restock (bookwarehouse answered {exc.code})\n"
        total[0] = next(sold)
        return 200, f"{NAME}: sold a book, restocked\n"

    def bought(path: str, headers: dict[str, str]) -> tuple[int, str]:
        return 200, f"{NAME}: {total[0]} books sold\n"

    serve(NAME, {"/buy-a-book/new": buy, "/books-bought": bought})


if __name__ == "__main__":
    main()
