"""bookwarehouse: `/restock` ships books to the bookstore."""

from __future__ import annotations

from gossamer.demo.apps.common import serve


def main() -> None:
    serve("bookwarehouse", {"/restock": lambda path, headers: (200, "bookwarehouse: shipped\n")})


if __name__ == "__main__":
    main()
