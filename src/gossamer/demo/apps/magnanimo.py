"""magnanimo: `/hw2` calls benigno's `/hello` and returns its answer, forwarding the
trace headers it received (so the two hops join one trace)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from gossamer.demo.apps.common import serve, trace_headers

BENIGNO = os.environ.get("BENIGNO_URL", "http://benigno:5000/hello")


def main() -> None:
    # urllib takes $HTTP_PROXY (the sidecar) from the environment, like most clients.
    opener = urllib.request.build_opener()

    def hw2(path: str, headers: dict[str, str]) -> tuple[int, str]:
        try:
            request = urllib.request.Request(BENIGNO, headers=trace_headers(headers))
            with opener.open(request, timeout=10) as response:
                return 200, response.read().decode()
        except urllib.error.HTTPError as exc:
            return 502, f"magnanimo: benigno answered {exc.code}: {exc.read().decode()}"

    def hello(path: str, headers: dict[str, str]) -> tuple[int, str]:
        return 200, "Hello World, Magnanimo\n"

    serve("magnanimo", {"/hw2": hw2, "/": hello})


if __name__ == "__main__":
    main()
