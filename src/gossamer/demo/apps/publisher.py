"""publisher: a server outside the mesh (no sidecar), standing for an external host."""

from __future__ import annotations

from gossamer.demo.apps.common import serve


def main() -> None:
    serve("publisher", {"/new-releases": lambda path, headers: (200, "3 new releases\n")})


if __name__ == "__main__":
    main()
