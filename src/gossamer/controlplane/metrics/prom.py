"""A small reader of the Prometheus text format: only the sample lines of chosen families.

Pure (no I/O): the scraper hands it a sidecar's /stats/prometheus body.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def samples(text: str, names: tuple[str, ...]) -> Iterator[tuple[str, str, float]]:
    """(metric name, raw label text, value) of each sample whose name is in `names`."""
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        if brace < 0:
            continue
        name = line[:brace]
        if name not in names:
            continue
        end = line.rfind("}")
        if end < brace:
            continue
        try:
            value = float(line[end + 1 :].split()[0])
        except (ValueError, IndexError):
            continue
        yield name, line[brace + 1 : end], value


def labels(text: str) -> dict[str, str]:
    """The labels of a sample's raw label text."""
    return {m.group(1): _unescape(m.group(2)) for m in _LABEL.finditer(text)}
