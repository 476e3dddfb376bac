"""benigno: `/hello` answers `Hello World, Benigno: <datetime>`; the canary (VERSION=v2)
adds `, Canary Release`."""

from __future__ import annotations

import os
from datetime import datetime

from gossamer.demo.apps.common import serve


def main() -> None:
    canary = os.environ.get("VERSION", "v1") == "v2"
    text = "Hello World, Benigno, Canary Release" if canary else "Hello World, Benigno"

    def hello(path: str, headers: dict[str, str]) -> tuple[int, str]:
        return 200, f"{text}: {datetime.now().isoformat(timespec='seconds')}\n"

    serve("benigno", {"/hello": hello, "/": hello})


if __name__ == "__main__":
    main()
