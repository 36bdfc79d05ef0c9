"""The README's picture of the report: `python -m simulation.screenshot [page] [png]` renders
the page written by `assistance simulate` in Debian's Chromium, driven by Playwright (a
development dependency; no browser is downloaded), as `make simulation-screenshot` does."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from simulation.options import DEFAULT_HTML

CHROMIUM = "/usr/bin/chromium"
PICTURE = Path("docs/screenshots/simulation.png")


async def shoot(page_uri: str, picture: Path, width: int = 1200) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(page_uri)
            await page.screenshot(path=str(picture), full_page=True)
        finally:
            await browser.close()


def main() -> None:
    page_path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_HTML
    picture = Path(sys.argv[2]) if len(sys.argv) > 2 else PICTURE
    if not page_path.exists():
        sys.exit(f"{page_path} n'existe pas : lancez d'abord `make simulate`.")
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} est absent : apt-get install chromium")
    picture.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(page_path.resolve().as_uri(), picture))
    print(picture)


if __name__ == "__main__":
    main()
