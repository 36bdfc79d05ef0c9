"""Fixtures of the site's tests: Debian's Chromium driven by Playwright (never a downloaded
browser), over the whole system served by the `system` fixture."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium_missing() -> bool:
    return not Path(CHROMIUM).exists()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if _chromium_missing():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Where the tests put their screenshots: `SITE_SCREENSHOTS` (`make screenshots` says
    docs/screenshots, the ones the README shows), else test-artifacts/screenshots."""
    folder = Path(os.environ.get("SITE_SCREENSHOTS") or "test-artifacts/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
