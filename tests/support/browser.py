"""Headless Chromium for the dashboard's browser tests: Debian's chromium driven by
Playwright (never `playwright install`), one browser per test module.

Screenshots go to test-artifacts/dashboard/ (gitignored): CI keeps them, nobody commits them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError(
        "no chromium on the PATH: `scripts/install-debian-deps.sh test` installs Debian's"
    )


@contextmanager
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            yield b
        finally:
            b.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def collect_errors(page: Any) -> list[str]:
    """Uncaught script errors of the page (a broken page must fail its test)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors
