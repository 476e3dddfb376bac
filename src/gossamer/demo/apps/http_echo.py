"""http-echo: answers `Hello from http-echo` on every path."""

from __future__ import annotations

from gossamer.demo.apps.common import serve


def main() -> None:
    def hello(path: str, headers: dict[str, str]) -> tuple[int, str]:
        return 200, "Hello from http-echo\n"

    serve("http-echo", {"/": hello})


if __name__ == "__main__":
    main()
